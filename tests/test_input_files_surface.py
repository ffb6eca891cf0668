"""Input files as Japanese offices write them: bills dated 令和6年4月 or 2024年4月, a
weather download from 気象庁 (Shift_JIS, 日時/気温(℃), 2026/4/5 1:00), header typos;
and hostile ones (year 0001), each read or refused with one line naming file and line."""
from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest

from mieruka.cli import main
from mieruka.errors import InputError
from mieruka.weather_file import read_weather

EXAMPLES = Path(__file__).resolve().parents[1] / "config" / "examples"
TZ = zoneinfo.ZoneInfo("Asia/Tokyo")


def _co2_json(capsys, path: Path) -> dict:
    import json
    assert main(["co2", str(path), "--format", "json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("period", ["2024年4月", "令和6年4月", "R6.4", "２０２４-０４", "2024年4月分"])
def test_bill_periods_as_japanese_bills_write_them(tmp_path, capsys, period):
    text = (EXAMPLES / "energy-fy2024.csv").read_text("utf-8")
    want = _co2_json(capsys, EXAMPLES / "energy-fy2024.csv")
    p = tmp_path / "bills.csv"
    p.write_text(text.replace("\n2024-04,", f"\n{period},"), "utf-8")
    assert _co2_json(capsys, p)["total_t_co2"] == want["total_t_co2"]


def test_bill_period_without_era_or_four_digits_is_refused(tmp_path, capsys):
    p = tmp_path / "bills.csv"
    p.write_text("period,energy,amount,unit\n6年4月,電力,100,kWh\n", "utf-8")
    assert main(["co2", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {p}:2: period:") and "four digits" in err


def test_bill_header_typo_names_the_column_meant(tmp_path, capsys):
    p = tmp_path / "bills.csv"
    p.write_text("period,energy,amout,unit\n2024-04,電力,100,kWh\n", "utf-8")
    assert main(["co2", str(p)]) == 2
    assert "unknown column 'amout' (did you mean 'amount'?" in capsys.readouterr().err


def _weather_rows(n: int = 48) -> list[tuple[dt.datetime, float]]:
    t0 = dt.datetime(2026, 4, 5)
    return [(t0 + dt.timedelta(hours=h), 10.0 + h % 7) for h in range(n)]


def test_weather_from_jma_download_shift_jis(tmp_path):
    rows = _weather_rows()
    iso = tmp_path / "iso.csv"
    iso.write_text("time,temperature_c\n" + "".join(f"{t.isoformat()},{v}\n" for t, v in rows), "utf-8")
    jma = tmp_path / "jma.csv"
    jma.write_bytes(("年月日時,気温(℃)\r\n" + "".join(f"{t.year}/{t.month}/{t.day} {t.hour}:00:00,{v}\r\n"
                                                    for t, v in rows)).encode("cp932"))
    a, b = read_weather(iso, TZ), read_weather(jma, TZ)
    assert (a.time == b.time).all() and (a.value == b.value).all() and len(a.time) == len(rows)


@pytest.mark.parametrize("bad, expect", [
    ("0001-01-01T00:00:00", "year out of range"),       # was ValueError: year 0 is out of range
    ("9999-12-31T23:00:00", "year out of range"),
])
def test_weather_times_out_of_range_are_one_line(tmp_path, bad, expect):
    p = tmp_path / "w.csv"
    p.write_text(f"time,temperature_c\n2026-04-05T00:00:00,10\n{bad},5\n", "utf-8")
    with pytest.raises(InputError, match=rf"^{p}: line 3: field `time`: .*{expect}"):
        read_weather(p, TZ)


def test_weather_folder_is_named_as_a_folder(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        read_weather(tmp_path, TZ)
