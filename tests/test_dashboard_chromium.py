"""The dashboard in Debian's headless Chromium against `mieruka serve` on a free
port: the JS fills live values, today's profile and the findings; a screenshot
is taken and is not blank; no token ever reaches the server log."""
from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import numpy as np
import pytest

from helpers.api_site import TOKENS, Server, loaded_site

CHROMIUM = shutil.which("chromium")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")]


def chromium(tmp, *args, url):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp / 'chromium-profile'}", "--window-size=1280,900",
           "--virtual-time-budget=15000", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash")
    cfg, store, _ = loaded_site(tmp, days=14)
    store.close()
    srv = Server(cfg.source)
    yield srv, tmp
    srv.stop()


def test_dashboard_fills_values_profile_and_findings(server):
    srv, tmp = server
    url = f"{srv.url}/dashboard#token={TOKENS['read']}"
    r = chromium(tmp, "--dump-dom", url=url)
    dom = r.stdout
    assert 'data-loaded="yes"' in dom, r.stderr[-2000:]
    m = re.search(r'id="value-main_power"[^>]*>([^<]+)<', dom)
    assert m and re.match(r"^[\d,.]+$", m.group(1)), m
    assert re.search(r'<path[^>]+d="M[\d.]+,[\d.]+L', dom) and 'class="today"' in dom and 'class="baseline"' in dom
    assert "待機電力" in dom and "エア漏れ" in dom                      # findings table, Japanese site
    assert 'class="finding"' in dom
    assert "テスト工場" in dom

    png = tmp / "dashboard.png"
    r = chromium(tmp, f"--screenshot={png}", url=url)
    assert png.is_file() and png.stat().st_size > 10_000, r.stderr[-2000:]
    from PIL import Image
    img = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert img.shape == (900, 1280)
    assert img.std() > 10 and len(np.unique(img)) > 50               # not a blank page


def test_dashboard_without_token_asks_for_one(server):
    srv, tmp = server
    dom = chromium(tmp, "--dump-dom", url=f"{srv.url}/dashboard").stdout
    assert re.search(r'<form id="login"(?![^>]*hidden)', dom)
    assert re.search(r'<main id="main"[^>]*hidden', dom)


def test_no_token_in_server_log(server):
    srv, _ = server
    h = {"Authorization": f"Bearer {TOKENS['admin']}"}
    assert httpx.get(f"{srv.url}/api/v1/channels", headers=h).status_code == 200
    assert httpx.get(f"{srv.url}/api/v1/channels", headers={"Authorization": "Bearer wrong-secret-1"}).status_code == 401
    httpx.get(f"{srv.url}/api/v1/sites?token=typed-by-hand-secret", headers=h)
    r = httpx.get(f"{srv.url}/dashboard", headers={"Authorization": f"Bearer {TOKENS['read']}"})
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    log = srv.log.read_text(errors="replace")
    assert "GET /api/v1/channels" in log                                   # the access log is on
    for secret in (*TOKENS.values(), "wrong-secret-1", "typed-by-hand-secret"):
        assert secret not in log


def test_two_workers_serve_and_keep_tokens_out_of_the_log(server):
    _, tmp = server
    srv = Server(tmp / "site.toml", log=tmp / "workers.log", args=("--workers", "2"))
    try:
        h = {"Authorization": f"Bearer {TOKENS['read']}"}
        codes = {httpx.get(f"{srv.url}/api/v1/channels/main_power?token=hand-typed-2", headers=h).status_code
                 for _ in range(10)}
        assert codes == {200}
        assert httpx.get(f"{srv.url}/api/v1/sites").status_code == 401
    finally:
        srv.stop()
    log = srv.log.read_text(errors="replace")
    assert "token=***" in log and "hand-typed-2" not in log and TOKENS["read"] not in log


def test_dashboard_shows_the_demand_gauge_from_the_collector_status(server):
    """The live period as a collector writes it (a real LiveDemand fed 10 minutes of
    readings, written the way the health module writes its snapshot): the gauge has
    the period's clock, the target line, the prediction and the stage."""
    import json
    import time as _time

    from mieruka.collector.live_demand import LiveDemand
    from mieruka.models import Quality, ReadingBatch
    from mieruka.site import load_site
    srv, tmp = server
    cfg = load_site(srv_config(tmp))
    cfg.demand.target_kw, cfg.demand.contract_kw = 100.0, 120.0
    live = LiveDemand(cfg, power_channel="main_power")
    now_ms = int(_time.time() * 1000)
    p0 = now_ms - now_ms % 1_800_000                     # a UTC half hour is a JST half hour
    if now_ms - p0 < 700_000:                            # early in a period: use the one before
        p0 -= 1_800_000
    t = np.arange(p0, p0 + 600_000, 1000, dtype=np.int64)
    live.observe(ReadingBatch(t.astype("datetime64[ms]"), np.full(t.size, "main_power", object),
                              np.full(t.size, 95.0), np.full(t.size, Quality.OK, np.uint8)))
    snap = {"time": _time.time(), "interval_s": 2.0, "demand": live.status(t[-1] / 1000)}
    (cfg.data_dir / "collector-status.json").write_text(json.dumps(snap), encoding="utf-8")
    url = f"{srv.url}/dashboard#token={TOKENS['read']}"
    dom = chromium(tmp, "--dump-dom", url=url).stdout
    assert 'class="target-line"' in dom and 'class="contract-line"' in dom and 'class="predicted-marker"' in dom
    assert 'class="period-clock"' in dom or 'id="demand-left"' in dom
    m = re.search(r'id="demand-predicted"[^>]*>予測デマンド ([\d.,]+) kW<', dom)
    assert m and abs(float(m.group(1)) - 95.0) < 1.0, m
    assert re.search(r'id="demand-stage"[^>]*>警報<', dom)          # 95 kW: over 90 %, the second of three stages
    png = tmp / "dashboard-demand.png"
    chromium(tmp, f"--screenshot={png}", url=url)
    assert png.is_file() and png.stat().st_size > 10_000


def srv_config(tmp):
    return tmp / "site.toml"
