"""`mieruka analyze` with a weather file and time zones: a European site's
recording (+01:00 / +02:00 offsets) over two calendar years."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mieruka import timezones as tzm
from mieruka.errors import InputError
from mieruka.recording import format_times
from mieruka.simulators.recording import generate_channels, write_simulated_recording
from mieruka.simulators.scenario import parse_scenario
from mieruka.weather_file import read_weather

from helpers.weather_site import weather_site


def mieruka(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mieruka.cli", *args], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def berlin(tmp_path_factory) -> tuple[Path, Path]:
    sc = weather_site(noise=0.03)
    sc["scenario"]["timezone"] = "Europe/Berlin"
    sc["calendar"] = {"holidays": "DE", "shifts": sc["calendar"]["shifts"]}
    sc["loads"] = [ld for ld in sc["loads"] if ld["channel"] in ("press", "chiller", "server_room")]
    sc["events"] = [{"kind": "left_on", "channel": "chiller", "count": 2, "level": 3.0}]
    sim = generate_channels(parse_scenario(sc), "2025-06-01", 400, 3600.0, 2)
    t, temp, _ = sim.data.pop("outdoor")
    sim.infos = [i for i in sim.infos if i.id != "outdoor"]
    d = tmp_path_factory.mktemp("berlin")
    rec, _ = write_simulated_recording(sim, d / "berlin.csv")
    weather = d / "weather.csv"
    weather.write_text("time,temperature_c\n" + "".join(
        f"{s},{v:.2f}\n" for s, v in zip(format_times(t, "Europe/Berlin").astype(str), temp)), "utf-8")
    return rec, weather


def test_offsets_name_the_zone(berlin):
    rec, _ = berlin
    ok, fitting = tzm.check_zone(rec, "Asia/Tokyo")
    assert not ok and fitting[0] == "Europe/Berlin"
    assert tzm.check_zone(rec, "Europe/Berlin") == (True, ["Europe/Berlin"])
    # UTC stamps say nothing about the zone
    t = np.arange(0, 400 * 86_400_000, 3_600_000, dtype=np.int64)
    assert not tzm.informative(np.zeros(t.size, np.int64))
    assert tzm.zones_fitting(t[:10], np.full(10, 540))[0] == "Asia/Tokyo"


@pytest.mark.slow
def test_analyze_warns_then_auto_zone_and_weather(berlin):
    rec, weather = berlin
    r = mieruka("analyze", str(rec), "--json")
    assert r.returncode == 0, r.stderr
    assert "do not fit Asia/Tokyo; they suggest Europe/Berlin" in r.stderr
    assert any("Europe/Berlin" in w for w in json.loads(r.stdout)["summary"]["warnings"])

    r = mieruka("analyze", str(rec), "--timezone", "auto", "--holidays", "DE", "--weather", str(weather),
                "--lang", "en", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)["summary"]
    assert s["calendar"]["timezone"] == "Europe/Berlin"
    assert "analysed in it" in s["warnings"][0]
    assert s["outdoor_temperature"] is True
    assert s["baseline"]["chiller"]["weather_adjusted"] is True
    assert s["baseline"]["press"]["weather_adjusted"] is False and s["baseline"]["press"]["weather_reason"]
    assert not s["counts"].get("standby_server_room")
    gaps = [f for f in json.loads(r.stdout)["findings"] if f["kind"] == "baseline_gap" and f["channel"] == "chiller"]
    assert 1 <= len(gaps) <= 3           # the two left-on days, not the summer

    # the terminal report: a finding over the whole recording shows its years
    r = mieruka("analyze", str(rec), "--timezone", "Europe/Berlin", "--holidays", "DE", "--lang", "en")
    assert r.returncode == 0, r.stderr
    assert "2025-06-01..2026-07-05" in r.stdout or "2025-06-01..2026-07-0" in r.stdout
    assert "conf." in r.stdout and "smaller findings folded" in r.stdout


def test_weather_file_errors(tmp_path):
    import zoneinfo
    tz = zoneinfo.ZoneInfo("Asia/Tokyo")
    p = tmp_path / "w.csv"
    p.write_text("time,temperature_c\n2025-01-01T00:00,5.0\n2025-01-01T01:00,warm\n", "utf-8")
    with pytest.raises(InputError, match=r"w.csv: line 3: field `temperature_c`: 'warm' is not a number"):
        read_weather(p, tz)
    p.write_text("time,humidity\n2025-01-01T00:00,5.0\n", "utf-8")
    with pytest.raises(InputError, match="line 1: header lacks column 'temperature_c'"):
        read_weather(p, tz)
    p.write_text("time,temperature_c\nyesterday,5.0\n", "utf-8")
    with pytest.raises(InputError, match="line 2: field `time`"):
        read_weather(p, tz)
    p.write_text("time,temperature_c\n2025-01-01T00:00,500\n", "utf-8")
    with pytest.raises(InputError, match="not an outdoor temperature"):
        read_weather(p, tz)
    p.write_text("time,temperature_c\n2025-01-01T01:00,4.0\n2025-01-01T00:00+09:00,5.0\n", "utf-8")
    w = read_weather(p, tz)                                # naive = site time; sorted
    info, t, v = w.info, w.time, w.value
    assert info.quantity == "temperature_c" and info.equipment_kind == "outdoor_air"
    assert str(t[0]) == "2024-12-31T15:00:00.000" and v.tolist() == [5.0, 4.0]
    r = mieruka("analyze", str(p), "--weather", str(tmp_path / "missing.csv"))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_weather_file_hostile_input(tmp_path):
    """Whatever the bytes, read_weather returns readings or raises InputError (never a traceback)."""
    import zoneinfo

    from hypothesis import given, settings
    from hypothesis import strategies as st

    tz = zoneinfo.ZoneInfo("Asia/Tokyo")
    p = tmp_path / "h.csv"
    line = st.one_of(st.text(max_size=40), st.builds(lambda t, v: f"{t},{v}", st.text(max_size=25),
                                                        st.one_of(st.floats(allow_nan=True), st.text(max_size=6))))

    @settings(max_examples=60, deadline=None)
    @given(st.lists(line, max_size=6), st.booleans())
    def check(lines, header):
        p.write_text(("time,temperature_c\n" if header else "") + "\n".join(lines), "utf-8", errors="replace")
        try:
            w = read_weather(p, tz)
        except InputError as e:
            assert str(e).startswith(str(p))
        else:
            assert len(w.time) == len(w.value) > 0 and np.isfinite(w.value).all()

    check()


def test_store_made_before_always_on_is_migrated(tmp_path):
    from test_store_migration import _write_v0

    from mieruka.models import ChannelInfo
    from mieruka.store.embedded import SCHEMA_VERSION, EmbeddedStore, schema_version

    path = tmp_path / "mieruka.sqlite"
    _write_v0(path)                                   # a store written before versioning
    with EmbeddedStore(path) as st:
        assert schema_version(st.db) == SCHEMA_VERSION >= 2
        st.set_channels([ChannelInfo("srv", "power_kw", "kW", "server", always_on=True)])
        got = {i.id: i for i in st.channels()}
        assert got["power"].always_on is None and bool(got["srv"].always_on) is True


def test_weather_service_export_as_it_comes(tmp_path):
    """An auditor downloads outdoor temperature from 気象庁: Shift_JIS, its own lines
    above the names, 年月日時 / 気温(℃) with a quality row under them, `///` for a missing
    hour, 24:00, a doubtful value marked `)`.  It was refused ('not a UTF-8 text file')."""
    import zoneinfo
    tz = zoneinfo.ZoneInfo("Asia/Tokyo")
    p = tmp_path / "data.csv"
    text = ("ダウンロードした時刻：2024/09/01 10:00:00\r\n\r\n,東京,東京,東京\r\n"
            "年月日時,気温(℃),気温(℃),気温(℃)\r\n,,品質情報,均質番号\r\n"
            "2024/6/3 1:00:00,20.1,8,1\r\n2024/6/3 2:00:00,///,0,1\r\n2024/6/3 3:00:00,19.5 ),5,1\r\n"
            "2024/6/3 24:00:00,18.0,8,1\r\n")
    p.write_bytes(text.encode("cp932"))
    w = read_weather(p, tz)
    assert w.value.tolist() == [20.1, 19.5, 18.0]
    assert [str(x) for x in w.time] == ["2024-06-02T16:00:00.000", "2024-06-02T18:00:00.000",
                                        "2024-06-03T15:00:00.000"]
    p.write_bytes(text.replace("19.5 )", "暑い").encode("cp932"))
    with pytest.raises(InputError, match=r"data.csv: line 8: field `気温\(℃\)`: '暑い' is not a number"):
        read_weather(p, tz)


def test_weather_in_fahrenheit_and_other_column_names(tmp_path):
    """eemeter's sample temperatures: `dt,tempF`, and `,dt,tempC` with an index column."""
    import zoneinfo
    tz = zoneinfo.ZoneInfo("America/Chicago")
    p = tmp_path / "f.csv"
    p.write_text("dt,tempF\n2015-11-22T00:00:00-06:00,32.0\n2015-11-22T01:00:00-06:00,50\n", "utf-8")
    w = read_weather(p, tz)
    assert w.value.tolist() == pytest.approx([0.0, 10.0])
    p.write_text(",dt,tempC\n0,2020-04-01 01:00:00,5.5\n", "utf-8")
    assert read_weather(p, tz).value.tolist() == [5.5]
