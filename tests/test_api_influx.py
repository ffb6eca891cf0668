"""The API reads InfluxDB (a real influxd 1.6 on a free port) exactly as it reads the
embedded store: the same recording replayed into each gives the same answers."""
from __future__ import annotations

import subprocess
import sys

import pytest

from helpers.servers import Influxd
from helpers.api_site import auth, client, make_recording, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def influxd(tmp_path_factory):
    s = Influxd(tmp_path_factory.mktemp("api-influx")).start()
    yield s
    s.stop()


def _site(tmp, rec, extra=""):
    from mieruka.site import load_site
    from mieruka.store.base import open_store
    cfg_path = write_config(tmp, extra=extra)
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", "replay", str(rec), "--config", str(cfg_path),
                        "--no-progress"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    cfg = load_site(cfg_path)
    return cfg, open_store(cfg)


def _same(a, b, where):
    """Equal, numbers to 1e-9 relative (the two backends sum in different orders)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            if k == "age_s":      # seconds since the latest reading: the two requests are made apart in time
                assert a[k] == pytest.approx(b[k], abs=60), f"{where}.{k}"
                continue
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_same_answers_from_influxdb_and_embedded(influxd, tmp_path):
    rec = make_recording(tmp_path / "rec.csv", days=3)
    (tmp_path / "emb").mkdir()
    (tmp_path / "ifx").mkdir()
    emb_cfg, emb = _site(tmp_path / "emb", rec)
    ifx_cfg, ifx = _site(tmp_path / "ifx", rec, extra=f"""
[storage]
backend = "influxdb"
[storage.influxdb]
url = "{influxd.url}"
database = "api_test"
""")
    assert type(ifx).__name__ == "InfluxStore"
    try:
        a, b = client(emb_cfg, emb), client(ifx_cfg, ifx)
        for url in ("/api/v1/channels/main_power/readings?start=2026-04-07&end=2026-04-08",
                    "/api/v1/channels/air_flow/readings?start=2026-04-06&end=2026-04-09&max_points=50",
                    "/api/v1/channels/press_power", "/api/v1/co2/2026"):
            ra, rb = a.get(url, headers=auth("read")), b.get(url, headers=auth("read"))
            assert ra.status_code == rb.status_code == 200, (url, rb.text[:300])
            _same(ra.json(), rb.json(), url)
        fa = a.get("/api/v1/findings", headers=auth("read")).json()
        fb = b.get("/api/v1/findings", headers=auth("read")).json()
        assert fa["start"] == fb["start"] and fa["end"] == fb["end"]
        key = lambda f: (f["kind"], f["channel"])
        assert sorted(map(key, fa["items"])) == sorted(map(key, fb["items"]))
        for x, y in zip(sorted(fa["items"], key=key), sorted(fb["items"], key=key)):
            assert x["energy_kwh"] == pytest.approx(y["energy_kwh"], rel=1e-6)
        ch = {c["id"]: c for c in b.get("/api/v1/channels", headers=auth("read")).json()["items"]}
        assert ch["compressor_power"]["quantity"] == "power_kw" and ch["air_flow"]["system"] == "air1"
    finally:
        emb.close()
        ifx.close()
