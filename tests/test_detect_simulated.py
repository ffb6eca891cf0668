"""Detectors scored against the simulator's ground truth.

Several simulated factories (sizes, noise, 1-s and 1-min data, missing-data
gaps, meter faults, Golden Week and 年末年始) go through the whole analysis
pipeline; the findings are compared with the truth the simulator wrote:
standby mean within 10%, leak flow within 15%, every injected gap day found
with at most one false day a month, holidays never taken for gaps,
compressor shares and levels close to the machine's.
"""
from __future__ import annotations

import datetime as dt

import pytest

from mieruka.analytics.co2 import CO2Engine
from mieruka.analytics.pipeline import AnalysisParams, analyze
from mieruka.calendar import SiteCalendar
from mieruka.models import ChannelData
from mieruka.simulators.recording import generate_channels
from mieruka.simulators.scenario import parse_scenario

WEEK = {d: ["08:00-12:00", "13:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
HOLIDAY_TYPES = ("sunday_holiday", "company_holiday")


def factory(name, noise=0.03, loads=(), compressors=(), events=(), faults=(), shifts=WEEK, company=None):
    cal = {"holidays": "JP", "shifts": shifts}
    if company:
        cal["company_holidays"] = company
    return {"scenario": {"name": name, "noise": noise}, "calendar": cal,
            "main": {"channel": "main", "unmetered_production_kw": 8, "unmetered_standby_kw": 1.5},
            "loads": list(loads), "compressors": list(compressors), "events": list(events), "faults": list(faults)}


def simulate_and_analyze(sc_dict, start, days, step_s, seed=1, calendar=None, capacities=True):
    """Simulate, then analyse the recorded arrays (non-OK readings dropped by the pipeline)."""
    sc = parse_scenario(sc_dict)
    sim = generate_channels(sc, start, days, step_s, seed)
    cal = calendar or SiteCalendar.from_section(sc.calendar, sc.scenario.timezone)
    infos = {i.id: i for i in sim.infos}
    if capacities:   # nameplate capacity comes from the site config in practice
        for c in sc.compressors:
            infos[c.power_channel].capacity_m3_per_min = c.capacity_m3_per_min
    chans = {cid: ChannelData(infos[cid], t, v, q) for cid, (t, v, q) in sim.data.items()}
    res = analyze(chans, cal, CO2Engine(), AnalysisParams(language="en", tariff_jpy_per_kwh=25.0))
    return res, sim.truth


def check_standby(res, truth, rel=0.10):
    found = {f.channel: f for f in res.findings if f.kind == "standby"}
    checked = 0
    for cid, c in truth["channels"].items():
        if c.get("quantity") != "power_kw" or c.get("equipment_kind") in ("compressor",):
            continue
        if c["off_outside_production"] or c["standby_kw"] <= c["standby_allowance_kw"] * 1.02:
            assert cid not in found, f"{cid}: off or within allowance outside production, yet reported"
            continue
        if c["standby_kw"] - c["standby_allowance_kw"] < 0.1:     # a lamp at lunch: reporting is optional
            if cid in found:
                assert found[cid].metrics["mean_kw"] == pytest.approx(c["standby_kw"], rel=rel, abs=0.02)
            continue
        assert cid in found, f"{cid}: standby {c['standby_kw']:.2f} kW not found"
        est = found[cid].metrics["mean_kw"]
        assert est == pytest.approx(c["standby_kw"], rel=rel), cid
        assert found[cid].metrics["hours"] > 0
        checked += 1
    assert checked >= 2


def check_leaks(res, truth, rel=0.15):
    leaks = {f.metrics["system"]: f for f in res.findings if f.kind == "air_leak"}
    growth = {f.metrics["system"] for f in res.findings if f.kind == "air_leak_growth"}
    for sysid, s in truth["systems"].items():
        if s["stop_outside_production"]:
            continue
        assert sysid in leaks, f"{sysid}: no leak finding"
        m = leaks[sysid].metrics
        assert m["leak_flow_m3min"] == pytest.approx(s["leak_flow_m3min"], rel=rel), sysid
        if s["leak_share"] is not None:
            assert m["leak_share"] == pytest.approx(s["leak_share"], rel=rel), sysid
        assert (sysid in growth) == s["leak_growing"], sysid
        assert leaks[sysid].annual_energy_kwh > 0


def check_gaps(res, truth, days):
    """Every injected day found on its channel; false days at most one per 30 days;
    no finding on a holiday without an event that day."""
    found = {(f.channel, f.metrics["date"]) for f in res.findings if f.kind == "baseline_gap"}
    events = {(e["channel"], e["date"]) for e in truth["events"] if e["date"]}
    run_days = {e["date"] for e in truth["events"] if e["kind"] == "holiday_run"}
    incomer = next((c for c, v in truth["channels"].items()
                    if v.get("equipment_kind") == "incomer" and v["quantity"] == "power_kw"), "main")
    injected = {(e["injected_on"] or incomer, e["date"]) for e in truth["events"] if e["date"]}
    missed = injected - found
    assert not missed, f"missed gap days {sorted(missed)}"
    false = {x for x in found - events if x[1] not in run_days}
    assert len({d for _, d in false}) <= max(1, days // 30), f"false gap days {sorted(false)}"
    for f in res.findings:
        if f.kind == "baseline_gap" and f.metrics["day_type"] in HOLIDAY_TYPES:
            assert (f.channel, f.metrics["date"]) in events or f.metrics["date"] in run_days, f.metrics
    return len(injected)


def check_compressors(res, truth, share_abs=0.03, rel=0.10):
    prof = {f.channel: f.metrics for f in res.findings if f.kind == "compressor_profile"}
    for sysid, s in truth["systems"].items():
        m = prof[s["compressor_channel"]]
        for k in ("load_share", "unload_share", "off_share"):
            assert m[k] == pytest.approx(s[k], abs=share_abs), (sysid, k)
        assert m["control"] == s["control"]
        if s["control"] == "load_unload":
            assert m["unload_power_kw"] == pytest.approx(s["unload_power_kw"], rel=rel), sysid
        assert m["loaded_specific_power_kw_per_m3min"] == pytest.approx(
            s["loaded_specific_power_kw_per_m3min"], rel=rel), sysid
        if s["system_specific_energy_kwh_per_m3"]:
            assert m["system_specific_energy_kwh_per_m3"] == pytest.approx(
                s["system_specific_energy_kwh_per_m3"], rel=rel), sysid


def check_priced(res):
    assert res.findings
    for f in res.findings:
        assert f.cost_jpy is not None and f.co2_t is not None and f.factor, f.kind
        assert f.cost_jpy == pytest.approx(25.0 * f.energy_kwh)
        assert f.explanation and "\n" not in f.explanation
    assert res.plan and all(m.cost_jpy_per_year is not None for m in res.plan)
    yen = [m.cost_jpy_per_year for m in res.plan]
    assert yen == sorted(yen, reverse=True)


# ------------------------------------------------------------------ factories
SMALL_LOADS = [{"channel": "press", "production_kw": 18, "standby_kw": 2.4},
               {"channel": "weld", "production_kw": 30, "standby_kw": 0.8},
               {"channel": "light", "kind": "lighting", "production_kw": 6, "standby_kw": 0},
               {"channel": "fridge", "kind": "constant", "production_kw": 3, "standby_kw": 3,
                "standby_allowance_kw": 3},
               {"channel": "hvac", "kind": "hvac", "production_kw": 10, "standby_kw": 1.0, "hvac_kw_per_degc": 0.5}]
SMALL_AIR = [{"system": "air1", "power_channel": "comp1", "flow_channel": "flow1", "pressure_channel": "pres1",
              "capacity_m3_per_min": 10, "full_load_power_kw": 55, "demand_production_m3min": 6, "leak_m3min": 1.5}]


def test_small_factory_golden_week_1min():
    """35 days over Golden Week (national holidays on weekdays), growing leak."""
    events = [{"kind": "left_on", "channel": "press", "count": 2}, {"kind": "night_high", "channel": "weld", "count": 2},
              {"kind": "holiday_run", "count": 1},
              {"kind": "leak_growth", "system": "air1", "growth_m3min_per_week": 0.3}]
    res, truth = simulate_and_analyze(factory("small", 0.03, SMALL_LOADS, SMALL_AIR, events), "2025-04-14", 35, 60)
    check_standby(res, truth)
    check_leaks(res, truth)
    assert check_gaps(res, truth, 35) == 5
    check_compressors(res, truth)
    check_priced(res)
    gw = {f.metrics["date"] for f in res.findings if f.kind == "baseline_gap"}
    assert not gw & {"2025-04-29", "2025-05-06"} - {e["date"] for e in truth["events"] if e["date"]}


def test_large_noisy_factory_new_year_faults_1min():
    """11 breakers, two air systems (one without flow meter: leak load method),
    8% noise, missing-data gaps, timeouts, garbage and a stuck meter, 年末年始."""
    loads = [{"channel": f"m{i}", "production_kw": 10 + 7 * i, "standby_kw": 0.5 + 0.6 * i} for i in range(6)] + [
        {"channel": "light", "kind": "lighting", "production_kw": 12, "standby_kw": 0},
        {"channel": "fridge", "kind": "constant", "production_kw": 4, "standby_kw": 4, "standby_allowance_kw": 4},
        {"channel": "hvac", "kind": "hvac", "production_kw": 20, "standby_kw": 2.0, "hvac_kw_per_degc": 0.8}]
    air = [{"system": "air1", "power_channel": "comp1", "flow_channel": "flow1", "pressure_channel": "pres1",
            "capacity_m3_per_min": 12, "full_load_power_kw": 75, "demand_production_m3min": 7, "leak_m3min": 2.0},
           {"system": "air2", "power_channel": "comp2", "capacity_m3_per_min": 6, "full_load_power_kw": 37,
            "demand_production_m3min": 3.5, "leak_m3min": 1.0}]
    events = [{"kind": "left_on", "channel": "m2", "count": 2}, {"kind": "night_high", "channel": "m4", "count": 2},
              {"kind": "left_on", "channel": "m5", "count": 1, "level": 0.5}, {"kind": "holiday_run", "count": 1}]
    faults = [{"meter": "m1", "kind": "gap", "count": 3, "duration_min": 240},
              {"meter": "m3", "kind": "timeout", "count": 4, "duration_min": 60},
              {"meter": "main", "kind": "garbage", "count": 2, "duration_min": 30},
              {"meter": "m0", "kind": "stuck", "count": 2, "duration_min": 120}]
    company = [{"name": "年末年始", "from": "12-29", "to": "01-03"}]
    sc = factory("large", 0.08, loads, air, events, faults, company=company)
    res, truth = simulate_and_analyze(sc, "2025-12-15", 35, 60, seed=7)
    check_standby(res, truth)
    check_leaks(res, truth)
    assert check_gaps(res, truth, 35) == 6
    check_compressors(res, truth)
    check_priced(res)
    leak2 = next(f for f in res.findings if f.kind == "air_leak" and f.metrics["system"] == "air2")
    assert leak2.metrics["method"] == "leak_load"
    # out of sample, the baseline meets the ASHRAE G14 hourly limits once the non-routine
    # days (the gap findings) are set aside; with them in, the holiday run dominates the error
    fit = res.summary["baseline"]["m1"]
    assert fit["cv_rmse_excluding_gap_days"] < 0.30 and abs(fit["nmbe_excluding_gap_days"]) < 0.10
    assert fit["cv_rmse"] > fit["cv_rmse_excluding_gap_days"] and abs(fit["nmbe"]) < 0.10


def test_auditor_without_company_holidays_never_flags_them():
    """An auditor's calendar without the company's 年末年始: the low days are not gaps."""
    loads = [{"channel": "press", "production_kw": 25, "standby_kw": 2.0},
             {"channel": "cnc", "production_kw": 15, "standby_kw": 1.2}]
    sc = factory("nocompany", 0.05, loads, company=[{"name": "年末年始", "from": "12-29", "to": "01-03"}])
    bare = SiteCalendar(timezone="Asia/Tokyo", holidays_country="JP", shifts=WEEK)
    res, truth = simulate_and_analyze(sc, "2025-12-10", 40, 60, seed=3, calendar=bare)
    flagged = {f.metrics["date"] for f in res.findings if f.kind == "baseline_gap"}
    new_year = {(dt.date(2025, 12, 29) + dt.timedelta(days=k)).isoformat() for k in range(6)}
    assert not flagged & new_year
    assert len(flagged) <= 1


def test_one_second_data_compressor_states_and_standby():
    """1-s data (short span): pure load/unload states, cycles per hour, standby, leaks."""
    res, truth = simulate_and_analyze(factory("fast", 0.03, SMALL_LOADS, SMALL_AIR), "2025-06-02", 4, 1.0, seed=5)
    check_standby(res, truth)
    check_leaks(res, truth)
    check_compressors(res, truth, share_abs=0.01, rel=0.03)
    comp = next(f for f in res.findings if f.kind == "compressor_profile")
    assert comp.metrics["cycles_per_hour"] > 1


def test_vsd_and_night_stop_compressor():
    """A VSD system and a load/unload machine switched off outside production."""
    air = [{"system": "v1", "power_channel": "vsd1", "flow_channel": "vflow", "control": "vsd",
            "capacity_m3_per_min": 8, "full_load_power_kw": 45, "demand_production_m3min": 5, "leak_m3min": 0.8},
           {"system": "s1", "power_channel": "lu1", "flow_channel": "sflow", "capacity_m3_per_min": 5,
            "full_load_power_kw": 30, "demand_production_m3min": 3, "leak_m3min": 0.5,
            "stop_outside_production": True}]
    res, truth = simulate_and_analyze(factory("air", 0.03, SMALL_LOADS[:2], air), "2025-06-02", 14, 60, seed=2)
    prof = {f.channel: f.metrics for f in res.findings if f.kind == "compressor_profile"}
    assert prof["vsd1"]["control"] == "vsd"
    assert prof["lu1"]["off_share"] == pytest.approx(truth["systems"]["s1"]["off_share"], abs=0.03)
    check_leaks(res, truth)
    # the stopped machine's leak cannot be measured at night: no invented figure
    assert not [f for f in res.findings if f.kind == "air_leak" and f.metrics["system"] == "s1"
                and f.metrics["method"] == "leak_load"]
    ids = {m.id for m in res.plan}
    assert "compressor_night_stop" in ids and "pressure_setpoint" in ids


def test_json_is_deterministic_and_complete():
    sc = factory("det", 0.03, SMALL_LOADS[:3], SMALL_AIR, [{"kind": "left_on", "channel": "press", "count": 1}])
    a, _ = simulate_and_analyze(sc, "2025-09-01", 14, 60, seed=11)
    b, _ = simulate_and_analyze(sc, "2025-09-01", 14, 60, seed=11)
    ja, jb = a.to_json(), b.to_json()
    assert ja == jb
    import json
    d = json.loads(ja)
    assert set(d) >= {"findings", "summary", "plan"}
    assert d["summary"]["energy_kwh"]["press"] > 0
    assert set(d["summary"]["baseline"]["press"]) >= {"cv_rmse", "nmbe"}
    kinds = {f["kind"] for f in d["findings"]}
    assert {"standby", "air_leak", "baseline_gap", "compressor_profile"} <= kinds
    required = {"standby": {"mean_kw", "hours"}, "air_leak": {"leak_flow_m3min", "leak_share"},
                "baseline_gap": {"date", "day_type", "excess_kwh"},
                "compressor_profile": {"load_share", "unload_share", "off_share", "unload_power_kw",
                                       "loaded_specific_power_kw_per_m3min", "system_specific_energy_kwh_per_m3"}}
    for f in d["findings"]:
        assert required.get(f["kind"], set()) <= set(f["metrics"]), f["kind"]
        assert {"kind", "channel", "start", "end", "energy_kwh", "cost_jpy", "co2_t", "explanation"} <= set(f)
        assert f["explanation_ja"] and f["explanation_en"]


@pytest.mark.parametrize("days,step_s", [(0.2, 60.0), (10, 900.0)])
def test_short_and_coarse_recordings(days, step_s):
    """A few hours of 1-min data and 15-min data: findings where measurable, no crash."""
    res, truth = simulate_and_analyze(factory("edge", 0.03, SMALL_LOADS, SMALL_AIR), "2025-06-02", days, step_s, seed=5)
    assert {"standby", "compressor_profile"} <= {f.kind for f in res.findings}
    assert res.summary["energy_kwh"]["press"] == pytest.approx(truth["channels"]["press"]["energy_kwh"], rel=0.02)
    res.to_json()


def test_demo_site_month_all_events_and_growing_leak():
    """The README demo: a simulated month of the demo factory, analysed with its site
    config: every injected day, the growing leak and the standby levels are found."""
    from mieruka.simulators.site_link import scenario_for_site, simulation_section
    from mieruka.site import load_site
    from helpers.demo import DEMO_SITE

    cfg = load_site(DEMO_SITE)
    sc = scenario_for_site(cfg)
    sim = generate_channels(sc, "2026-04-01", 30, 60.0, simulation_section(cfg).seed, cfg)
    by_id = {c.id: c for _, c in cfg.channels()}
    infos = {i.id: i for i in sim.infos}
    for cid, info in infos.items():
        if cid in by_id:
            info.capacity_m3_per_min = by_id[cid].capacity_m3_per_min or info.capacity_m3_per_min
    chans = {cid: ChannelData(infos[cid], t, v, q) for cid, (t, v, q) in sim.data.items()}
    res = analyze(chans, SiteCalendar.from_config(cfg), CO2Engine.from_site(cfg), AnalysisParams(language="ja"))
    truth = sim.truth
    check_standby(res, truth)
    check_leaks(res, truth)
    check_gaps(res, truth, 30)
    check_compressors(res, truth)
    assert res.plan and res.summary["plan_total"]["reduction_contribution_pct"] > 0
