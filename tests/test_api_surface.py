"""REST API surface: expired tokens, oversized bodies, unknown paths and Japanese
channel ids, each answered with problem+json worded for the caller (never 500)."""
from __future__ import annotations

import datetime as dt
import urllib.parse

import numpy as np
import pytest

from mieruka.errors import ConfigError
from mieruka.models import ChannelInfo
from mieruka.recording import write_channels

from helpers.api_site import START, auth, client, sha, write_config

EXPIRED, FUTURE = "expired-token-0123456789", "future-token-0123456789"
JA = "プレス/電力"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from mieruka.recording import read_recording
    from mieruka.service.replay import load_recording
    from mieruka.site import load_site
    from mieruka.store.base import open_store
    tmp = tmp_path_factory.mktemp("api-surface")
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    extra = f"""
[[api.tokens]]
name = "old"
sha256 = "{sha(EXPIRED)}"
expires = 2020-03-31
[[api.tokens]]
name = "new"
sha256 = "{sha(FUTURE)}"
expires = {tomorrow}
"""
    cfg = load_site(write_config(tmp, extra=extra))
    n = 3 * 1440
    t = START + np.arange(n).astype("timedelta64[m]").astype("timedelta64[ms]")
    kw = np.where((np.arange(n) % 1440) // 60 % 24 >= 8, 40.0, 3.0)
    rec = tmp / "rec.csv"
    write_channels(rec, {JA: (t, kw, None)}, [ChannelInfo(JA, "power_kw", equipment_kind="press")], tz="Asia/Tokyo")
    store = open_store(cfg)
    load_recording(read_recording(rec), cfg, store, progress=False)
    yield client(cfg, store)
    store.close()


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body.get("detail"), body
    return body


def test_an_expired_token_is_refused_and_says_so(api):
    body = _problem(api.get("/api/v1/channels", headers={"Authorization": f"Bearer {EXPIRED}"}), 401)
    assert "'old' expired" in body["detail"]
    assert api.get("/api/v1/channels", headers={"Authorization": f"Bearer {FUTURE}"}).status_code == 200


def test_a_naive_expiry_time_is_a_config_error(tmp_path):
    from mieruka.site import load_site
    p = write_config(tmp_path, extra=f'[[api.tokens]]\nname = "x"\nsha256 = "{sha("x")}"\nexpires = 2027-03-31T12:00:00\n')
    with pytest.raises(ConfigError, match=r"api\.tokens\[2\]\.expires: .*offset"):
        load_site(p)


def test_a_large_body_is_413_before_anything_reads_it(api):
    body = _problem(api.post("/api/v1/analysis/run", content=b"x" * 200_000,
                             headers={**auth("admin"), "content-type": "application/json"}), 413)
    assert "query string" in body["detail"]

    def chunks():
        for _ in range(40):
            yield b"y" * 10_000
    # a chunked body (no Content-Length) to a route that does not read it is harmless: answered normally
    assert api.post("/api/v1/analysis/run", content=chunks(), headers=auth("admin")).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/nonexistent", "/api/v2/channels", "/api/v1/channels/../../etc/passwd/x",
                                  "/api/v1/sites/..%2f.."])
def test_unknown_paths_say_where_the_api_is(api, path):
    body = _problem(api.get(path, headers=auth("read")), 404)
    assert "/api/v1" in body["detail"]


def test_wrong_method_names_the_allowed_one(api):
    body = _problem(api.delete("/api/v1/channels", headers=auth("read")), 405)
    assert "DELETE" in body["detail"] and "GET" in body["detail"]


def test_japanese_channel_id_with_a_slash(api):
    q = urllib.parse.quote(JA)
    r = api.get(f"/api/v1/channels/{q}/readings", headers=auth("read"))
    assert r.status_code == 200, r.text
    assert r.json()["channel"] == JA and r.json()["unit"] == "kW"
    r = api.get(f"/api/v1/channels/{q}", headers=auth("read"))
    assert r.status_code == 200 and r.json()["id"] == JA
    body = _problem(api.get(f"/api/v1/channels/{urllib.parse.quote('電力x')}/readings", headers=auth("read")), 404)
    assert "電力x" in body["detail"]


def test_hash_token_with_expires_makes_a_block_that_expires(tmp_path, capsys):
    """`mieruka serve --hash-token --expires DAY`: the block `mieruka check` accepts, and
    the token is refused after that day."""
    from mieruka.cli import main
    from mieruka.site import load_site
    from mieruka.store.base import open_store
    assert main(["serve", "--hash-token", "--token-name", "contractor", "--expires", "2021-06-30"]) == 0
    out, err = capsys.readouterr()
    token = err.split("token: ")[1].split()[0]
    p = write_config(tmp_path)
    p.write_text(p.read_text("utf-8") + out, "utf-8")
    cfg = load_site(p)
    assert cfg.api.tokens[-1].expires == dt.date(2021, 6, 30)
    store = open_store(cfg)
    try:
        body = _problem(client(cfg, store).get("/api/v1/channels", headers={"Authorization": f"Bearer {token}"}), 401)
        assert "'contractor' expired at 2021-06-30T15:00:00+00:00" in body["detail"]   # end of the day, JST
    finally:
        store.close()
