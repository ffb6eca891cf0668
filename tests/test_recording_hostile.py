"""Recordings from the outside world (issue 10, items 3-6): any bytes into `analyze`
and `replay` end in exit 0 or exit 2 with one `error:` line, never a traceback;
Shift_JIS files are read (and said so); values no meter can produce are flagged
`out_of_range` with the collector's bounds; conflicting duplicates are refused with
both lines; a unit that does not fit its quantity is refused; `.csv.gz` is read."""
from __future__ import annotations

import contextlib
import gzip
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.demo import DEMO_SITE
from mieruka.cli import main
from mieruka.errors import InputError
from mieruka.models import Quality
from mieruka.quantities import QUANTITIES, bounds
from mieruka.recording import read_recording


def valid_rows() -> list[str]:
    """Two days of a press (power) and the incomer's energy counter, 30-minute readings."""
    rows = []
    for i in range(96):
        t = np.datetime64("2026-04-06T00:00") + np.timedelta64(30 * i, "m")
        hour = (i // 2) % 24
        kw = 40.0 if 8 <= hour < 17 else 3.0
        iso = np.datetime_as_string(t, unit="s") + "+09:00"
        rows.append(f"{iso},press,power_kw,{kw},press,,kW,ok")
        rows.append(f"{iso},main_energy,energy_kwh,{1000 + 20.0 * i},incomer,,kWh,ok")
    return rows


HEADER = "time,channel,quantity,value,equipment_kind,system,unit,quality"
VALID = "\n".join([HEADER, *valid_rows()]) + "\n"


def run_cli(*args: str) -> tuple[int, str]:
    """`mieruka ARGS` in this process: (exit code, stderr).  An exception escaping
    main() is exactly the traceback a user would have seen."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(list(args))
    return rc, err.getvalue()


def assert_clean_outcome(rc: int, err: str) -> None:
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        lines = [x for x in err.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err


SPECIAL = ["", "1e307", "-1e307", "1e12", "nan", "NaN", "inf", "-inf", "1e400", "0", "-0", "x", "W", "kW", "MWh",
           "0001-01-01T00:00:00+09:00", "9999-12-31T23:59:59+09:00", "2026-04-06T00:00:00", "2026-13-01T00:00:00Z",
           "power_kw", "energy_kwh", "pressure_mpa", "timeout", "ok", "bogus", "\"", "a,b", "プレス", "=1+1"]


@st.composite
def mutated(draw) -> bytes:
    lines = VALID.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(1, len(lines) - 1))
        kind = draw(st.sampled_from(["field", "dup", "drop", "swap", "bytes"]))
        if kind == "field":
            cells = lines[i].split(",")
            j = draw(st.integers(0, len(cells) - 1))
            cells[j] = draw(st.one_of(st.sampled_from(SPECIAL), st.text(max_size=12),
                                      st.floats(allow_nan=True, allow_infinity=True).map(repr)))
            lines[i] = ",".join(cells)
        elif kind == "dup":
            lines.insert(i, lines[i] if draw(st.booleans()) else lines[i].replace(",ok", ",timeout"))
        elif kind == "drop":
            del lines[i]
        elif kind == "swap":
            j = draw(st.integers(1, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            raw = lines[i].encode("utf-8", "surrogateescape")
            k = draw(st.integers(0, len(raw)))
            lines[i] = (raw[:k] + draw(st.binary(max_size=6)) + raw[k:]).decode("utf-8", "surrogateescape")
    return "\n".join(lines).encode("utf-8", "surrogateescape") + b"\n"


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.one_of(st.binary(max_size=400), mutated(),
                      st.binary(max_size=200).map(lambda b: (HEADER + "\n").encode() + b)))
def test_analyze_any_bytes_exit_0_or_one_error_line(data):
    with tempfile.TemporaryDirectory() as d:
        for name in ("rec.csv", "rec.csv.gz"):
            path = Path(d) / name
            path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
            assert_clean_outcome(*run_cli("analyze", str(path)))


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.one_of(mutated(), st.binary(max_size=300)))
def test_replay_any_bytes_exit_0_or_one_error_line(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "rec.csv"
        path.write_bytes(data)
        before = os.environ.get("MIERUKA_DATA_DIR")
        os.environ["MIERUKA_DATA_DIR"] = str(Path(d) / "data")
        try:
            assert_clean_outcome(*run_cli("replay", str(path), "--config", str(DEMO_SITE), "--no-progress"))
        finally:                                 # the environment as it was (set or not) for later tests
            if before is None:
                del os.environ["MIERUKA_DATA_DIR"]
            else:
                os.environ["MIERUKA_DATA_DIR"] = before


def write(tmp_path: Path, body: str, name: str = "rec.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes((HEADER + "\n" + body).encode(encoding))
    return p


def test_shift_jis_from_excel_is_read_and_said(tmp_path, caplog):
    body = "\n".join(r.replace(",press,,", ",プレス機,,") for r in valid_rows()) + "\n"
    rec = read_recording(write(tmp_path, body, encoding="cp932"))
    assert rec.channels["press"].info.equipment_kind == "プレス機"
    assert any("Shift_JIS" in n for n in rec.notes) and "Shift_JIS" in caplog.text
    p = tmp_path / "latin.csv"                        # neither UTF-8 nor Shift_JIS: named, with the line
    p.write_bytes((HEADER + "\n" + "\n".join(valid_rows()[:3]) + "\n2026-04-06T00:00:00Z,pr\xe9,power_kw,1,,,kW,ok\n"
                   ).encode("latin-1") + b"\x80\xff\n")
    with pytest.raises(InputError, match=r"latin.csv: line 5: byte 0x[0-9a-f]{2} is not UTF-8 text.*Shift_JIS"):
        read_recording(p)
    with pytest.raises(InputError, match=r"u16.csv: UTF-16 text .*save it as CSV UTF-8"):
        read_recording(write(tmp_path, body, "u16.csv", encoding="utf-16"))


def test_years_0001_and_9999_are_refused_with_the_line(tmp_path):
    for when in ("0001-01-01T00:00:00+09:00", "9999-12-31T23:59:59+09:00"):
        rows = valid_rows()
        rows[3] = when + rows[3][rows[3].index(","):]
        with pytest.raises(InputError, match=r"line 5: field `time`: .* outside the years 1970-2099"):
            read_recording(write(tmp_path, "\n".join(rows) + "\n"))


def test_values_no_meter_can_produce_are_flagged_with_the_collectors_bounds(tmp_path):
    rows = valid_rows()
    rows[2] = rows[2].replace(",40.0,", ",1e12,").replace(",3.0,", ",1e12,")        # press at 01:00
    rows[4] = rows[4].replace(",40.0,", ",1e307,").replace(",3.0,", ",1e307,")
    rec = read_recording(write(tmp_path, "\n".join(rows) + "\n"))
    press = rec.channels["press"]
    assert (press.quality == Quality.OUT_OF_RANGE).sum() == 2 and np.isnan(press.value[[1, 2]]).all()
    assert any("2 readings outside" in n and "line 4" in n for n in rec.notes)
    # the same bounds the Modbus collector applies (one place: mieruka.quantities)
    assert bounds("power_kw") == (QUANTITIES["power_kw"].lo, QUANTITIES["power_kw"].hi) == (-1e6, 1e6)
    assert bounds("power_kw", (0, None), (None, 500.0)) == (0, 500.0)
    rc, err = run_cli("analyze", str(tmp_path / "rec.csv"), "--json")
    assert rc == 0, err


def test_extreme_but_valid_values_do_not_break_the_analysis(tmp_path):
    for kw in ("999999", "0", "-999999", "1e-300"):
        rows = [r.replace(",40.0,", f",{kw},").replace(",3.0,", f",{kw},") for r in valid_rows()]
        rc, err = run_cli("analyze", str(write(tmp_path, "\n".join(rows) + "\n")), "--json")
        assert rc == 0, (kw, err)


def test_conflicting_duplicates_name_both_lines_identical_ones_are_kept_once(tmp_path):
    rows = valid_rows()
    twin = rows[10]
    rec = read_recording(write(tmp_path, "\n".join(rows + [twin]) + "\n"))
    assert len(rec.channels["press"].time) == 96                       # the repeat counted once
    other = twin.replace(",40.0,", ",41.0,").replace(",3.0,", ",4.0,")
    with pytest.raises(InputError, match=r"lines 12 and 194: channel 'press' has two different readings at "
                                         r"2026-04-05T17:30:00Z"):
        read_recording(write(tmp_path, "\n".join(rows + [other]) + "\n"))


def test_a_unit_that_does_not_fit_is_refused_on_any_row(tmp_path):
    rows = valid_rows()
    rows[40] = rows[40].replace(",kW,", ",W,")
    with pytest.raises(InputError, match=r"line 42: field `unit`: 'W' does not fit power_kw \(expected kW\)"):
        read_recording(write(tmp_path, "\n".join(rows) + "\n"))


def test_csv_gz_is_read_like_the_csv(tmp_path):
    plain = write(tmp_path, "\n".join(valid_rows()) + "\n")
    gz = tmp_path / "rec.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = read_recording(plain), read_recording(gz)
    assert set(a.channels) == set(b.channels) == {"press", "main_energy"}
    for ch in a.channels:
        np.testing.assert_array_equal(a.channels[ch].time, b.channels[ch].time)
        np.testing.assert_array_equal(a.channels[ch].value, b.channels[ch].value)
    bad = tmp_path / "bad.csv.gz"                                      # a bad row is named in a .gz too
    bad.write_bytes(gzip.compress((HEADER + "\n" + valid_rows()[0] + "\n2026-04-06,x,power_kw,abc,,,kW,ok\n").encode()))
    with pytest.raises(InputError, match="line 3"):
        read_recording(bad)
    torn = tmp_path / "torn.csv.gz"
    torn.write_bytes(gz.read_bytes()[:-40])
    rc, err = run_cli("analyze", str(torn))
    assert rc == 2 and err.startswith(f"error: {torn}") and err.count("\n") == 1, err



def plant_rows(values: dict[str, list[float]]) -> str:
    """A compressor, its air meter and pressure, a press and the incomer counter, 48 half hours."""
    kinds = {"comp": ("power_kw", "compressor", "air1", "kW"), "flow": ("air_flow_m3min", "air_meter", "air1", "m3/min"),
             "pres": ("pressure_mpa", "air_meter", "air1", "MPa"), "press": ("power_kw", "press", "", "kW"),
             "main_energy": ("energy_kwh", "incomer", "", "kWh")}
    rows = []
    for i in range(48):
        iso = np.datetime_as_string(np.datetime64("2026-04-06T00:00") + np.timedelta64(30 * i, "m"), unit="s") + "+09:00"
        for ch, (qty, kind, system, unit) in kinds.items():
            rows.append(f"{iso},{ch},{qty},{values[ch][i % len(values[ch])]!r},{kind},{system},{unit},ok")
    return HEADER + "\n" + "\n".join(rows) + "\n"


def within(qty: str):
    q = QUANTITIES[qty]
    return st.lists(st.one_of(st.sampled_from([q.lo, q.hi, 0.0, -0.0, 5e-324]),
                              st.floats(q.lo, q.hi, allow_nan=False)), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(comp=within("power_kw"), flow=within("air_flow_m3min"), pres=within("pressure_mpa"),
       press=within("power_kw"), energy=within("energy_kwh"))
def test_extreme_but_valid_plants_are_analysed_without_a_crash(comp, flow, pres, press, energy):
    """Every value inside the physical bounds, the extremes included: the detectors,
    the baseline and the CO2 engine must not divide by zero or overflow into a crash."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "plant.csv"
        path.write_text(plant_rows({"comp": comp, "flow": flow, "pres": pres, "press": press,
                                    "main_energy": sorted(energy)}))
        rc, err = run_cli("analyze", str(path), "--json")
        assert rc == 0, err
