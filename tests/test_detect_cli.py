"""`mieruka analyze` end to end: a simulated recording file, the configured store, bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mieruka.models import ReadingBatch
from mieruka.simulators.recording import generate_channels, write_simulated_recording
from mieruka.simulators.scenario import parse_scenario

WEEK = {d: ["08:00-12:00", "13:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
SCENARIO = {
    "scenario": {"name": "cli", "noise": 0.03},
    "calendar": {"holidays": "JP", "shifts": WEEK},
    "main": {"channel": "main", "unmetered_production_kw": 5, "unmetered_standby_kw": 1},
    "loads": [{"channel": "press", "production_kw": 20, "standby_kw": 2.5},
              {"channel": "light", "kind": "lighting", "production_kw": 5, "standby_kw": 0}],
    "compressors": [{"system": "air1", "power_channel": "comp", "flow_channel": "flow", "pressure_channel": "pres",
                     "capacity_m3_per_min": 8, "full_load_power_kw": 45, "demand_production_m3min": 5,
                     "leak_m3min": 1.2}],
    "events": [{"kind": "left_on", "channel": "press", "date": "2025-10-12"}],
}


def mieruka(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mieruka.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, dict]:
    sim = generate_channels(parse_scenario(SCENARIO), "2025-10-01", 21, 60.0, 4)
    path, truth_path = write_simulated_recording(sim, tmp_path_factory.mktemp("rec") / "cli.csv")
    return path, json.loads(truth_path.read_text("utf-8"))


def test_analyze_recording_json(recording):
    path, truth = recording
    r = mieruka("analyze", str(path), "--holidays", "JP", "--shift", "mon-fri 08:00-12:00,13:00-17:00",
                "--tariff-jpy-per-kwh", "30", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d) >= {"findings", "summary"}
    assert d["summary"]["energy_kwh"]["press"] == pytest.approx(truth["channels"]["press"]["energy_kwh"], rel=0.01)
    assert d["summary"]["baseline"]["press"]["cv_rmse"] is not None
    gaps = [f for f in d["findings"] if f["kind"] == "baseline_gap" and f["channel"] == "press"]
    assert [f["metrics"]["date"] for f in gaps] == ["2025-10-12"]
    sb = next(f for f in d["findings"] if f["kind"] == "standby" and f["channel"] == "press")
    assert sb["metrics"]["mean_kw"] == pytest.approx(truth["channels"]["press"]["standby_kw"], rel=0.10)
    assert sb["cost_jpy"] == pytest.approx(30 * sb["energy_kwh"], rel=1e-6)
    leak = next(f for f in d["findings"] if f["kind"] == "air_leak")
    assert leak["metrics"]["leak_flow_m3min"] == pytest.approx(truth["systems"]["air1"]["leak_flow_m3min"], rel=0.15)
    # byte-identical on a second run (auditors replay)
    again = mieruka("analyze", str(path), "--holidays", "JP", "--shift", "mon-fri 08:00-12:00,13:00-17:00",
                    "--tariff-jpy-per-kwh", "30", "--json")
    assert again.stdout == r.stdout


def test_analyze_recording_table(recording):
    path, _ = recording
    r = mieruka("analyze", str(path), "--lang", "en")
    assert r.returncode == 0, r.stderr
    for word in ("Findings", "standby", "air_leak", "compressor_profile", "Savings plan", "CV(RMSE)", "t-CO2"):
        assert word in r.stdout
    assert "Traceback" not in r.stderr


def test_analyze_store(recording, tmp_path):
    """The same data through the embedded store and `--config --start --end`."""
    from mieruka.site import load_site
    from mieruka.store.base import open_store

    path, truth = recording
    data = tmp_path / "data"
    site = tmp_path / "site.toml"
    site.write_text(f"""
[site]
name = "cli test"
language = "en"
data_dir = "{data}"
[calendar]
holidays = "JP"
[calendar.shifts]
mon = ["08:00-12:00", "13:00-17:00"]
tue = ["08:00-12:00", "13:00-17:00"]
wed = ["08:00-12:00", "13:00-17:00"]
thu = ["08:00-12:00", "13:00-17:00"]
fri = ["08:00-12:00", "13:00-17:00"]
[tariffs]
electricity_jpy_per_kwh = 28.0
""", "utf-8")
    from mieruka.recording import read_recording
    rec = read_recording(path)
    cfg = load_site(site)
    store = open_store(cfg)
    try:
        store.set_channels(rec.infos())
        store.write(ReadingBatch.concat([ReadingBatch.single_channel(c, d.time, d.value, d.quality)
                                         for c, d in rec.channels.items()]))
    finally:
        store.close()
    r = mieruka("analyze", "--config", str(site), "--start", "2025-10-01", "--end", "2025-10-22", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["summary"]["energy_kwh"]["press"] == pytest.approx(truth["channels"]["press"]["energy_kwh"], rel=0.01)
    sb = next(f for f in d["findings"] if f["kind"] == "standby" and f["channel"] == "press")
    assert sb["cost_jpy"] == pytest.approx(28.0 * sb["energy_kwh"], rel=1e-6)
    assert {f["metrics"]["date"] for f in d["findings"] if f["kind"] == "baseline_gap" and f["channel"] == "press"} \
        == {"2025-10-12"}


def test_bad_input_is_one_line_exit_2(tmp_path, recording):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,channel,quantity,value\n2025-10-01T00:00:00+09:00,press,power_kw,1.5\n"
                   "2025-10-01T00:01:00+09:00,press,power_kw,abc\n", "utf-8")
    for args in (["analyze", str(bad)], ["analyze", str(tmp_path / "missing.csv")],
                 ["analyze", str(recording[0]), "--holidays", "XX"],
                 ["analyze", str(recording[0]), "--shift", "someday 8-5"],
                 ["analyze", str(recording[0]), "--timezone", "Mars/Olympus"]):
        r = mieruka(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr
    r = mieruka("analyze", str(bad))
    assert "line 3" in r.stderr and "value" in r.stderr


def test_help():
    r = mieruka("analyze", "--help")
    assert r.returncode == 0 and "--tariff-jpy-per-kwh" in r.stdout and "--shift" in r.stdout
