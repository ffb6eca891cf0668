"""Detector functions on small hand-made arrays with answers worked out by hand (in
the comments), pvlib style: standby, leak flow and its weekly trend, the leak load
method, compressor levels and states, baseline fit metrics (ASHRAE Guideline 14),
the air system's specific energy.  The end-to-end scores against simulator truth
are in test_detect_simulated.py."""
from __future__ import annotations

import numpy as np
import pytest

from mieruka.analytics import air_leak, baseline, compressor, standby
from mieruka.analytics.air_system import system_specific_energy_kwh_per_m3
from mieruka.calendar import WORKDAY

HOUR_S = 3600.0


def hourly_days(n_days: int, first_day: int = 20000):
    """n_days of hourly samples: durations (s), production 08:00-17:00 (9 h a day,
    15 h outside), local day numbers."""
    hour = np.tile(np.arange(24), n_days)
    production = (hour >= 8) & (hour < 17)
    local_day = np.repeat(np.arange(first_day, first_day + n_days), 24)
    return np.full(24 * n_days, HOUR_S), production, local_day


# ------------------------------------------------------------------ standby
def test_standby_profile_constant_night_load():
    dur, prod, day = hourly_days(3)
    kw = np.where(prod, 10.0, 2.0)
    r = standby.standby_profile(kw, dur, prod, day, allowance_kw=0.5)
    # outside production: 15 h a day x 3 days = 45 h at 2 kW = 90 kWh
    assert r.hours == pytest.approx(45.0)
    assert r.energy_kwh == pytest.approx(90.0)
    assert r.mean_kw == pytest.approx(2.0) and r.mean_kw_all == pytest.approx(2.0)
    # waste: (2 - 0.5 allowance) kW x 45 h = 67.5 kWh
    assert r.waste_kwh == pytest.approx(67.5)
    # channel energy: (9 h x 10 kW + 15 h x 2 kW) x 3 days = 360 kWh; 90 / 360 = 25 %
    assert r.share_of_channel_energy == pytest.approx(0.25)
    assert r.days == 3 and not r.is_off and r.reportable


def test_standby_profile_leaves_out_a_day_left_on():
    dur, prod, day = hourly_days(3)
    kw = np.where(prod, 10.0, 2.0)
    kw[(day == day[-1]) & ~prod] = 8.0            # the third night: equipment left on
    r = standby.standby_profile(kw, dur, prod, day, allowance_kw=0.5)
    # daily means outside production [2, 2, 8]: median 2, MAD 0, so the limit is
    # 2 + max(4 x 0, 25 % of 2) = 2.5 kW and the 8 kW day is a baseline gap, not standby
    assert r.mean_kw == pytest.approx(2.0)
    # all of it: (30 + 30 + 120) kWh over 45 h = 4 kW; the waste still counts all 45 h at 2 kW
    assert r.mean_kw_all == pytest.approx(4.0) and r.energy_kwh == pytest.approx(180.0)
    assert r.waste_kwh == pytest.approx((2.0 - 0.5) * 45.0)


def test_standby_profile_equipment_off_at_night_is_not_reported():
    dur, prod, day = hourly_days(2)
    kw = np.where(prod, 10.0, 0.02)
    r = standby.standby_profile(kw, dur, prod, day)
    # off threshold: 0.5 % of the 95th percentile in production (10 kW) = 0.05 kW > 0.02 kW
    assert r.is_off and not r.reportable
    assert r.mean_kw == pytest.approx(0.02)


def test_standby_profile_short_days_do_not_vote():
    # one day with only 1 h outside production (< 2 h): it cannot vote, the plain mean is used
    dur = np.full(4, HOUR_S)
    prod = np.array([True, True, True, False])
    r = standby.standby_profile(np.array([9.0, 9.0, 9.0, 3.0]), dur, prod, np.zeros(4, np.int64))
    assert r.days == 0 and r.mean_kw == pytest.approx(3.0) and r.hours == pytest.approx(1.0)


def test_standby_profile_none_without_time_outside_production():
    dur, prod, day = hourly_days(1)
    assert standby.standby_profile(np.ones(24), dur, np.ones(24, bool), day) is None


# ------------------------------------------------------------------ leaks
def test_leak_from_flow_level_and_growing_weekly_trend():
    dur, prod, day = hourly_days(21)
    week = (day - day[0]) // 7
    flow = np.where(prod, 5.0, 1.0 + 0.5 * week)      # nights: 1.0, 1.5, 2.0 m3/min in weeks 0, 1, 2
    r = air_leak.leak_from_flow(flow, dur, prod, day)
    # the level is the median of the 21 daily means (7 x 1.0, 7 x 1.5, 7 x 2.0): 1.5
    assert r.method == "flow_meter"
    assert r.leak_flow_m3min == pytest.approx(1.5)
    assert r.days == 21 and r.hours_outside_production == pytest.approx(21 * 15)
    assert r.extra["production_flow_m3min"] == pytest.approx(5.0)
    tr = r.trend
    # weekly medians 1.0, 1.5, 2.0 lie on a line: slope 0.5 m3/min per week, R^2 = 1;
    # growth over the span 0.5 x 2 weeks / mean 1.5 = 2/3 >= 15 %: growing
    assert tr.weekly_m3min == pytest.approx([1.0, 1.5, 2.0])
    assert tr.week_start_days == [20000, 20007, 20014]
    assert tr.slope_m3min_per_week == pytest.approx(0.5)
    assert tr.r2 == pytest.approx(1.0)
    assert tr.growth_relative == pytest.approx(2.0 / 3.0)
    assert tr.growing


def test_weekly_trend_flat_and_too_short():
    # flat: slope 0, no spread (R^2 taken as 0), growth 0: not growing
    days = np.arange(21)
    tr = air_leak.weekly_trend(np.full(21, 15.0), np.full(21, 15.0), days)
    assert tr.weekly_m3min == pytest.approx([1.0, 1.0, 1.0])
    assert tr.slope_m3min_per_week == pytest.approx(0.0, abs=1e-12) and tr.r2 == 0.0 and not tr.growing
    # two weeks are fewer than GROWTH_MIN_WEEKS = 3: no trend
    assert air_leak.weekly_trend(np.full(14, 15.0), np.full(14, 15.0), np.arange(14)) is None
    # a week with one voting day (needs 2) drops out: weeks 0 and 2 only -> no trend
    hours = np.full(21, 15.0)
    hours[8:14] = 1.0                             # week 1: only day 7 has >= 2 h
    assert air_leak.weekly_trend(np.full(21, 15.0), hours, days) is None


def test_weekly_trend_median_ignores_one_busy_day():
    # week 1 has one day at 5 m3/min (production on a day off): its median stays 1.0
    daily = np.ones(21)
    daily[9] = 5.0
    tr = air_leak.weekly_trend(daily * 15.0, np.full(21, 15.0), np.arange(21))
    assert tr.weekly_m3min == pytest.approx([1.0, 1.0, 1.0]) and not tr.growing


def test_leak_load_method():
    dur, prod, day = hourly_days(3)
    loaded = np.where(prod, 0.9, 0.2)
    loaded[(day == day[-1]) & ~prod] = 0.0        # third night: the system was switched off
    r = air_leak.leak_from_load(loaded, dur, ~prod, day, capacity_m3_per_min=10.0)
    # leak share = loaded fraction with no demand = 0.2; x 10 m3/min = 2 m3/min.
    # The switched-off night has no loaded sample and does not vote: 2 days, 30 h.
    assert r.method == "leak_load"
    assert r.leak_flow_m3min == pytest.approx(2.0)
    assert r.extra["leak_share_of_capacity"] == pytest.approx(0.2)
    assert r.days == 2 and r.hours_outside_production == pytest.approx(30.0)
    assert r.trend is None                        # 3 days: less than 3 weeks


# ------------------------------------------------------------------ compressors
def load_unload_minutes():
    # 1-minute means: 600 min loaded at 37 kW, 300 min unloaded at 11 kW, 100 min off
    return np.r_[np.full(600, 37.0), np.full(300, 11.0), np.zeros(100)]


def test_compressor_levels_load_unload():
    lv = compressor.compressor_levels(load_unload_minutes())
    # full: 99.5th percentile = 37 kW; off below 10 % = 3.7 kW; the unloaded level is the
    # mode of the running samples between 3.7 and 0.6 x 37 = 22.2 kW: 11 kW (30 % of full,
    # above the 20 % VSD floor limit: load/unload); load threshold halfway: (11 + 37) / 2 = 24
    assert lv.control == "load_unload"
    assert lv.full_kw == pytest.approx(37.0) and lv.unload_kw == pytest.approx(11.0)
    assert lv.off_threshold_kw == pytest.approx(3.7) and lv.load_threshold_kw == pytest.approx(24.0)


def test_compressor_levels_rated_power_and_vsd():
    # a rated power within 0.5-1.5 x the observed top is taken as full load: 36 kW
    lv = compressor.compressor_levels(load_unload_minutes(), rated_power_kw=36.0)
    assert lv.full_kw == 36.0 and lv.off_threshold_kw == pytest.approx(3.6)
    assert lv.load_threshold_kw == pytest.approx((11.0 + 36.0) / 2)
    # a rated power far off (100 kW vs 37 observed) is ignored
    assert compressor.compressor_levels(load_unload_minutes(), rated_power_kw=100.0).full_kw == pytest.approx(37.0)
    # floor at 4 kW: above the 3.7 kW off threshold, below 20 % of 37 = 7.4 kW: a VSD
    vsd = compressor.compressor_levels(np.r_[np.full(500, 37.0), np.full(300, 4.0)])
    assert vsd.control == "vsd" and vsd.unload_kw == pytest.approx(4.0) and vsd.load_threshold_kw == 37.0


def test_state_fractions_and_states_of_a_load_unload_machine():
    lv = compressor.CompressorLevels(full_kw=37.0, unload_kw=11.0, off_threshold_kw=3.7,
                                     load_threshold_kw=24.0, control="load_unload")
    p = np.array([37.0, 24.0, 11.0, 5.5, 2.0])
    off, unl, load = compressor.state_fractions(p, lv)
    # 24 kW = half the way from 11 to 37: half loaded, half unloaded; 5.5 kW = half of the
    # unloaded level: half unloaded, half off; 2 kW is under the off threshold: off
    np.testing.assert_allclose(load, [1.0, 0.5, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(unl, [0.0, 0.5, 1.0, 0.5, 0.0])
    np.testing.assert_allclose(off, [0.0, 0.0, 0.0, 0.5, 1.0])
    state, air = compressor.compressor_states(p, lv)
    assert state[0] == compressor.LOAD and state[2] == compressor.UNLOAD and state[4] == compressor.OFF
    np.testing.assert_allclose(air, load)


# ------------------------------------------------------------------ baseline fit
def test_fit_metrics_cv_rmse_and_nmbe_by_hand():
    # two weeks of workdays: week 0 at 10 kW every hour, week 1 at 12 kW, and day 7
    # (the first of week 1) not measured.  2 folds by week: each week is predicted by
    # the other's mean profile, so week 0 is predicted 12 (residual -2 over 168 h) and
    # week 1 is predicted 10 (residual +2 over 6 x 24 = 144 h).
    kw = np.r_[np.full((7, 24), 10.0), np.full((7, 24), 12.0)]
    kw[7] = np.nan
    m = baseline.fit_metrics(kw, np.full(14, WORKDAY), saturday_works=False)
    # n = 312 h, p = 24 terms (one day type with its own profile), n - p = 288
    # mean y = (168 x 10 + 144 x 12) / 312 = 3408 / 312 = 10.923077
    # CV(RMSE) = sqrt(312 x 4 / 288) / 10.923077 = 2.081666 / 10.923077 = 0.190575
    # NMBE = (-2 x 168 + 2 x 144) / (288 x 10.923077) = -48 / 3145.846 = -0.015258
    assert m["n_hours"] == 312 and m["n_parameters"] == 24
    assert m["cv_rmse"] == pytest.approx(0.190575, rel=1e-5)
    assert m["nmbe"] == pytest.approx(-0.015258, rel=1e-4)
    assert "cv_rmse_monthly" not in m             # one month of data: no monthly metrics


def test_fit_metrics_needs_two_weeks():
    m = baseline.fit_metrics(np.full((6, 24), 5.0), np.full(6, WORKDAY), saturday_works=False)
    assert m["cv_rmse"] is None and m["nmbe"] is None


# ------------------------------------------------------------------ air system
def test_system_specific_energy():
    # metered: 30 kW for 5 m3/min = 300 m3/h -> 0.1 kWh/m3
    assert system_specific_energy_kwh_per_m3(30.0, 5.0, None) == pytest.approx(0.1)
    # no flow meter: loaded time x capacity = 4 m3/min = 240 m3/h -> 0.125 kWh/m3
    assert system_specific_energy_kwh_per_m3(30.0, 0.0, 4.0) == pytest.approx(0.125)
    # no capacity and no flow, or no loaded air: unknown (the caller assumes a default)
    assert system_specific_energy_kwh_per_m3(30.0, 0.0, None) is None
    assert system_specific_energy_kwh_per_m3(30.0, 0.0, 0.0) is None
