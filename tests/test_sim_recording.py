"""Simulated recordings and their ground truth: energy, determinism, calendar, events,
compressor physics, faults and counters, checked on the written files."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pytest

from mieruka.calendar import SiteCalendar
from mieruka.cli import main as cli_main
from mieruka.config import EXAMPLES_DIR
from mieruka.models import Quality
from mieruka.recording import read_recording
from mieruka.simulators.factories import factory_scenario
from mieruka.simulators.recording import generate_channels, generate_recording, write_simulated_recording
from mieruka.simulators.scenario import FaultSpec, load_scenario

DEMO = EXAMPLES_DIR / "demo-site.toml"


def _series(rec, ch):
    c = rec.channels[ch]
    return c.time, c.value, c.quality


def test_truth_energy_matches_recorded_power_and_counters(tmp_path):
    sc = factory_scenario("small", noise=0.05, events=True, faults=False)
    sim = generate_channels(sc, "2026-05-01", days=10, step_s=60, seed=5)
    path, truth_path = write_simulated_recording(sim, tmp_path / "rec.csv")
    rec, truth = read_recording(path), json.loads(truth_path.read_text())
    for ch, t in truth["channels"].items():
        if t["quantity"] != "power_kw":
            continue
        _, p, q = _series(rec, ch)
        assert (q == Quality.OK).all()
        assert p.sum() / 60 == pytest.approx(t["energy_kwh"], rel=0.005), ch
    # the energy counter integrates the same power: its increase is the energy
    _, e, _ = _series(rec, "press_energy")
    _, p, _ = _series(rec, "press_power")
    assert e[-1] - e[0] == pytest.approx(p[:-1].sum() / 60, rel=0.005)
    # the incomer carries every load plus the unmetered ones
    loads = sum(t["energy_kwh"] for ch, t in truth["channels"].items()
                if t["quantity"] == "power_kw" and ch != "main_power")
    assert truth["channels"]["main_power"]["energy_kwh"] > loads


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    sc = factory_scenario("small", faults=True)
    files = []
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        sim = generate_channels(sc, "2026-04-01", days=3, step_s=60, seed=seed)
        files.append([p.read_bytes() for p in write_simulated_recording(sim, tmp_path / f"{name}.csv")])
    assert files[0] == files[1]
    assert files[0][0] != files[2][0] and files[0][1] != files[2][1]


def test_golden_week_holidays_have_no_production_load():
    sc = factory_scenario("small", noise=0.03, events=False)
    batch, infos, truth = generate_recording(sc, "2026-04-27", days=12, step_s=60, seed=2)
    cal = SiteCalendar.from_section(sc.calendar)
    m = batch.channel == "machining_power"
    t, p = batch.time[m], batch.value[m]
    lt, day_type, production = cal.classify(t)
    daytime = (lt.minute >= 9 * 60) & (lt.minute < 16 * 60)
    holiday = daytime & (day_type == 2)              # Sundays and national holidays (昭和の日, 憲法記念日...)
    dates = {SiteCalendar.day_to_date(d) for d in np.unique(lt.day[holiday])}
    assert {dt.date(2026, 4, 29), dt.date(2026, 5, 4), dt.date(2026, 5, 6)} <= dates
    assert p[holiday].mean() == pytest.approx(3.1, rel=0.05)          # standby level only
    assert p[daytime & production].mean() > 20                        # workdays produce
    assert not production[holiday].any()
    std = truth["channels"]["machining_power"]["standby_kw"]
    assert std == pytest.approx(p[~production].mean(), rel=1e-9)


def test_events_match_truth():
    sc = factory_scenario("small", noise=0.03, events=True)
    batch, _, truth = generate_recording(sc, "2026-06-01", days=28, step_s=60, seed=8)
    cal = SiteCalendar.from_section(sc.calendar)
    by = {(e["kind"], e["channel"]): e for e in truth["events"]}
    left = by[("left_on", "press_power")]
    assert left["day_type"] in ("saturday", "sunday_holiday", "company_holiday")
    m = batch.channel == "press_power"
    lt, _, _ = cal.classify(batch.time[m])
    day = (dt.date.fromisoformat(left["date"]) - dt.date(1970, 1, 1)).days
    on = batch.value[m][lt.day == day]
    assert on.mean() == pytest.approx(18.0, rel=0.05)                 # production level all day
    assert left["excess_kwh"] == pytest.approx((18.0 - 2.4) * 24, rel=0.05)
    night = by[("night_high", "machining_power")]
    assert night["day_type"] == "workday" and night["start"].endswith("T17:00:00+09:00")
    run = by[("holiday_run", "main_power")]
    assert run["day_type"] != "workday" and run["excess_kwh"] > 300
    growth = truth["systems"]["air1"]["leak_flow_m3min_by_week"]
    assert truth["systems"]["air1"]["leak_growing"] and np.all(np.diff(growth) == pytest.approx(0.08, rel=0.01))


@pytest.mark.parametrize("control", ["load_unload", "vsd"])
def test_compressor_cycling_follows_leaks_at_night(control):
    """At night nothing but leaks draws air: a load/unload machine is loaded leak/capacity of the time."""
    sc = factory_scenario("small", control=control, leak_share=0.2, events=False)
    batch, _, truth = generate_recording(sc, "2026-05-11", days=2, step_s=1, seed=4)
    cal = SiteCalendar.from_section(sc.calendar)
    m = batch.channel == "compressor_power"
    lt, _, production = cal.classify(batch.time[m])
    night = (lt.minute >= 60) & (lt.minute < 5 * 60)
    p = batch.value[m][night]
    s = truth["systems"]["air1"]
    if control == "load_unload":
        loaded = p > (s["full_load_power_kw"] + s["unload_power_kw"]) / 2
        assert loaded.mean() == pytest.approx(0.2, abs=0.02)
        pr = batch.value[batch.channel == "air_pressure"]
        assert 0.6 < pr.min() and pr.max() < 0.72
    else:   # below minimum speed a VSD cycles too, at minimum speed
        assert p.max() < s["full_load_power_kw"] * 0.5
    assert s["load_share"] + s["unload_share"] + s["off_share"] == pytest.approx(1.0)
    assert s["loaded_specific_power_kw_per_m3min"] == pytest.approx(37 / 6.2)


def test_faults_show_as_quality_flags_and_gaps(tmp_path):
    sc = factory_scenario("small", faults=True, events=False)
    sim = generate_channels(sc, "2026-04-06", days=7, step_s=60, seed=9)
    path, truth_path = write_simulated_recording(sim, tmp_path / "f.csv")
    rec, truth = read_recording(path), json.loads(truth_path.read_text())
    n = 7 * 1440
    _, v, q = _series(rec, "hvac_power")
    assert (q == Quality.TIMEOUT).sum() == 3 * 20 and np.isnan(v[q == Quality.TIMEOUT]).all()
    _, _, q = _series(rec, "machining_power")
    assert (q == Quality.EXCEPTION).sum() == 2 * 15
    _, _, q = _series(rec, "press_power")
    assert (q == Quality.OUT_OF_RANGE).sum() == 2 * 5
    _, v, q = _series(rec, "lighting_power")
    stale = q == Quality.STALE
    assert stale.sum() == 119 and np.unique(v[stale]).size == 1
    assert len(rec.channels["air_flow"].time) == n - 90 and len(rec.channels["main_power"].time) == n - 45
    assert sorted({f["kind"] for f in truth["faults"]}) == ["exception", "gap", "garbage", "stuck", "timeout"]


def test_counters_wrap_and_reset():
    sc = factory_scenario("small", events=False)
    press = next(ld for ld in sc.loads if ld.channel == "press_power")
    press.counter_start_kwh, press.counter_wrap_kwh = 9_900.0, 10_000.0
    sc.faults = [FaultSpec(meter="m-press", kind="reset", start=dt.datetime(2026, 4, 3, 12))]
    batch, _, _ = generate_recording(sc, "2026-04-01", days=4, step_s=60, seed=1)
    e = batch.value[batch.channel == "press_energy"]
    d = np.diff(e)
    assert (d < -1000).sum() == 1               # wrapped once at 10,000 kWh
    assert (d < 0).sum() == 2                   # and was reset once
    assert e[0] == pytest.approx(9_900.0)


def test_demo_site_recording_cli(tmp_path):
    out = tmp_path / "demo.csv"
    rc = cli_main(["simulate", "--config", str(DEMO), "--record", str(out), "--days", "2", "--step", "60",
                   "--start", "2026-04-01", "--seed", "3"])
    assert rc == 0
    rec = read_recording(out)
    truth = json.loads((tmp_path / "demo.truth.json").read_text())
    assert set(rec.channels) == set(truth["channels"]) and "main_voltage_l1" in rec.channels
    assert truth["systems"]["air1"]["flow_channel"] == "air_flow"
    assert truth["start"] == "2026-04-01T00:00:00+09:00" and truth["seed"] == 3
    assert out.read_text().splitlines()[1].startswith("2026-04-01T00:00:00+09:00,")


def test_bad_scenario_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[loads]]\nchannel = "x"\nproduction_kw = -3\n')
    proc = subprocess.run([sys.executable, "-m", "mieruka.cli", "simulate", "--scenario", str(bad), "--record",
                           str(tmp_path / "o.csv"), "--days", "1"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "loads[0].production_kw" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o.csv").exists()
    bad.write_text('[[events]]\nkind = "left_on"\nchannel = "nope"\n')
    with pytest.raises(Exception) as e:
        load_scenario(bad)
    assert "nope" in str(e.value) and str(bad) in str(e.value)


@pytest.mark.parametrize("path", sorted((EXAMPLES_DIR / "scenarios").glob("*.toml")) + [EXAMPLES_DIR / "demo-scenario.toml"],
                         ids=lambda p: p.name)
def test_example_scenarios_generate(path):
    sc = load_scenario(path)
    batch, infos, truth = generate_recording(sc, "2026-04-27", days=3, step_s=300, seed=1)
    assert len(batch) and {i.id for i in infos} == set(truth["channels"])
    for ch, t in truth["channels"].items():
        if t["quantity"] == "power_kw" and t["off_outside_production"]:
            assert t["standby_kw_excluding_breaks"] < 0.05 * t["energy_kwh"] / 72
