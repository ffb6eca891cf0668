"""Plausible results on data shaped like real exports: what a savings plan may claim."""
from __future__ import annotations

import numpy as np
import pytest

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


# ------------------------------------------------------------ production hours from the load
def test_infer_shifts_reads_day_shift_lunch_break_and_lighter_saturday():
    from mieruka.analytics.shifts import infer_shifts, spec
    work = np.full(24, 20.0)
    work[8:12] = 280.0
    work[12] = 40.0                  # lunch: the load drops
    work[13:21] = 270.0
    sat = np.full(24, 20.0)
    sat[8:12] = 150.0
    sat[13:17] = 140.0
    shifts, why = infer_shifts(np.array([work, sat]), (40, 8))
    assert spec(shifts) == "mon-fri 08:00-12:00,13:00-21:00; sat 08:00-12:00,13:00-17:00"
    assert shifts["sun"] == [] and "floor 20.0 kW" in why
    # a flat (24/7) load says nothing about shifts: none inferred
    flat, why = infer_shifts(np.array([np.full(24, 100.0) + np.arange(24), np.full(24, 100.0)]), (40, 8))
    assert flat is None and "does not swing" in why
    # a night shift working through midnight: every hour of a workday is production
    two = np.full(24, 300.0)
    two[0:6] = 290.0
    assert spec(infer_shifts(np.array([two, np.full(24, 10.0)]), (20, 4))[0]) == "mon-fri 00:00-24:00"


def _cli_plant(tmp_path, start_h: int = 7, end_h: int = 19):
    """A New York plant's recording: 12-hour day shift, 10 kW at night, no config."""
    import zoneinfo
    import datetime as dt
    ny = zoneinfo.ZoneInfo("America/New_York")
    t0 = dt.datetime(2024, 4, 1, tzinfo=ny)
    lines = ["time,channel,quantity,value"]
    for k in range(28 * 96):
        t = t0 + dt.timedelta(minutes=15 * k)
        on = start_h <= t.hour < end_h and t.weekday() < 5
        lines.append(f"{t.isoformat()},line1,power_kw,{80.0 if on else 10.0}")
        lines.append(f"{t.isoformat()},line2,power_kw,{40.0 if on else 5.0}")
    rec = tmp_path / "ny.csv"
    rec.write_text("\n".join(lines) + "\n")
    return rec


def test_analyze_without_shifts_reads_them_off_the_load_and_says_so(tmp_path):
    """Without --shift a 07:00-19:00 plant got the Japanese default 08:00-17:00: its
    evening production (80 kW) was called standby, 8 kW instead of 10 at night... and
    the plan claimed it.  Read off the load, standby is the true night level."""
    import json
    import subprocess
    import sys
    rec = _cli_plant(tmp_path)
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", "analyze", str(rec), "--timezone", "America/New_York",
                        "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    sh = d["summary"]["shifts_from_load"]
    assert sh["inferred"] and sh["spec"] == "mon-fri 07:00-19:00"
    assert d["summary"]["calendar"]["shifts"]["mon"] == ["07:00-19:00"]
    sb = {f["channel"]: f["metrics"]["mean_kw"] for f in d["findings"] if f["kind"] == "standby"}
    assert sb["line1"] == pytest.approx(10.0, rel=0.01) and sb["line2"] == pytest.approx(5.0, rel=0.01)
    # stated shifts win, and nothing is read off the load
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", "analyze", str(rec), "--timezone", "America/New_York",
                        "--shift", "mon-fri 08:00-17:00"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "read off the load" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "mieruka.cli", "analyze", str(rec), "--timezone", "America/New_York"],
                       capture_output=True, text=True, timeout=120)
    assert "note: production hours read off the load: mon-fri 07:00-19:00" in r.stderr


def test_a_loggers_power_and_its_own_counter_are_one_meter_whatever_their_names():
    """A clamp logger exports 有効電力 and 積算電力量 of one circuit: analysed as two
    meters, the site's energy, standby and plan counted it twice."""
    t, kw = _plant(days=14)
    dt_h = np.diff(t.astype(np.int64), append=t.astype(np.int64)[-1] + 900_000) / 3.6e6
    kwh = 5000.0 + np.concatenate([[0.0], np.cumsum(kw * dt_h)[:-1]])
    chans = {"有効電力": ChannelData(ChannelInfo("有効電力", "power_kw", "kW"), t, kw),
             "積算電力量": ChannelData(ChannelInfo("積算電力量", "energy_kwh", "kWh"), t, kwh)}
    res = _run(chans)
    assert list(res.summary["energy_kwh"]) == ["有効電力"]
    assert res.summary["site"]["energy_kwh"] == pytest.approx(float((kw * dt_h).sum()), rel=1e-6)
    # another circuit's counter (different energy) stays a meter of its own
    chans["積算電力量"] = ChannelData(ChannelInfo("積算電力量", "energy_kwh", "kWh"), t, 2.0 * kwh)
    assert sorted(_run(chans).summary["energy_kwh"]) == ["有効電力", "積算電力量"]


def test_pv_generation_is_not_consumption():
    """A PV channel (negative power: export) summed with the loads made the site's energy
    a few hundred kWh and the plan over 100 % of it."""
    t, kw = _plant(days=14)
    hour = ((t + np.timedelta64(9, "h")).astype("datetime64[m]").astype(np.int64) % 1440) / 60.0
    pv = -np.clip(150.0 * np.sin((hour - 6.0) / 12.0 * np.pi), 0.0, None)
    res = _run({"load": ChannelData(ChannelInfo("load", "power_kw", "kW"), t, kw),
                "pv": ChannelData(ChannelInfo("pv", "power_kw", "kW"), t, pv)})
    s = res.summary
    assert list(s["energy_kwh"]) == ["load"] and s["generation_kwh"]["pv"] > 0
    assert s["site"]["energy_kwh"] == pytest.approx(s["energy_kwh"]["load"])
    assert not any(f.channel == "pv" for f in res.findings)
    assert 0 <= (s["plan_total"]["share_of_site_energy_pct"] or 0.0) < 30.0


def test_hot_days_of_a_weather_driven_load_are_not_waste():
    """Cooling follows degree-hours, which grow faster than the daily mean temperature:
    on the hottest days a straight-line weather model under-predicts, and those days
    were flagged as baseline gaps (eemeter's Illinois sample: half the plan)."""
    rng = np.random.default_rng(5)
    days = 150
    t = (np.datetime64("2024-05-01T00:00") + np.arange(days * 24) * np.timedelta64(1, "h")).astype("datetime64[ms]")
    t_mean = 22.0 + 6.0 * np.sin(np.arange(days) / 11.0) + rng.normal(0, 2.5, days)
    t_mean[[40, 41, 90, 120]] += 9.0                                   # heat waves
    hour = np.arange(days * 24) % 24
    temp = np.repeat(t_mean, 24) + 6.0 * np.sin((hour - 9) / 24 * 2 * np.pi)
    kw = 5.0 + 4.0 * np.clip(temp - 24.0, 0.0, None) ** 1.6 + rng.normal(0, 0.3, t.size)
    utc = t - np.timedelta64(9, "h")
    chans = {"ac": ChannelData(ChannelInfo("ac", "power_kw", "kW", "air_conditioning"), utc, kw),
             "oa": ChannelData(ChannelInfo("oa", "temperature_c", "degC", "outdoor_air"), utc, temp)}
    res = _run(chans)
    fit = res.summary["baseline"]["ac"]
    assert fit["weather_adjusted"]
    hot = {str(np.datetime64("2024-05-01") + np.timedelta64(d, "D")) for d in (40, 41, 90, 120)}
    flagged = {d for f in res.findings if f.kind == "baseline_gap" for d in f.metrics["dates"]}
    assert not (flagged & hot)
    assert hot & set(fit.get("gap_days_weather_excused", []))
