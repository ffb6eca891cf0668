"""Plausible results on data shaped like real exports: what a savings plan may claim."""
from __future__ import annotations

import numpy as np

from mieruka.analytics.co2 import CO2Engine
from mieruka.analytics.pipeline import AnalysisParams, analyze
from mieruka.calendar import SiteCalendar
from mieruka.models import ChannelData, ChannelInfo
from mieruka.site import TariffsSection


def _plant(days: int = 28, night_kw: float = 40.0, day_kw: float = 200.0, step_min: int = 15):
    """(UTC times, kW) of a plant running Monday-Friday 08:00-17:00 JST."""
    t = np.arange(np.datetime64("2024-04-01T00:00"), np.datetime64("2024-04-01T00:00") + np.timedelta64(days, "D"),
                  np.timedelta64(step_min, "m")).astype("datetime64[ms]")
    local = t                                    # the grid in local time; returned in UTC
    hour = (local.astype("datetime64[h]").astype(np.int64) % 24)
    wd = (local.astype("datetime64[D]").astype(np.int64) + 3) % 7
    on = (hour >= 8) & (hour < 17) & (wd < 5)
    kw = np.where(on, day_kw, night_kw) + np.random.default_rng(0).normal(0, 1, t.size)
    return t - np.timedelta64(9, "h"), kw


def _run(chans):
    return analyze(chans, SiteCalendar(timezone="Asia/Tokyo", holidays_country="none"),
                   CO2Engine(tariffs=TariffsSection()), AnalysisParams(language="en"))


def test_the_only_meter_is_the_site_and_its_night_load_is_not_claimed_as_switch_off_saving():
    """A recording of one unlabelled meter (a logger on the main breaker, the steel
    plant's export): its night load holds everything that must run.  Claimed as
    standby it made 48 % of the plant's energy a 'switch off' saving."""
    t, kw = _plant()
    res = _run({"usage": ChannelData(ChannelInfo("usage", "power_kw", "kW"), t, kw)})
    sb = [f for f in res.findings if f.kind == "standby"]
    assert len(sb) == 1 and sb[0].metrics["site_total"] is True
    assert "track down on the breakers" in res.texts[res.findings.index(sb[0])]["en"]
    assert not [m for m in res.plan if m.id == "standby_off"]
    assert (res.summary["plan_total"]["share_of_site_energy_pct"] or 0.0) < 10.0


def test_a_labelled_machine_or_several_breakers_keep_their_standby_saving():
    t, kw = _plant()
    press = {"press": ChannelData(ChannelInfo("press", "power_kw", "kW", "press"), t, kw)}
    assert [m for m in _run(press).plan if m.id == "standby_off"]
    two = {c: ChannelData(ChannelInfo(c, "power_kw", "kW"), t, kw) for c in ("line1", "line2")}
    res = _run(two)
    plan = [m for m in res.plan if m.id == "standby_off"]
    assert plan and plan[0].target == "line1,line2"
    assert not any(f.metrics.get("site_total") for f in res.findings)


def test_fleet_waste_leaves_out_the_only_meters_standby_as_the_plan_does():
    from mieruka.service.fleet import _waste
    f = [{"kind": "standby", "channel": "usage", "energy_kwh": 4.0e5, "cost_jpy": 1e7, "co2_t": 170.0,
          "metrics": {"site_total": True}},
         {"kind": "baseline_gap", "channel": "usage", "energy_kwh": 1.4e4, "cost_jpy": 3.5e5, "co2_t": 6.0}]
    assert _waste(f, totals=set(), incomers=set()) == (1.4e4, 3.5e5, 6.0)
