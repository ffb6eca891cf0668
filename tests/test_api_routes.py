"""Data routes: bounded downsampling, ISO 8601 offsets, cursor pages, profiles,
findings and plan, problem+json errors."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from helpers.api_site import START, auth, client, loaded_site

from mieruka.service.context import choose_interval_s


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    cfg, store, rec = loaded_site(tmp_path_factory.mktemp("routes"), days=14)
    yield client(cfg, store), rec
    store.close()


def get(c, url, role="read"):
    r = c.get(url, headers=auth(role))
    return r.status_code, (r.json() if r.headers["content-type"].endswith("json") else r.text)


def test_interval_choice_bounds_points():
    for span in (60, 3600, 86_400, 7 * 86_400, 400 * 86_400):
        for n in (10, 100, 1440, 2000):
            step = choose_interval_s(span, n)
            assert span / step <= n
    assert choose_interval_s(86_400, 1440) == 60
    assert choose_interval_s(86_400, 1440, requested_s=300) == 300     # coarser wish honoured
    assert choose_interval_s(86_400, 100, requested_s=60) == 900       # finer wish widened


def test_one_day_of_minutes_and_a_bounded_fortnight(api):
    c, rec = api
    from mieruka.recording import read_recording
    main = read_recording(rec).channels["main_power"]
    code, d = get(c, "/api/v1/channels/main_power/readings?start=2026-04-07T00:00:00%2B09:00&end=2026-04-08T00:00:00%2B09:00")
    assert code == 200 and d["interval_s"] == 60 and d["points"] == 1440 == len(d["time"])
    assert d["time"][0] == "2026-04-07T00:00:00+09:00" and d["start"] == "2026-04-07T00:00:00+09:00"
    i0 = int(np.searchsorted(main.time, np.datetime64("2026-04-06T15:00", "ms")))
    assert d["mean"][:5] == pytest.approx(main.value[i0:i0 + 5].tolist())
    # the same instants written in UTC give the same answer, times still in site time
    _, u = get(c, "/api/v1/channels/main_power/readings?start=2026-04-06T15:00:00Z&end=2026-04-07T15:00:00Z")
    assert u["time"] == d["time"] and u["mean"] == d["mean"]
    # 14 days asked with at most 100 points: hourly bins would be 336, so a coarser nice step
    code, d = get(c, "/api/v1/channels/main_power/readings?start=2026-04-06&end=2026-04-20&max_points=100")
    assert code == 200 and d["points"] <= 100 and d["interval_s"] == 21600
    k = 1                                                                     # a full interval: mean/min/max by hand
    t0 = dt.datetime.fromisoformat(d["time"][k])
    sel = (main.time >= np.datetime64(int(t0.timestamp() * 1000), "ms")) & \
          (main.time < np.datetime64(int(t0.timestamp() * 1000) + 21_600_000, "ms"))
    assert d["count"][k] == sel.sum() == 360
    assert d["mean"][k] == pytest.approx(main.value[sel].mean())
    assert (d["min"][k], d["max"][k]) == pytest.approx((main.value[sel].min(), main.value[sel].max()))
    # asking for more than the server's cap gets the cap
    code, d = get(c, "/api/v1/channels/main_power/readings?start=2026-04-06&end=2026-04-20&max_points=1000000")
    assert code == 200 and d["points"] <= 2000


def test_channel_pages_follow_next(api):
    c, _ = api
    seen, url = [], "/api/v1/channels?limit=2"
    while url:
        code, d = get(c, url)
        assert code == 200 and d["total"] == 5 and len(d["items"]) <= 2
        seen += [i["id"] for i in d["items"]]
        url = d["next"]
    assert sorted(seen) == ["air_flow", "compressor_power", "lighting_power", "main_power", "press_power"]
    _, d = get(c, "/api/v1/channels/press_power")
    assert d["status"] == "stale" and d["quality"] == "ok" and d["time"].endswith("+09:00")
    assert d["time"] == "2026-04-19T23:59:00+09:00"


def test_findings_plan_and_profile(api):
    c, _ = api
    code, d = get(c, "/api/v1/findings")
    assert code == 200 and d["start"] == "2026-04-06T00:00:00+09:00" and d["end"] == "2026-04-20T00:00:00+09:00"
    kinds = {f["kind"] for f in d["items"]}
    assert {"standby", "air_leak"} <= kinds
    yen = [f["cost_jpy"] or 0 for f in d["items"]]
    assert yen == sorted(yen, reverse=True)
    code, p = get(c, "/api/v1/findings?kind=standby&limit=1")
    assert p["total"] == sum(f["kind"] == "standby" for f in d["items"]) and len(p["items"]) == 1
    assert p["next"] and "kind=standby" in p["next"]
    code, plan = get(c, "/api/v1/plan")
    assert code == 200 and plan["measures"] and all("payback_years" in m for m in plan["measures"])
    code, prof = get(c, f"/api/v1/channels/press_power/profile?date=2026-04-15")
    assert code == 200 and prof["day_type"] == "workday" and len(prof["today"]) == 96 and prof["baseline_days"] == 7   # Mon 6 .. Tue 14 April
    assert prof["today"][12 * 4] == pytest.approx(40.0, abs=0.5) and prof["today"][2 * 4] == pytest.approx(3.0, abs=0.3)


@pytest.mark.parametrize("url,status", [
    ("/api/v1/channels/nope", 404),
    ("/api/v1/channels/nope/readings", 404),
    ("/api/v1/sites/other", 404),
    ("/api/v1/channels/main_power/readings?start=yesterday", 422),
    ("/api/v1/channels/main_power/readings?start=2026-04-08&end=2026-04-07", 422),
    ("/api/v1/channels/main_power/readings?max_points=0", 422),
    ("/api/v1/channels?cursor=%%%", 422),
    ("/api/v1/findings?start=2020-01-01&end=2026-01-01", 422),
    ("/api/v1/co2/1800", 422),
])
def test_errors_are_problem_json(api, url, status):
    c, _ = api
    r = c.get(url, headers=auth("read"))
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["title"] and body["instance"] == url.split("?")[0]


def test_wrong_method_is_problem_json(api):
    c, _ = api
    r = c.delete("/api/v1/channels", headers=auth("admin"))
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"


def test_admin_rerun_and_reload(api):
    c, _ = api
    r = c.post("/api/v1/analysis/run", headers=auth("admin"))
    assert r.status_code == 200 and r.json()["status"] == "done"
    r = c.post("/api/v1/reload", headers=auth("admin"))
    assert r.status_code == 200 and r.json()["status"] == "reloaded"
    assert c.get("/api/v1/sites", headers=auth("read")).status_code == 200


def test_collector_health_snapshot(api):
    import json
    import time
    c, _ = api
    cfg = c.app.state.ctx.cfg
    path = cfg.data_dir / "collector-status.json"
    path.unlink(missing_ok=True)
    assert get(c, "/api/v1/collector/health")[1] == {"available": False, "snapshot": None}
    snap = {"time": time.time() - 5, "site": "テスト工場", "devices": [{"device": "pm1", "latency_s": 0.01}],
            "errors": {"timeout": 2}}
    path.write_text(json.dumps(snap), encoding="utf-8")
    try:
        code, d = get(c, "/api/v1/collector/health")
        assert code == 200 and d["available"] and d["snapshot"]["errors"] == {"timeout": 2}
        assert 4 <= d["snapshot"]["age_s"] < 60 and d["snapshot"]["time_iso"].endswith("+09:00")
    finally:
        path.unlink()
