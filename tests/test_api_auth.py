"""The auth matrix: every route under /api/v1 x (no token, wrong token, read, admin);
the env quick-start token; rate limiting; the --hash-token helper."""
from __future__ import annotations

import subprocess
import sys

import pytest

from helpers.api_site import TOKENS, auth, client, loaded_site, sha

ADMIN_ONLY = {("POST", "/api/v1/analysis/run"), ("POST", "/api/v1/reload")}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    cfg, store, _ = loaded_site(tmp_path_factory.mktemp("auth"))
    yield cfg, store
    store.close()


def _routes(app):
    """Every operation of the OpenAPI document under /api/v1, path parameters filled."""
    params = {"channel_id": "main_power", "site_id": app.state.site_id, "fy": "2026"}
    for path, ops in app.openapi()["paths"].items():
        if path.startswith("/api/v1"):
            for m in ops:
                yield m.upper(), path, path.format(**{k: v for k, v in params.items() if "{" + k + "}" in path})


@pytest.mark.slow
def test_every_route_needs_a_token_and_the_right_role(site):
    cfg, store = site
    c = client(cfg, store)
    routes = list(_routes(c.app))
    assert len(routes) >= 14
    seen_admin = set()
    for method, template, url in routes:
        for who, headers in (("none", {}), ("wrong", {"Authorization": "Bearer not-a-token"}),
                             ("basic", {"Authorization": "Basic " + TOKENS["read"]})):
            r = c.request(method, url, headers=headers)
            assert r.status_code == 401, (method, url, who, r.status_code)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert TOKENS["read"] not in r.text
        r = c.request(method, url, headers=auth("read"))
        if (method, template) in ADMIN_ONLY:
            seen_admin.add((method, template))
            assert r.status_code == 403, (method, url)
            assert r.json()["status"] == 403
        else:
            assert r.status_code == 200, (method, url, r.text[:300])
        r = c.request(method, url, headers=auth("admin"))
        assert r.status_code == 200, (method, url, r.text[:300])
    assert seen_admin == ADMIN_ONLY


def test_healthz_and_openapi_need_no_token(site):
    c = client(*site)
    assert c.get("/healthz").json()["status"] == "ok"
    doc = c.get("/openapi.json").json()
    assert "bearer" in str(doc["components"]["securitySchemes"]).lower()


def test_env_token_is_read_only(site):
    cfg, store = site
    c = client(cfg, store, env={"MIERUKA_API_TOKEN": "quick-start-token"})
    h = {"Authorization": "Bearer quick-start-token"}
    assert c.get("/api/v1/sites", headers=h).status_code == 200
    assert c.post("/api/v1/reload", headers=h).status_code == 403
    # without the variable the same token is nobody's
    assert client(cfg, store).get("/api/v1/sites", headers=h).status_code == 401


def test_rate_limit_answers_429_problem(tmp_path):
    cfg, store, _ = loaded_site(tmp_path, rate="5/minute", days=1)
    try:
        c = client(cfg, store)
        codes = [c.get("/api/v1/sites", headers=auth("read")).status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
        r = c.get("/api/v1/sites", headers=auth("read"))
        assert r.headers["content-type"] == "application/problem+json" and int(r.headers["retry-after"]) >= 1
        # another token has its own bucket; guessing tokens from one address is throttled too
        assert c.get("/api/v1/sites", headers=auth("admin")).status_code == 200
        wrong = [c.get("/api/v1/sites", headers={"Authorization": "Bearer guess"}).status_code for _ in range(7)]
        assert wrong[:5] == [401] * 5 and wrong[5:] == [429, 429]
    finally:
        store.close()


def test_hash_token_helper_prints_a_matching_hash():
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", "serve", "--hash-token"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    token = r.stderr.splitlines()[0].split()[-1]      # the token on stderr, the config block on stdout
    assert f'sha256 = "{sha(token)}"' in r.stdout and token not in r.stdout


def test_bad_rate_limit_names_the_key(tmp_path):
    from mieruka.api.app import create_app
    from mieruka.errors import ConfigError
    from mieruka.site import load_site
    from helpers.api_site import write_config
    cfg = load_site(write_config(tmp_path, rate="lots/second"))
    with pytest.raises(ConfigError, match=r"site\.toml: api\.rate_limit: rate limit 'lots/second'"):
        create_app(cfg, store=object())


def test_token_bucket_refills_at_its_rate():
    from mieruka.api.auth import TokenBuckets, parse_rate_limit
    b = TokenBuckets(parse_rate_limit("2/second"))
    assert [b.take("k")[0] for _ in range(3)][:2] == [0.0, 0.0]
    wait, limit = b.take("k")
    assert limit == "2/second" and 0 < wait <= 0.5
    b._state["k"][0][1] -= 1.0            # a second later the bucket is full again (capacity 2)
    assert [b.take("k")[0] for _ in range(3)] == [0.0, 0.0, pytest.approx(0.5, abs=0.01)]
