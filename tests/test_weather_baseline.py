"""Weather- and drift-adjusted baselines, always-on loads and defensible savings.

Hand-made arrays with known answers for the pure functions (change-point fits,
recency sums, inferred days off, always-on rules), then a simulated year of a
factory with weather-driven chillers, an always-on server room, refrigeration
and drifting production, scored against the simulator's truth.
"""
from __future__ import annotations

import numpy as np
import pytest

from mieruka.analytics import baseline_model as bm
from mieruka.analytics import weather as wx
from mieruka.analytics.base_load import ALWAYS_ON_KINDS, always_on_reason, follows_production
from mieruka.analytics.co2 import CO2Engine
from mieruka.analytics.pipeline import AnalysisParams, analyze
from mieruka.models import ChannelData
from mieruka.calendar import COMPANY_HOLIDAY, SATURDAY, SUNDAY_HOLIDAY, WORKDAY, SiteCalendar
from mieruka.simulators.recording import generate_channels
from mieruka.simulators.scenario import parse_scenario

from helpers.weather_site import weather_site


# ------------------------------------------------------------------ change-point models
def test_cooling_change_point_recovers_balance_point_and_slope():
    t = np.linspace(0, 32, 120)
    e = 100 + 5.0 * np.maximum(t - 18.0, 0)
    m = wx.fit_change_point(e, t)
    assert m.form == "cooling"
    assert m.cooling_balance_c == pytest.approx(18.0, abs=1.5)
    assert m.cooling_kwh_per_degc == pytest.approx(5.0, rel=0.1)
    assert m.intercept_kwh == pytest.approx(100, rel=0.03)
    assert wx.predict_change_point(m, np.array([30.0]))[0] == pytest.approx(160, rel=0.03)


def test_heating_and_both_forms_and_flat_data():
    rng = np.random.default_rng(1)
    t = np.linspace(-5, 30, 200)
    heat = 50 + 3.0 * np.maximum(12 - t, 0) + rng.normal(0, 1, t.size)
    assert wx.fit_change_point(heat, t).form == "heating"
    both = 50 + 3.0 * np.maximum(10 - t, 0) + 4.0 * np.maximum(t - 22, 0) + rng.normal(0, 1, t.size)
    m = wx.fit_change_point(both, t)
    assert m.form == "heating_cooling"
    assert m.heating_balance_c < m.cooling_balance_c
    flat = 80 + rng.normal(0, 2, t.size)
    assert wx.fit_change_point(flat, t).form == "intercept"      # the simpler model wins a tie
    assert wx.fit_change_point(np.array([1.0, 2.0]), np.array([3.0, 4.0])).form == "intercept"   # too few days


def test_daily_mean_temperature_needs_half_a_day():
    hours = np.full((2, 24), 10.0)
    hours[1, :14] = np.nan
    out = wx.daily_mean_temperature(hours)
    assert out[0] == 10.0 and np.isnan(out[1])
    assert wx.is_outdoor_temperature("temperature_c", "outdoor_air")
    assert wx.is_outdoor_temperature("temperature_c", "外気")
    assert not wx.is_outdoor_temperature("temperature_c", "oven")


# ------------------------------------------------------------------ drift weights, days off
@pytest.mark.parametrize("tau", [None, 30.0, 3.0, 0.5])
def test_recency_sums_equal_the_explicit_kernel(tau):
    x = np.random.default_rng(2).random((400, 3))
    assert np.allclose(bm.recency_sums(x, tau), bm.recency_kernel(400, tau) @ x, rtol=1e-9, atol=1e-9)


def test_batched_change_point_fits_equal_one_at_a_time():
    # series of different lengths, forms and noise, with NaN days and a too-short one:
    # the padded batch must give each series the model it gets alone
    rng = np.random.default_rng(5)
    series = []
    for n, kind in ((200, "cool"), (90, "heat"), (365, "both"), (40, "flat"), (6, "cool"), (150, "both")):
        t = rng.uniform(-5, 35, n)
        e = 80 + {"cool": 4 * np.maximum(t - 20, 0), "heat": 3 * np.maximum(12 - t, 0),
                  "both": 2 * np.maximum(10 - t, 0) + 5 * np.maximum(t - 22, 0), "flat": 0 * t}[kind]
        e = e + rng.normal(0, 3, n)
        e[rng.random(n) < 0.05] = np.nan
        series.append((e, t))
    batch = wx.fit_change_points(series)
    for (e, t), b in zip(series, batch):
        a = wx.fit_change_point(e[np.isfinite(e)], t[np.isfinite(e)])
        assert (a.form, a.n_days, a.heating_balance_c, a.cooling_balance_c) == \
            (b.form, b.n_days, b.heating_balance_c, b.cooling_balance_c)
        for k in ("intercept_kwh", "heating_kwh_per_degc", "cooling_kwh_per_degc", "r2"):
            assert getattr(a, k) == pytest.approx(getattr(b, k), rel=1e-10, abs=1e-10)
    assert [m.form for m in batch] == ["cooling", "heating", "heating_cooling", "intercept", "intercept",
                                       "heating_cooling"]


def test_drift_predictions_equal_the_explicit_weighted_mean():
    # out of sample, drift model, no weather: each day's prediction is the recency-weighted
    # mean of the same-type days of the other folds (kernel products in row chunks)
    rng = np.random.default_rng(9)
    n = 300
    day_type = np.where(np.arange(n) % 7 < 5, WORKDAY, SUNDAY_HOLIDAY)
    kw = 10 + np.arange(n)[:, None] / 30 + rng.random((n, 24))
    kw[rng.random((n, 24)) < 0.02] = np.nan
    pred = bm.out_of_sample(kw, day_type, bm.SPECS[1], False)
    fold = bm.fold_ids(n)
    K = bm.recency_kernel(n, bm.DRIFT_TAU_DAYS)
    fin = np.isfinite(kw)
    for d in rng.choice(n, 25, replace=False):
        w = K[d] * ((fold != fold[d]) & (day_type == day_type[d]))
        expect = (w @ np.where(fin, kw, 0.0)) / (w @ fin)
        assert np.allclose(pred[d], expect, rtol=1e-12, atol=0)
    # and the chunked product is the plain one
    ri, ci = np.arange(n), np.nonzero(day_type == WORKDAY)[0]
    x = rng.random((ci.size, 27))
    assert np.allclose(bm._kernel_product(K, ri, ci, x), K[np.ix_(ri, ci)] @ x, rtol=1e-13, atol=0)

def test_drift_model_follows_a_level_shift():
    # 20 weeks of workdays at 10 kW, then 20 weeks at 15 kW: the plain mean predicts 12.5
    # everywhere; recency weights follow the shift
    n = 280
    kw = np.where(np.arange(n)[:, None] < 140, 10.0, 15.0) * np.ones((n, 24))
    types = np.full(n, WORKDAY)
    static = bm.out_of_sample(kw, types, bm.SPECS[0], False)
    drift = bm.out_of_sample(kw, types, bm.SPECS[1], False)
    assert bm.cv_rmse(kw, drift, 96)[0] < 0.5 * bm.cv_rmse(kw, static, 96)[0]
    choice = bm.choose_model(kw, types, False, None, bm.cv_rmse(kw, static, 96)[0])
    assert choice.spec.name == "day_type+drift" and not choice.weather_adjusted
    assert bm.drifts(kw, types)
    flat = 10.0 + np.random.default_rng(3).normal(0, 1, (n, 24))       # noise only: drift is not even tried
    assert not bm.drifts(flat, types)
    assert "day_type+drift" not in bm.choose_model(flat, types, False, None, 0.1).cv_rmse


def test_inferred_days_off():
    e = np.array([100.0] * 5 + [10.0, 10.0] + [100.0] * 5 + [12.0, 10.0, 10.0] + [100.0, 95.0])
    types = np.array([WORKDAY] * 5 + [SATURDAY, SUNDAY_HOLIDAY] + [WORKDAY] * 5 + [WORKDAY] +
                     [SATURDAY, SUNDAY_HOLIDAY] + [WORKDAY] * 2)
    types[5] = SUNDAY_HOLIDAY   # three days off of reference
    off = bm.infer_days_off(e, types)
    assert off.tolist() == [i == 12 for i in range(len(e))]       # the workday at day-off level
    assert not bm.infer_days_off(np.full(17, 100.0), types).any()  # a 24/7 site has none
    assert bm.off_days_as_company_holidays(types, off)[12] == COMPANY_HOLIDAY


def test_always_on_rules():
    assert {"it", "server", "refrigeration", "freezer", "lab"} <= ALWAYS_ON_KINDS
    assert always_on_reason(True, "press") == "configured"
    assert always_on_reason(None, "Server") == "equipment_kind"
    assert always_on_reason(False, "server") is None               # the config overrides the kind
    assert always_on_reason(1, None) == "configured"              # from a store (INTEGER column)
    assert always_on_reason(None, "press") is None
    assert not follows_production(9.0, 10.0)                      # 90 % of its production load at night
    assert follows_production(2.0, 10.0)


# ------------------------------------------------------------------ a simulated year, scored
@pytest.fixture(scope="module")
def weather_year():
    sc = parse_scenario(weather_site())
    sim = generate_channels(sc, "2025-04-01", 365, 900.0, 3)
    cal = SiteCalendar.from_section(sc.calendar, sc.scenario.timezone)
    chans = {i.id: ChannelData(i, *sim.data[i.id]) for i in sim.infos}
    res = analyze(chans, cal, CO2Engine(), AnalysisParams(language="en", tariff_jpy_per_kwh=25.0))
    no_temp = {k: v for k, v in chans.items() if v.info.quantity != "temperature_c"}
    res_nt = analyze(no_temp, cal, CO2Engine(), AnalysisParams(language="en", tariff_jpy_per_kwh=25.0))
    return res, res_nt, sim.truth


def _gap_days(res, main="main"):
    return {(f.channel, d) for f in res.findings if f.kind == "baseline_gap" and f.channel != main
            for d in f.metrics["dates"]}


def _truth_days(truth, main="main"):
    return {(e["channel"], e["date"]) for e in truth["events"] if e["date"] and e["channel"] != main}


def test_gap_days_precision_and_recall(weather_year):
    res, _, truth = weather_year
    found, true = _gap_days(res), _truth_days(truth)
    hits = found & true
    assert len(hits) / len(found) >= 0.9, sorted(found - true)
    assert len(hits) / len(true) >= 0.9, sorted(true - found)


def test_weather_adjusts_the_chiller_and_hot_days_are_not_gaps(weather_year):
    res, res_nt, truth = weather_year
    fit = res.summary["baseline"]["chiller"]
    assert fit["weather_adjusted"] and fit["model"].startswith("day_type+weather")
    assert "improved" in fit["weather_reason"]
    assert fit["cv_rmse"] < 0.5 * fit["cv_rmse_by_model"]["day_type"]
    assert not res.summary["baseline"]["lighting"]["weather_adjusted"]
    assert "does not follow" in res.summary["baseline"]["lighting"]["weather_reason"]
    # every chiller event (left on over a day off, whatever the weather) is still found
    chiller_events = {e["date"] for e in truth["events"] if e["channel"] == "chiller" and e["kind"] == "left_on"}
    assert len(chiller_events) == 3
    assert chiller_events <= {d for c, d in _gap_days(res) if c == "chiller"}
    # without the temperature, the day-type model takes hot days for gaps
    assert not res_nt.summary["baseline"]["chiller"]["weather_adjusted"]
    assert "no outdoor temperature" in res_nt.summary["baseline"]["chiller"]["weather_reason"]


def test_always_on_loads_get_base_load_not_standby(weather_year):
    res, _, truth = weather_year
    always = {c for c, v in truth["channels"].items() if v.get("always_on")}
    assert always == {"server_room", "cold_store"}
    assert not [f for f in res.findings if f.kind == "standby" and f.channel in always]
    bl = {f.channel: f for f in res.findings if f.kind == "base_load"}
    assert set(bl) == always
    assert bl["server_room"].metrics["base_kw"] == pytest.approx(12.0, rel=0.05)
    assert bl["server_room"].metrics["action"] == "review" and "not to switch off" in bl["server_room"].explanation
    assert not [m for m in res.plan if m.id == "review_base_load"]       # no savings unless configured
    # ranked after the findings to act on
    kinds = [f.kind for f in res.findings]
    assert kinds.index("base_load") > max(i for i, k in enumerate(kinds) if k != "base_load") - len(bl)


def test_plan_total_close_to_the_achievable_savings(weather_year):
    res, _, truth = weather_year
    per_year = res.summary["assumptions"]["annualisation_factor"]
    achievable = truth["achievable_savings_kwh"]["total_kwh"] * per_year
    tot = res.summary["plan_total"]
    assert tot["energy_kwh_per_year"] == pytest.approx(achievable, rel=0.20)
    assert tot["energy_kwh_per_year_low"] < tot["energy_kwh_per_year"] < tot["energy_kwh_per_year_high"]
    assert 0 < tot["share_of_site_energy_pct"] < 30
    for m in res.plan:
        assert m.confidence in ("high", "medium", "low") and m.energy_kwh_per_year_low <= m.energy_kwh_per_year
    # the incomer's standby holds the breakers' (and the always-on loads are left out of it)
    sb = {f.channel: f for f in res.findings if f.kind == "standby"}
    assert sb["main"].metrics["always_on_loads_kw"] == pytest.approx(17.0, rel=0.1)
    assert all("main" not in m.target.split(",") for m in res.plan if m.id == "standby_off")


def test_unconfigured_load_that_does_not_follow_production():
    sc = weather_site(temperature_channel=None, weather_c=0.0)
    sc["loads"] = [{"channel": "mystery", "kind": "constant", "production_kw": 7},
                   {"channel": "press", "production_kw": 30, "standby_kw": 2.0}]
    sc["events"] = []
    sim = generate_channels(parse_scenario(sc), "2025-04-01", 28, 900.0, 1)
    cal = SiteCalendar.from_section(parse_scenario(sc).calendar, "Asia/Tokyo")
    res = analyze({i.id: ChannelData(i, *sim.data[i.id]) for i in sim.infos}, cal, CO2Engine(), AnalysisParams(language="en"))
    by = {(f.kind, f.channel): f for f in res.findings}
    assert ("base_load", "mystery") in by and ("standby", "mystery") not in by
    assert by[("base_load", "mystery")].metrics["reason"] == "does_not_follow_production"
    assert ("standby", "press") in by
    # a 4-week window says its annual figures are extrapolated
    assert by[("standby", "press")].metrics["extrapolated"] is True
    assert "extrapolated from 28 days" in by[("standby", "press")].explanation


def test_consecutive_gap_days_are_one_episode_and_small_ones_fold():
    sc = weather_site(temperature_channel=None, weather_c=0.0, drift=0.0, season=0.0)
    sc["loads"] = [{"channel": "press", "production_kw": 30, "standby_kw": 2.0},
                   {"channel": "fan", "production_kw": 3, "standby_kw": 0.5}]
    # a long weekend left on (Sat, Sun, Mon), and one Sunday a small fan ran a little
    sc["events"] = [{"kind": "left_on", "channel": "press", "date": d} for d in ("2025-05-17", "2025-05-18")] + \
                   [{"kind": "left_on", "channel": "fan", "date": "2025-05-25", "level": 0.6}]
    psc = parse_scenario(sc)
    sim = generate_channels(psc, "2025-04-28", 42, 900.0, 2)
    cal = SiteCalendar.from_section(psc.calendar, "Asia/Tokyo")
    chans = {i.id: ChannelData(i, *sim.data[i.id]) for i in sim.infos}
    res = analyze(chans, cal, CO2Engine(), AnalysisParams(language="en", materiality_share=0.05))
    gaps = [f for f in res.findings if f.kind == "baseline_gap" and f.channel == "press"]
    assert len(gaps) == 1
    g = gaps[0].metrics
    assert g["dates"] == ["2025-05-17", "2025-05-18"] and g["days"] == 2 and g["last_date"] == "2025-05-18"
    assert g["excess_kwh"] == pytest.approx(sum(g["excess_kwh_by_day"]))
    assert "from 2025-05-17 to 2025-05-18 (2 days" in gaps[0].explanation
    # the fan's day is under 5 % of its channel: folded, counted, not listed
    assert not [f for f in res.findings if f.kind == "baseline_gap" and f.channel == "fan"]
    assert res.summary["folded"]["by_kind"].get("baseline_gap", 0) >= 1
    assert res.summary["folded"]["energy_kwh"] > 0
