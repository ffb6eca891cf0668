"""The application layer raises mieruka.errors, never HTTP errors; the API maps
them to problem+json in its one handler."""
import datetime as dt
import textwrap

import pytest
from fastapi.testclient import TestClient

from mieruka.api.app import create_app
from mieruka.api.errors import ApiError, app_error_status
from mieruka.errors import Conflict, ConfigError, Invalid, MierukaError, NotFound
from mieruka.service.context import Context
from mieruka.site import load_site
from mieruka.store.base import open_store


@pytest.fixture
def site(tmp_path):
    p = tmp_path / "site.toml"
    p.write_text(textwrap.dedent(f"""
        [site]
        name = "t"
        data_dir = "{tmp_path / 'data'}"
        [api]
        [[api.tokens]]
        name = "r"
        role = "read"
        sha256 = "{'0' * 64}"
    """), encoding="utf-8")
    cfg = load_site(p)
    store = open_store(cfg)
    yield cfg, store
    store.close()


def test_the_service_raises_application_errors(site):
    cfg, store = site
    ctx = Context(cfg, store)
    with pytest.raises(NotFound, match="no channel 'nope'") as e:
        ctx.info("nope")
    assert not isinstance(e.value, ApiError)
    t = dt.datetime(2025, 5, 1, tzinfo=cfg.tz)
    with pytest.raises(Invalid, match="end must be after start"):
        ctx.analysis(t, t)
    with pytest.raises(Invalid, match="at most 400 days"):
        ctx.analysis(t, t + dt.timedelta(days=401))


def test_one_mapping_to_http_status():
    assert app_error_status(NotFound("x")) == 404
    assert app_error_status(Invalid("x")) == 422
    assert app_error_status(Conflict("x")) == 409
    assert app_error_status(ConfigError("x")) == 422 and app_error_status(MierukaError("x")) == 422


def test_api_answers_problem_json_for_a_service_error(site):
    cfg, store = site
    app = create_app(cfg, store, env={})

    @app.get("/boom")
    def boom():
        raise Conflict("a run is already under way")

    r = TestClient(app).get("/boom")
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == "a run is already under way" and r.json()["title"] == "Conflict"
