"""`mieruka import`: generated logger exports in each shape, the real steel-plant
file, hostile inputs.  Files are written here with the encodings, header blocks
and quirks real loggers have; every expected value is computed from what was written."""
from __future__ import annotations

import datetime as dt
import tomllib
import zoneinfo
from pathlib import Path

import numpy as np
import pytest

from mieruka.cli import main
from mieruka.errors import ConfigError, InputError
from mieruka.importer import guess_mapping, import_files, load_mapping, unit_in_header
from mieruka.models import Quality
from mieruka.recording import read_recording

DATA = next((p / "shared/data/steel_industry_2018.csv" for p in Path(__file__).resolve().parents
             if (p / "shared/data/steel_industry_2018.csv").exists()), Path("/work/shared/data/steel_industry_2018.csv"))
REPO = Path(__file__).resolve().parents[1]
JST = zoneinfo.ZoneInfo("Asia/Tokyo")


def ms(y, mo, d, h=0, mi=0, s=0, tz=JST) -> int:
    return int(dt.datetime(y, mo, d, h, mi, s, tzinfo=tz).timestamp() * 1000)


def write_map(tmp_path: Path, text: str, name: str = "map.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, "utf-8")
    return p


def run(*args) -> int:
    return main([str(a) for a in args])


# ---------------------------------------------------------------- Shift_JIS wide
SJIS_MAP = """
[source]
header_row = 4
skip_after_header = 1
units_row = 5
[time]
column = "日時"
format = "%Y/%m/%d %H:%M:%S"
[[columns]]
column = "コンプレッサ電力"
channel = "comp1"
quantity = "電力"
unit = "W"
equipment_kind = "compressor"
system = "air1"
[[columns]]
column = "流量"
channel = "air1_flow"
quantity = "流量"
equipment_kind = "air_meter"
system = "air1"
[[columns]]
column = "圧力"
channel = "air1_pressure"
quantity = "pressure_mpa"
unit = "kPa"
"""


def sjis_logger(path: Path, start_hour: int = 9, n: int = 6) -> Path:
    lines = ["ロガー名,LR8410,,", "測定開始,2026/04/01 09:00:00,,", "記録間隔,1分,,",
             "日時,コンプレッサ電力,流量,圧力", ",W,L/min,kPa"]
    for k in range(n):
        t = dt.datetime(2026, 4, 1, start_hour, k)
        p = "-" if k == 2 else ("***" if k == 3 else f'"{12345 + k:,}.5"')
        lines.append(f"{t:%Y/%m/%d %H:%M:%S},{p},{4900 + k},{690 + k}")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp932"))
    return path


def test_shift_jis_logger_with_japanese_headers_units_row_and_missing_marks(tmp_path):
    src = sjis_logger(tmp_path / "logger.csv")
    m = load_mapping(write_map(tmp_path, SJIS_MAP))
    res = import_files([src], m)
    assert res.files[0].encoding == "cp932"
    comp = res.channels["comp1"]
    assert comp.time_ms[0] == ms(2026, 4, 1, 9, 0)                 # local Tokyo -> UTC
    assert comp.value[0] == pytest.approx(12.3455)                 # "12,345.5" W -> kW
    assert list(comp.quality) == [0, 0, Quality.ERROR, Quality.ERROR, 0, 0]   # '-' and '***' kept, not ok
    assert np.isnan(comp.value[2]) and np.isnan(comp.value[3])
    flow = res.channels["air1_flow"]
    assert flow.value[1] == pytest.approx(4.901)                   # L/min from the units row -> m3/min
    assert res.channels["air1_pressure"].value[0] == pytest.approx(0.690)   # kPa -> MPa
    assert any("air1_flow: unit L/min" in n for n in res.notes)
    out = tmp_path / "rec.csv"
    assert run("import", src, "--mapping", tmp_path / "map.toml", "-o", out) == 0
    rec = read_recording(out)
    assert rec.channels["comp1"].info.equipment_kind == "compressor"
    assert rec.channels["air1_flow"].info.system == "air1"
    assert out.read_text("utf-8").splitlines()[1].startswith("2026-04-01T09:00:00+09:00,")


def test_wrong_encoding_named_in_the_message(tmp_path, capsys):
    src = sjis_logger(tmp_path / "logger.csv")
    mp = write_map(tmp_path, SJIS_MAP.replace("[source]", '[source]\nencoding = "utf-8"'))
    assert run("import", src, "--mapping", mp, "-o", tmp_path / "o.csv") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "logger.csv: line 1: not valid UTF-8 text" in err and "Shift_JIS" in err
    assert not (tmp_path / "o.csv").exists()


def test_utf8_bom_tsv_with_date_and_time_columns(tmp_path):
    text = "日付\t時刻\t電力量[kWh]\n" + "".join(f"2026/04/01\t{h}:00\t{1000 + h}\n" for h in range(9, 13))
    src = tmp_path / "bom.tsv"
    src.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    mp = write_map(tmp_path, """
[time]
columns = ["日付", "時刻"]
format = "%Y/%m/%d %H:%M"
[[columns]]
column = "電力量[kWh]"
channel = "main_kwh"
quantity = "電力量"
kind = "counter"
""")
    res = import_files([src], load_mapping(mp))
    assert res.files[0].encoding == "utf-8-sig" and res.files[0].delimiter == "\t"
    c = res.channels["main_kwh"]
    assert c.info.quantity == "energy_kwh"
    assert list(c.time_ms) == [ms(2026, 4, 1, h) for h in range(9, 13)]
    assert list(c.value) == [1009, 1010, 1011, 1012]


# ------------------------------------------------------------------------ xlsx
def test_xlsx_with_logger_header_block_by_sheet_name_and_index(tmp_path):
    from openpyxl import Workbook
    wb = Workbook()
    wb.active.title = "概要"
    wb.active.append(["nothing here"])
    ws = wb.create_sheet("データ")
    ws.append(["機種", "PW3360"])
    ws.append(["開始", dt.datetime(2026, 4, 1, 8)])
    ws.append([])
    ws.append(["Date/Time", "P(kW)", "Air 流量 m3/min", "memo"])
    for k in range(5):
        ws.append([dt.datetime(2026, 4, 1, 8, 0) + dt.timedelta(minutes=10 * k), 10.5 + k,
                   None if k == 1 else 3.25, "x"])
    path = tmp_path / "export.xlsx"
    wb.save(path)
    base = """
[source]
sheet = {sheet}
header_row = 4
[time]
column = "Date/Time"
[[columns]]
column = "P(kW)"
channel = "press"
quantity = "power_kw"
[[columns]]
column = "Air 流量 m3/min"
channel = "air"
quantity = "air_flow_m3min"
"""
    for sheet in ('"データ"', "1"):
        res = import_files([path], load_mapping(write_map(tmp_path, base.format(sheet=sheet))))
        p = res.channels["press"]
        assert list(p.time_ms) == [ms(2026, 4, 1, 8, 10 * k) for k in range(5)]
        assert list(p.value) == [10.5, 11.5, 12.5, 13.5, 14.5]
        assert list(res.channels["air"].quality) == [0, Quality.ERROR, 0, 0, 0]
        assert any("'memo'" in w for w in res.warnings)          # unmatched column listed
    with pytest.raises(InputError, match=r"export.xlsx: no sheet 'Daten' \(sheets: 概要, データ\)"):
        import_files([path], load_mapping(write_map(tmp_path, base.format(sheet='"Daten"'))))


# ------------------------------------------------------------ interval energy
def test_interval_kwh_integrates_back_to_the_same_kwh(tmp_path):
    from mieruka.analytics.resample import durations_s
    rng = np.random.default_rng(7)
    kwh = np.round(rng.uniform(0, 40, 288 * 3), 3)          # 3 days of 5-minute interval energy
    t_end = [dt.datetime(2026, 4, 1, 0, 5) + dt.timedelta(minutes=5 * k) for k in range(kwh.size)]
    rows = [f"{t:%Y-%m-%d %H:%M},{e * 1000:.0f}" for t, e in zip(t_end, kwh)]   # in Wh
    src = tmp_path / "interval.csv"
    src.write_text("time,energy_Wh\n" + "\n".join(rows) + "\n")
    mp = write_map(tmp_path, """
[time]
column = "time"
format = "%Y-%m-%d %H:%M"
stamp = "end"
[[columns]]
column = "energy_Wh"
channel = "line1"
unit = "Wh"
kind = "interval_energy"
""")
    res = import_files([src], load_mapping(mp))
    c = res.channels["line1"]
    assert c.info.quantity == "power_kw"
    assert c.time_ms[0] == ms(2026, 4, 1, 0, 0)             # stamped at the interval start
    assert c.value[0] == pytest.approx(kwh[0] * 12)          # kWh per 5 min -> kW
    energy = float(np.sum(c.value * durations_s(c.time_ms)) / 3600)
    assert energy == pytest.approx(kwh.sum(), rel=1e-9)
    assert any("interval 5 min (the time column's usual step), times mark the interval end" in n for n in res.notes)


@pytest.mark.slow
def test_real_steel_plant_file_energy_equals_its_usage_sum(tmp_path):
    if not DATA.exists():
        pytest.skip(f"{DATA} not present")
    import csv
    out = tmp_path / "steel.csv"
    assert run("import", DATA, "--mapping", REPO / "config/examples/import-steel-industry.toml", "-o", out) == 0
    rec = read_recording(out)
    plant = rec.channels["plant"]
    t = plant.time.astype(np.int64)
    assert len(t) == 35_040 and set(np.diff(t)) == {900_000}           # a regular year, midnight rows in place
    assert str(plant.time[0]) == "2017-12-31T15:00:00.000"              # 2018-01-01 00:00 KST, interval start
    with open(DATA, newline="") as f:
        usage = sum(float(r["Usage_kWh"]) for r in csv.DictReader(f))
    assert plant.value.sum() * 0.25 == pytest.approx(usage, rel=1e-12)


# ----------------------------------------------------------------------- DST
BERLIN_MAP = """
[time]
column = "t"
format = "%d.%m.%Y %H:%M"
zone = "Europe/Berlin"
{extra}
[[columns]]
column = "kW"
channel = "p"
quantity = "power_kw"
"""


def berlin_autumn(path: Path) -> Path:
    # 2026-10-25: clocks go back 03:00 CEST -> 02:00 CET; 02:00..02:45 appear twice
    local = ["01:30", "01:45", "02:00", "02:15", "02:30", "02:45", "02:00", "02:15", "02:30", "02:45", "03:00"]
    path.write_text("t;kW\n" + "".join(f"25.10.2026 {h};{k}\n" for k, h in enumerate(local)))
    return path


def test_dst_repeated_hour_refused_with_line_unless_resolved(tmp_path):
    src = berlin_autumn(tmp_path / "berlin.csv")
    with pytest.raises(InputError, match=r"berlin.csv: line 4: field 't': local time 2026-10-25 02:00:00 occurs "
                                         r"twice in Europe/Berlin"):
        import_files([src], load_mapping(write_map(tmp_path, BERLIN_MAP.format(extra=""))))
    res = import_files([src], load_mapping(write_map(tmp_path, BERLIN_MAP.format(extra='ambiguous = "infer"'))))
    t = res.channels["p"].time_ms
    assert (np.diff(t) == 900_000).all()                      # one continuous quarter-hour series in UTC
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    assert t[0] == ms(2026, 10, 25, 1, 30, tz=berlin)
    assert t[-1] == int(dt.datetime(2026, 10, 25, 2, 0, tzinfo=dt.timezone.utc).timestamp() * 1000)  # 03:00 CET
    # "earlier" puts both passes on the same instants: the values disagree, refused naming both lines
    with pytest.raises(InputError, match=r"line 4 and .*berlin.csv: line 8 disagree on channel 'p'"):
        import_files([src], load_mapping(write_map(tmp_path, BERLIN_MAP.format(extra='ambiguous = "earlier"'))))


def test_dst_skipped_hour_refused(tmp_path):
    src = tmp_path / "spring.csv"
    src.write_text("t;kW\n29.03.2026 01:30;1\n29.03.2026 02:30;2\n29.03.2026 03:30;3\n")
    with pytest.raises(InputError, match=r"spring.csv: line 3: .*2026-03-29 02:30:00 does not exist in Europe/Berlin"):
        import_files([src], load_mapping(write_map(tmp_path, BERLIN_MAP.format(extra=""))))


# ------------------------------------------------------------ several files
DAY_MAP = """
[time]
column = "time"
[[columns]]
column = "P_kW"
channel = "p"
quantity = "power_kw"
"""


def day_file(path: Path, hours: range, bump: dict[int, float] | None = None) -> Path:
    bump = bump or {}
    path.write_text("time,P_kW,extra\n" + "".join(
        f"2026-04-01 {h:02d}:00:00,{h + bump.get(h, 0)},x\n" for h in hours))
    return path


def test_files_concatenated_in_time_order_overlaps_merged_or_refused(tmp_path, capsys):
    late = day_file(tmp_path / "b.csv", range(10, 16))
    early = day_file(tmp_path / "a.csv", range(6, 12))            # 10:00 and 11:00 overlap, agreeing
    mp = write_map(tmp_path, DAY_MAP)
    out = tmp_path / "rec.csv"
    assert run("import", late, early, "--mapping", mp, "-o", out) == 0
    err = capsys.readouterr().err
    assert "b.csv: column(s) not in the mapping, not imported: 'extra'" in err
    rec = read_recording(out)
    assert list(rec.channels["p"].value) == list(range(6, 16))
    bad = day_file(tmp_path / "c.csv", range(11, 13), bump={11: 0.5})
    assert run("import", early, bad, "--mapping", mp, "-o", tmp_path / "x.csv") == 2
    err = capsys.readouterr().err
    assert "a.csv: line 7 and" in err and "c.csv: line 2 disagree on channel 'p'" in err and "11 vs 11.5" in err
    assert not (tmp_path / "x.csv").exists()


def test_missing_mapped_column_names_file_and_header(tmp_path):
    src = day_file(tmp_path / "a.csv", range(2))
    with pytest.raises(InputError, match=r"a.csv: no column 'P_kW2' in the header \(columns: 'time', 'P_kW', 'extra'\)"):
        import_files([src], load_mapping(write_map(tmp_path, DAY_MAP.replace('"P_kW"', '"P_kW2"'))))


# ---------------------------------------------------------------- long layout
def test_long_layout_with_unit_column_and_unknown_channels_warned(tmp_path):
    src = tmp_path / "long.csv"
    rows = ["timestamp,point,value,unit"]
    for k in range(4):
        t = f"2026-04-01T09:0{k}:00+09:00"
        rows += [f"{t},CH1,{1000 * k},W", f"{t},CH2,{0.5 + k},bar", f"{t},CH9,1,W"]
    src.write_text("\n".join(rows) + "\n")
    mp = write_map(tmp_path, """
[source]
layout = "long"
[long]
channel_column = "point"
value_column = "value"
unit_column = "unit"
[time]
column = "timestamp"
[[columns]]
column = "CH1"
channel = "press"
quantity = "power_kw"
[[columns]]
column = "CH2"
channel = "header_pressure"
quantity = "圧力"
""")
    res = import_files([src], load_mapping(mp))
    assert list(res.channels["press"].value) == [0, 1, 2, 3]
    assert list(res.channels["header_pressure"].value) == pytest.approx([0.05, 0.15, 0.25, 0.35])
    assert res.channels["press"].time_ms[0] == ms(2026, 4, 1, 9)
    assert any("'CH9'" in w for w in res.warnings)
    m = load_mapping(mp)
    m.columns.append(m.columns[0].model_copy(update={"column": "CH7", "channel": "absent"}))
    assert any("channel 'absent' ('CH7' in the mapping) has no rows" in w for w in import_files([src], m).warnings)


# ------------------------------------------------------------- mapping errors
@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace('quantity = "power_kw"', 'quantity = "power"' + "\nfoo = 1"), r"columns\[0\].foo: unknown key"),
    (lambda s: s.replace('quantity = "power_kw"', 'quantity = "watts"'), r"columns\[0\].quantity: unknown quantity 'watts'"),
    (lambda s: s.replace('quantity = "power_kw"', 'quantity = "power_kw"\nunit = "MPa"'),
     r"columns\[0\]: unit MPa \(pressure\) does not fit power_kw"),
    (lambda s: s.replace('column = "time"', 'column = "time"\nzone = "Mars/Olympus"'), r"time.zone: unknown time zone"),
    (lambda s: s.replace('column = "time"', 'column = "time"\nambiguous = "maybe"'), r"time.ambiguous"),
    (lambda s: s.replace('[[columns]]', '[source]\nencoding = "ebcdic"\n[[columns]]'), r"source.encoding: unknown encoding"),
    # 1e20 hours overflowed the interval-start times (OverflowError traceback)
    (lambda s: s.replace('column = "time"', 'column = "time"\ninterval = "99999999999999999999h"'),
     r"time.interval: interval .* is longer than 31 days"),
])
def test_mapping_errors_name_file_and_key(tmp_path, capsys, edit, message):
    mp = write_map(tmp_path, edit(DAY_MAP))
    with pytest.raises(ConfigError, match=message) as e:
        load_mapping(mp)
    assert str(e.value).startswith(f"{mp}: ")
    src = day_file(tmp_path / "a.csv", range(2))
    assert run("import", src, "--mapping", mp, "-o", tmp_path / "o.csv") == 2
    assert "Traceback" not in capsys.readouterr().err


def test_bad_value_and_bad_time_name_line_and_field(tmp_path):
    src = tmp_path / "a.csv"
    src.write_text("time,P_kW\n2026-04-01 09:00:00,1\n2026-04-01 09:01:00,1.2.3\n")
    with pytest.raises(InputError, match=r"a.csv: line 3: field 'P_kW': '1.2.3' is not a number"):
        import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)))
    src.write_text("time,P_kW\n2026-04-01 09:00:00,1\n\n2026-04-01 9h01,1\n")
    with pytest.raises(InputError, match=r"a.csv: line 4: field 'time': time '2026-04-01 9h01' does not match"):
        import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)))
    src.write_text("time,P_kW\n2026-04-01 09:00:00,1\n2026-04-01 09:01:00,1,7\n")
    with pytest.raises(InputError, match=r"a.csv: line 3: 3 fields, the header has 2"):
        import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)))


# ---------------------------------------------------------------------- guess
def test_unit_in_header():
    assert unit_in_header("P(kW)") == "kW"
    assert unit_in_header("電力量[kWh]") == "kWh"
    assert unit_in_header("流量 m3/min") == "m3/min"
    assert unit_in_header("圧力（ＭＰａ）") == "MPa"
    assert unit_in_header("Usage_kWh") == "kWh"
    assert unit_in_header("memo") is None


def test_guess_writes_a_mapping_that_imports(tmp_path, capsys):
    lines = ["機器,エアコンプレッサ1号機,,", "記録間隔,60秒,,",
             "日時,P(kW),電力量[kWh],流量 m3/min"]
    for k in range(30):
        lines.append(f"2026/04/01 10:{k:02d}:00,{20 + k % 3},{0.3 + (k % 2) / 10:.2f},{4.5 + k / 100:.2f}")
    src = tmp_path / "logger.csv"
    src.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp932"))
    assert run("import", "--guess", src) == 0
    text = capsys.readouterr().out
    assert 'encoding = "cp932"' in text and "header_row = 3" in text and 'format = "%Y/%m/%d %H:%M:%S"' in text
    m = load_mapping(write_map(tmp_path, text))
    by = {c.column: c for c in m.columns}
    assert by["P(kW)"].unit == "kW" and by["P(kW)"].quantity == "power_kw"
    assert by["電力量[kWh]"].kind == "interval_energy" and by["流量 m3/min"].quantity == "air_flow_m3min"
    res = import_files([src], m)
    assert len(res.channels) == 3 and res.rows == 90


# ------------------------------------------------------------ hostile input
def test_huge_file_fails_fast_before_reading(tmp_path):
    src = tmp_path / "big.csv"
    with open(src, "wb") as f:
        f.write(b"time,P_kW\n" + b"2026-04-01 09:00:00,1.5\n" * 100_000)
        f.truncate(2 << 30)            # then a sparse hole to 2 GB: reading it all would take minutes
    import time
    t0 = time.monotonic()
    with pytest.raises(InputError, match=r"big.csv: 2.1 GB; importing it needs about .* split the export"):
        import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)), memory_limit=1 << 30)
    assert time.monotonic() - t0 < 5


def test_endless_line_is_refused(tmp_path):
    src = tmp_path / "one_line.csv"
    src.write_bytes(b"a" * (3 << 20))
    with pytest.raises(InputError, match=r"one_line.csv: line 1: longer than"):
        import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)))


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=400))
def test_random_bytes_give_a_clear_error_or_readings(tmp_path, body):
    src = tmp_path / "fuzz.csv"
    src.write_bytes(b"time,P_kW\n" + body)
    try:
        res = import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)))
    except InputError as e:
        assert "fuzz.csv" in str(e)
    else:
        assert all(np.isfinite(c.value[c.quality == 0]).all() for c in res.channels.values())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.text(alphabet=st.sampled_from("0123456789.,-+eE* ０１NA/#\"x"), max_size=8),
                      min_size=1, max_size=6))
def test_random_cells_parse_or_name_their_line(tmp_path, cells):
    src = tmp_path / "cells.csv"
    body = "".join(f'2026-04-01 09:{k:02d}:00,"{c.replace(chr(34), "")}"\n' for k, c in enumerate(cells))
    src.write_text("time,P_kW\n" + body)
    try:
        res = import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)))
    except InputError as e:
        assert "cells.csv: line " in str(e) and "field 'P_kW'" in str(e)
    else:
        c = res.channels["p"]
        assert len(c.value) == len(cells)
        assert np.isfinite(c.value[c.quality == 0]).all()


# ------------------------------------------------- replay/analyze --mapping
def _week_export(path: Path) -> Path:
    """A week of 5-minute Shift_JIS logger data: a press with a 3 kW standby at night."""
    rows = ["装置,PW3360", "日時,プレス電力(kW),照明 電力量[kWh]"]
    t = dt.datetime(2026, 4, 6)           # a Monday
    for k in range(7 * 288):
        now = t + dt.timedelta(minutes=5 * k)
        work = now.weekday() < 5 and 8 <= now.hour < 17
        rows.append(f"{now:%Y/%m/%d %H:%M},{40.0 if work else 3.0},{0.5 if work else 0.1:.2f}")
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode("cp932"))
    return path


WEEK_MAP = """
[source]
header_row = 2
[time]
column = "日時"
format = "%Y/%m/%d %H:%M"
stamp = "end"
[[columns]]
column = "プレス電力(kW)"
channel = "press"
quantity = "電力"
equipment_kind = "press"
[[columns]]
column = "照明 電力量[kWh]"
channel = "lighting"
kind = "interval_energy"
equipment_kind = "lighting"
"""


@pytest.mark.slow
def test_replay_with_mapping_equals_import_then_replay(tmp_path):
    import json
    import subprocess
    import sys

    from helpers.api_site import write_config
    export = _week_export(tmp_path / "logger.csv")
    mp = write_map(tmp_path, WEEK_MAP)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    rec = tmp_path / "rec.csv"
    assert run("import", export, "--mapping", mp, "-o", rec) == 0

    def replay(cfg_dir, *args):
        r = subprocess.run([sys.executable, "-m", "mieruka.cli", "replay", *map(str, args), "--config",
                            str(write_config(cfg_dir)), "--no-progress", "--json", str(cfg_dir / "f.json")],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return json.loads((cfg_dir / "f.json").read_text("utf-8")), r.stderr

    direct, _ = replay(a, rec)
    fly, err = replay(b, export, "--mapping", mp)
    assert "imported 4,032 readings of 2 channel(s)" in err
    src = fly["provenance"]["input"].pop("imported_from")   # the exports the auditor holds (see test_replay_provenance)
    assert [f["file"] for f in src["files"]] == ["logger.csv"]
    assert fly == direct                                   # same readings, same figures, same input hash
    kinds = {f["kind"] for f in fly["analysis"]["findings"]}
    assert "standby" in kinds
    energy = fly["analysis"]["summary"]["energy_kwh"]
    assert energy["lighting"] == pytest.approx(5 * (9 * 12 * 0.5 + 15 * 12 * 0.1) + 2 * 24 * 12 * 0.1, rel=1e-6)


def test_analyze_with_mapping_json(tmp_path, capsys):
    import json
    export = _week_export(tmp_path / "logger.csv")
    assert run("analyze", export, "--mapping", write_map(tmp_path, WEEK_MAP), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["energy_kwh"]["press"] == pytest.approx(5 * (9 * 40 + 15 * 3) + 2 * 24 * 3, rel=1e-6)
    assert run("analyze", export, export) == 2                 # two files without --mapping: a usage error


def test_xlsx_date_and_time_cells_in_two_columns(tmp_path):
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.append(["日付", "時刻", "電力(kW)"])
    for k in range(3):
        ws.append([dt.datetime(2026, 4, 1), (dt.datetime(2026, 4, 1, 9) + dt.timedelta(minutes=30 * k)).time(), 5 + k])
    path = tmp_path / "two.xlsx"
    wb.save(path)
    mp = write_map(tmp_path, '[time]\ncolumns = ["日付", "時刻"]\nformat = "%Y/%m/%d %H:%M"\n'
                             '[[columns]]\ncolumn = "電力(kW)"\nchannel = "p"\nquantity = "電力"\n')
    res = import_files([path], load_mapping(mp))
    assert list(res.channels["p"].time_ms) == [ms(2026, 4, 1, 9, 0), ms(2026, 4, 1, 9, 30), ms(2026, 4, 1, 10, 0)]
    assert list(res.channels["p"].value) == [5, 6, 7]


def test_old_xls_and_help(tmp_path, capsys):
    src = tmp_path / "old.xls"
    src.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    assert run("import", src, "--mapping", write_map(tmp_path, DAY_MAP), "-o", tmp_path / "o.csv") == 2
    assert "old binary Excel workbook (.xls)" in capsys.readouterr().err
    assert run("import", "--help") == 0
    assert "--mapping" in capsys.readouterr().out
    assert run("import", src) == 2                          # neither --mapping nor --guess: usage error


def test_other_spellings_and_late_shift_jis(tmp_path):
    t0 = dt.datetime(2026, 4, 1)
    rows = ["# exported by logger", "time,P kW,memo"] + [
        f"{t0 + dt.timedelta(seconds=k):%Y-%m-%d %H:%M:%S},{k % 7},ok" for k in range(40_000)]
    rows.append("2026-04-02 00:00:00,1,停電")          # Shift_JIS text beyond the first MB
    rows.append("2026-04-02 00:00:01,欠測,ok")         # ... also in a column that is read
    src = tmp_path / "late.csv"
    src.write_bytes(("\n".join(rows) + "\n").encode("cp932"))
    mp = write_map(tmp_path, """
skip_rows = 1
ignore = ["memo"]
[time]
column = "time"
timezone = "Asia/Tokyo"
[[channels]]
column = "P kW"
channel = "p"
quantity = "電力"
""")
    res = import_files([src], load_mapping(mp))
    p = res.channels["p"]
    assert p.value.size == 40_002 and not res.warnings and res.files[0].encoding == "cp932"
    assert p.time_ms[-2] == ms(2026, 4, 2) and p.quality[-1] == Quality.ERROR and p.quality[-2] == 0


def test_streamed_blocks_footer_and_late_error_line(tmp_path, monkeypatch):
    from mieruka.importer import readers
    monkeypatch.setattr(readers, "BLOCK_BYTES", 1 << 14)        # many blocks from a small file
    n = 5000
    body = "".join(f"2026-04-01 {k // 3600:02d}:{k // 60 % 60:02d}:{k % 60:02d},{k}\n" for k in range(n))
    src = tmp_path / "s.csv"
    src.write_text("time,P_kW\n" + body + "合計,12345\n終了,\n", "utf-8")
    mp = write_map(tmp_path, DAY_MAP.replace("[time]", "[source]\nskip_footer = 2\n[time]"))
    res = import_files([src], load_mapping(mp))
    assert list(res.channels["p"].value) == list(range(n))
    src.write_text("time,P_kW\n" + body.replace(",4321\n", ",4x21\n"), "utf-8")
    with pytest.raises(InputError, match=r"s.csv: line 4323: field 'P_kW': '4x21' is not a number"):
        import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)))
    src.write_text("time,P_kW\n", "utf-8")
    with pytest.raises(InputError, match=r"s.csv: no data rows below the header"):
        import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)))


def test_guess_on_xlsx_and_on_the_steel_file(tmp_path, capsys):
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.append(["機種", "PW3360"])
    ws.append(["開始", dt.datetime(2026, 4, 1, 8)])
    ws.append([])
    ws.append(["Date/Time", "P(kW)", "Air 流量 m3/min", "memo"])
    for k in range(20):
        ws.append([dt.datetime(2026, 4, 1, 8) + dt.timedelta(minutes=10 * k), 10.5 + k, 3.25, "x"])
    path = tmp_path / "g.xlsx"
    wb.save(path)
    m = load_mapping(write_map(tmp_path, guess_mapping(path)))
    assert m.source.header_row == 4 and m.ignore == ["memo"]
    assert [(c.channel, c.quantity, c.unit) for c in m.columns] == [("p", "power_kw", "kW"),
                                                                   ("air_流量", "air_flow_m3min", "m3/min")]
    res = import_files([path], m)
    assert res.rows == 40 and not res.warnings
    if DATA.exists():
        text = guess_mapping(DATA)
        assert 'format = "%d/%m/%Y %H:%M"' in text and 'column = "Usage_kWh"' in text
        m = load_mapping(write_map(tmp_path, text))
        by = {c.column: c for c in m.columns}
        assert by["Usage_kWh"].kind == "interval_energy" and by["Lagging_Current_Power_Factor"].unit == "%"
        assert "NSM" not in by                                   # no unit, no quantity: left for a person


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.one_of(st.none(), st.floats(-1e5, 1e5, allow_nan=False).map(lambda x: round(x, 3))),
                       min_size=1, max_size=40),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp932"]), delimiter=st.sampled_from([",", "\t", ";"]),
       missing=st.sampled_from(["", "-", "***", "欠測"]), thousands=st.booleans())
def test_round_trip_any_encoding_delimiter_and_marks(tmp_path, values, encoding, delimiter, missing, thousands):
    def cell(v):
        if v is None:
            return missing
        text = f"{v:,.3f}" if thousands else repr(v)
        return f'"{text}"' if "," in text and delimiter == "," else text
    lines = ["メーカー" + delimiter + "テスト", f"日時{delimiter}電力(kW)"]
    lines += [f"2026/04/01 {k // 60:02d}:{k % 60:02d}{delimiter}{cell(v)}" for k, v in enumerate(values)]
    src = tmp_path / "rt.csv"
    src.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    mp = write_map(tmp_path, '[source]\nheader_row = 2\n[time]\ncolumn = "日時"\nformat = "%Y/%m/%d %H:%M"\n'
                             '[[columns]]\ncolumn = "電力(kW)"\nchannel = "p"\nquantity = "電力"\n')
    c = import_files([src], load_mapping(mp)).channels["p"]
    assert len(c.value) == len(values)
    for v, got, q in zip(values, c.value, c.quality):
        if v is None:
            assert q == Quality.ERROR and np.isnan(got)
        else:
            assert q == Quality.OK and got == pytest.approx(v, abs=1e-9)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(times=st.lists(st.text(alphabet=st.sampled_from("0123456789/:- T年月日時分+Z"), max_size=22),
                      min_size=1, max_size=5))
def test_random_time_texts_parse_or_name_their_line(tmp_path, times):
    src = tmp_path / "times.csv"
    src.write_text("time,P_kW\n" + "".join(f"{t},1\n" for t in times), "utf-8")
    try:
        import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)))
    except InputError as e:
        assert "times.csv" in str(e)


def test_excel_serial_and_unix_times(tmp_path):
    src = tmp_path / "serial.csv"
    src.write_text("time,P_kW\n46113.375,1\n46113.385416666664,2\n", "utf-8")     # 2026-04-01 09:00, 09:15
    res = import_files([src], load_mapping(write_map(tmp_path, DAY_MAP.replace(
        'column = "time"', 'column = "time"\nformat = "excel"'))))
    assert list(res.channels["p"].time_ms) == [ms(2026, 4, 1, 9), ms(2026, 4, 1, 9, 15)]
    src.write_text(f"time,P_kW\n{ms(2026, 4, 1, 9) // 1000},1\n", "utf-8")
    res = import_files([src], load_mapping(write_map(tmp_path, DAY_MAP.replace(
        'column = "time"', 'column = "time"\nformat = "unix"\nzone = "Europe/Berlin"'))))
    assert list(res.channels["p"].time_ms) == [ms(2026, 4, 1, 9)]          # UTC: the zone does not apply


def test_large_recording_written_in_windows_equals_one_piece(tmp_path, monkeypatch):
    from mieruka.importer import core
    src = tmp_path / "w.csv"
    rows = [f"2026-04-01 {k // 3600:02d}:{k // 60 % 60:02d}:{k % 60:02d},{k % 97},{'-' if k % 13 == 0 else k}"
            for k in range(3000)]
    src.write_text("time,P_kW,Q_kW\n" + "\n".join(rows) + "\n")
    mp = write_map(tmp_path, DAY_MAP + '[[columns]]\ncolumn = "Q_kW"\nchannel = "q"\nquantity = "power_kw"\n')
    res = import_files([src], load_mapping(mp))
    res.write(tmp_path / "one.csv", tz="Asia/Tokyo")
    monkeypatch.setattr(core, "WINDOW_READINGS", 500)
    ticks = []
    res.write(tmp_path / "windows.csv", tz="Asia/Tokyo", progress=ticks.append)
    assert (tmp_path / "windows.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    assert len(ticks) >= 10 and ticks[-1] == 1.0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []     # no temp files left


def test_many_files_together_too_big_fail_fast(tmp_path):
    paths = [day_file(tmp_path / f"d{k}.csv", range(24)) for k in range(3)]
    with pytest.raises(InputError, match=r"3 files .* import them in groups"):
        import_files(paths, load_mapping(write_map(tmp_path, DAY_MAP)), memory_limit=2000)


def test_interval_energy_with_a_gap_is_warned_and_still_exact(tmp_path):
    from mieruka.analytics.resample import durations_s
    ends = [dt.datetime(2026, 4, 1, 0, 15) + dt.timedelta(minutes=15 * k) for k in range(40) if k != 20]
    src = tmp_path / "gap.csv"
    src.write_text("time,kWh\n" + "".join(f"{t:%Y-%m-%d %H:%M},{2.5}\n" for t in ends))
    mp = write_map(tmp_path, DAY_MAP.replace('[[columns]]', '[[columns]]\nkind = "interval_energy"\nunit = "kWh"')
                   .replace('column = "P_kW"', 'column = "kWh"').replace('quantity = "power_kw"\n', '')
                   .replace('column = "time"', 'column = "time"\nstamp = "end"'))
    res = import_files([src], load_mapping(mp))
    assert any("1 of 38 time steps differ from the interval 15 min" in w for w in res.warnings)
    c = res.channels["p"]
    assert (c.value == 10.0).all()                             # 2.5 kWh per 15 min = 10 kW
    # each reading stands for its own interval: exact when no sample is held across the missing one
    # (the analytics' default holds a sample over a short gap, an estimate of the missing interval)
    assert float(np.sum(c.value * durations_s(c.time_ms, step_s=900, max_gap_s=900)) / 3600) == \
        pytest.approx(2.5 * 39, rel=1e-9)


def test_fractional_seconds(tmp_path):
    src = tmp_path / "frac.csv"
    src.write_text("time,P_kW\n2026/04/01 09:00:00.5,1\n2026/04/01 09:00:00.250,2\n2026/04/01 09:00:01.000,3\n")
    mp = write_map(tmp_path, DAY_MAP.replace('column = "time"', 'column = "time"\nformat = "%Y/%m/%d %H:%M:%S.%f"'))
    t = import_files([src], load_mapping(mp)).channels["p"].time_ms
    base = ms(2026, 4, 1, 9)
    assert list(t) == [base + 250, base + 500, base + 1000]
    src.write_text("time,P_kW\n2026/04/01 09:00:00.5,1\n2026/04/01 09:00:01,2\n")
    with pytest.raises(InputError, match=r"frac.csv: line 3: field 'time': time '2026/04/01 09:00:01' does not match"):
        import_files([src], load_mapping(mp))


def test_24_00_is_the_end_of_the_day(tmp_path):
    src = tmp_path / "h24.csv"
    src.write_text("date,time,P_kW\n2026/04/01,23:30,1\n2026/04/01,24:00,2\n2026/04/02,0:30,3\n")
    mp = write_map(tmp_path, DAY_MAP.replace('column = "time"', 'columns = ["date", "time"]\nformat = "%Y/%m/%d %H:%M"'))
    t = import_files([src], load_mapping(mp)).channels["p"].time_ms
    assert list(t) == [ms(2026, 4, 1, 23, 30), ms(2026, 4, 2, 0, 0), ms(2026, 4, 2, 0, 30)]


def test_truncated_last_line_named_with_the_way_out(tmp_path):
    src = day_file(tmp_path / "cut.csv", range(5))
    src.write_text(src.read_text() + "2026-04-01 05:00:00,1")       # power lost while the logger wrote
    with pytest.raises(InputError, match=r"cut.csv: line 7: 2 fields, the header has 3 \(the last line: cut short"):
        import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)))
    mp = write_map(tmp_path, DAY_MAP.replace("[time]", "[source]\nskip_footer = 1\n[time]"))
    assert len(import_files([src], load_mapping(mp)).channels["p"].value) == 5


def test_impossible_values_flagged_out_of_range_with_a_warning(tmp_path):
    src = tmp_path / "pf.csv"
    src.write_text("time,PF\n2026-04-01 09:00:00,0.95\n2026-04-01 09:01:00,95\n")    # one row in %, one not
    mp = write_map(tmp_path, DAY_MAP.replace('column = "P_kW"', 'column = "PF"').replace('"power_kw"', '"power_factor"'))
    res = import_files([src], load_mapping(mp))
    c = res.channels["p"]
    assert list(c.quality) == [Quality.OK, Quality.OUT_OF_RANGE] and np.isnan(c.value[1])
    assert any("pf.csv: line 3: field 'PF': 1 value(s) outside what a power_factor meter can give" in w
               for w in res.warnings)
    out = tmp_path / "rec.csv"
    res.write(out)
    assert read_recording(out).channels["p"].quality.tolist() == [0, Quality.OUT_OF_RANGE]


def test_fault_marks_inf_and_over_range_are_missing_not_errors(tmp_path):
    """Loggers write a meter fault or an overflow as text (Graphtec `+++++`/`BURNOUT`,
    `+OVER`, `inf` from numpy/pandas exports): a missing reading, kept with quality
    error, not an import that stops at the first fault."""
    marks = ["inf", "-inf", "+OVER", "-Over", "+++++", "BURNOUT", "Infinity", "#NUM!", "OL"]
    src = tmp_path / "faults.csv"
    src.write_text("time,P_kW\n" + "".join(f"2026-04-01 {h:02d}:00:00,{m}\n" for h, m in enumerate(marks))
                   + f"2026-04-01 {len(marks):02d}:00:00,12.5\n")
    res = import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)))
    p = res.channels["p"]
    assert list(p.quality) == [Quality.ERROR] * len(marks) + [0]
    assert np.isnan(p.value[:-1]).all() and p.value[-1] == 12.5
    # a number that overflows float is still refused with its line (it is not a mark)
    src.write_text("time,P_kW\n2026-04-01 00:00:00,1\n2026-04-01 01:00:00,1e999\n")
    with pytest.raises(InputError, match=r"faults.csv: line 3: field 'P_kW': '1e999' is not a finite number"):
        import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)))


def test_excel_serial_days_with_six_decimals_land_on_the_logger_grid(tmp_path):
    """A serial day printed with 6 decimals resolves 86 ms: 14:45 must stay 14:45:00,
    not 14:44:59.957 (off every quarter-hour grid)."""
    base = dt.datetime(1899, 12, 30)
    times = [dt.datetime(2024, 5, 19, 14, 45) + dt.timedelta(minutes=15 * k) for k in range(6)]
    src = tmp_path / "serial.csv"
    src.write_text("time,P_kW\n" + "".join(f"{(t - base).total_seconds() / 86400:.6f},{k}\n"
                                            for k, t in enumerate(times)), "utf-8")
    res = import_files([src], load_mapping(write_map(tmp_path, DAY_MAP.replace(
        'column = "time"', 'column = "time"\nformat = "excel"'))))
    t = res.channels["p"].time_ms
    assert list(t) == [int(x.replace(tzinfo=JST).timestamp() * 1000) for x in times]


def test_guess_finds_excel_serial_and_unix_time_columns(tmp_path):
    base = dt.datetime(1899, 12, 30)
    rows = [dt.datetime(2024, 5, 6) + dt.timedelta(minutes=15 * k) for k in range(20)]
    src = tmp_path / "serial.csv"
    src.write_text("Serial,Load kW\n" + "".join(f"{(t - base).total_seconds() / 86400:.6f},{k + 1}\n"
                                                 for k, t in enumerate(rows)), "utf-8")
    text = guess_mapping(src)
    assert 'format = "excel"' in text
    res = import_files([src], load_mapping(write_map(tmp_path, text)))
    assert res.channels["load"].time_ms[0] == ms(2024, 5, 6)
    src.write_text("unix,Load kW\n" + "".join(f"{1_700_000_000 + 60 * k},{k}\n" for k in range(20)), "utf-8")
    assert 'format = "unix"' in guess_mapping(src)
    # a rising counter in the first column is not a time
    src.write_text("kWh,P_kW\n" + "".join(f"{45000.25 + 0.37 * k:.2f},{k}\n" for k in range(20)), "utf-8")
    with pytest.raises(InputError, match="found no time column"):
        guess_mapping(src)


def test_iso_offsets_give_the_zone_in_the_guess_and_a_warning_on_a_wrong_zone(tmp_path):
    """A logger writing ISO times with offsets (+01:00 in winter, +02:00 in summer) is in
    Europe/Berlin: the guess says so, and a mapping left at Asia/Tokyo is warned about
    (the recording would state Berlin's instants in Tokyo time: nights become mornings)."""
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    u0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
    src = tmp_path / "berlin.csv"
    src.write_text("timestamp,P_kW\n" + "".join(
        f"{(u0 + dt.timedelta(hours=6 * k)).astimezone(berlin).isoformat()},{k}\n" for k in range(4 * 60)), "utf-8")
    text = guess_mapping(src)
    assert 'zone = "Europe/Berlin"' in text
    res = import_files([src], load_mapping(write_map(tmp_path, text)))
    assert not [w for w in res.warnings if "UTC offsets" in w]
    res = import_files([src], load_mapping(write_map(tmp_path, text.replace('"Europe/Berlin"', '"Asia/Tokyo"'))))
    warn = [w for w in res.warnings if "UTC offsets" in w]
    assert len(warn) == 1 and "+01:00, +02:00" in warn[0] and "Europe/Berlin" in warn[0] and "Asia/Tokyo" in warn[0]
    assert res.channels["p"].time_ms[0] == int(u0.timestamp() * 1000)       # the instants are kept


def test_two_values_for_one_instant_in_one_file_named_with_the_way_out(tmp_path):
    src = tmp_path / "dup.csv"
    src.write_text("time,P_kW\n2026-04-01 00:00:00,1\n2026-04-01 00:15:00,2\n2026-04-01 00:15:00,2.5\n"
                   "2026-04-01 00:30:00,3\n2026-04-01 00:30:00,3\n", "utf-8")
    with pytest.raises(InputError, match=r"dup.csv: line 3 and .*dup.csv: line 4 disagree on channel 'p' .*"
                                         r"one file gives two values for one instant.*ambiguous = \"infer\".*duplicates"):
        import_files([src], load_mapping(write_map(tmp_path, DAY_MAP)))
    for policy, kept in (("first", 2.0), ("last", 2.5)):
        res = import_files([src], load_mapping(write_map(tmp_path, DAY_MAP.replace(
            'column = "time"', f'column = "time"\nduplicates = "{policy}"'))))
        assert list(res.channels["p"].value) == [1.0, kept, 3.0]
        assert any("1 time(s) with two different values" in w and f"kept the {policy}" in w for w in res.warnings)


def test_guess_sees_midnight_rows_dated_with_the_day_they_close(tmp_path):
    """A logger that writes 24:00 as `01/01/2018 0:00` after `01/01/2018 23:45` stamps
    interval ends: the guess says stamp = "end" and midnight = "end_of_day" (the steel
    export was imported a day and 15 minutes off at every midnight), and a day past the
    12th settles day/month."""
    src = tmp_path / "ends.csv"
    rows = ["date,Usage_kWh"]
    t = dt.datetime(2018, 1, 1)
    for k in range(96 * 15):
        t = t + dt.timedelta(minutes=15)
        stamp = t - dt.timedelta(days=1) if (t.hour, t.minute) == (0, 0) else t
        rows.append(f"{stamp.day:02d}/{stamp.month:02d}/{stamp.year} {stamp.hour}:{stamp.minute:02d},{k % 7}")
    src.write_text("\n".join(rows) + "\n", "utf-8")
    text = guess_mapping(src)
    assert 'stamp = "end"' in text and 'midnight = "end_of_day"' in text
    assert "both day/month and month/day fit" not in text
    res = import_files([src], load_mapping(write_map(tmp_path, text)))
    assert not [w for w in res.warnings if "time goes back" in w]
    t_ms = res.channels["usage"].time_ms
    assert t_ms[0] == ms(2018, 1, 1) and (np.diff(t_ms) == 900_000).all()
    # a logger stamping starts (00:00 dated with its own day) keeps stamp = "start"
    src.write_text("time,P_kW\n" + "".join(f"{dt.datetime(2018, 1, 1) + dt.timedelta(minutes=15 * k):%d/%m/%Y %H:%M},1\n"
                                           for k in range(300)), "utf-8")
    text = guess_mapping(src)
    assert 'stamp = "start"' in text and "midnight" not in text.split("[[columns]]")[0].split("[time]")[1]


def test_mapping_without_columns_says_what_to_do(tmp_path):
    """A guess that could read no column's unit leaves them all commented out; the import
    said only 'columns: required key is missing'."""
    src = tmp_path / "il.csv"
    src.write_text("start,value\n" + "".join(f"2015-11-22T{h:02d}:00:00-06:00,{h / 10}\n" for h in range(24)))
    text = guess_mapping(src)
    assert '# column = "value"' in text and 'zone = "America/Chicago"' in text
    with pytest.raises(ConfigError, match=r"no \[\[columns\]\] table: map at least one column.*commented blocks"):
        load_mapping(write_map(tmp_path, text))
