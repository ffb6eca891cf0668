"""Outdoor temperature from a CSV file: `time,temperature_c` (`mieruka analyze --weather`).

`time` is ISO 8601 (or YYYY/MM/DD HH:MM); without a UTC offset it is site time
(`tz`).  Any other columns are ignored.  A weather service's export is read as
it comes: 気象庁's CSV (Shift_JIS, its own lines above the names, 年月日時 and
気温(℃), `///` for a missing hour, 24:00).  Bad input ends with one line naming
the file, line and field.
"""
from __future__ import annotations

import csv
import datetime as dt
import math
import unicodedata
from pathlib import Path

import numpy as np

from .errors import InputError
from .importer.readers import detect_encoding
from .models import ChannelData, ChannelInfo
from .store.base import supported_time

CHANNEL_ID = "outdoor_air"


TIME_NAMES = ("time", "datetime", "date time", "date_time", "timestamp", "dt", "date", "日時", "年月日時", "年月日",
              "日付時刻")
MISSING = ("", "-", "--", "///", "×", "nan", "n/a", "na", "null", "#n/a", "欠測", "---")
TIME_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d",
                "%Y-%m-%d", "%d/%m/%Y %H:%M", "%d.%m.%Y %H:%M")
HEADER_SEARCH_ROWS = 12      # a weather service's export has a few lines of its own above the names


def _is_temperature(name: str) -> bool:
    n = unicodedata.normalize("NFKC", name).strip().lower()
    return n in ("temperature_c", "temperature", "temp", "temp_c", "tempc", "air_temperature", "outdoor_temperature",
                 "temperature_f", "temp_f", "tempf") \
        or n.startswith(("気温", "外気温", "temperature (", "temperature(", "temp (", "temp(")) or "外気温" in n


def _fahrenheit(name: str) -> bool:
    """A column in degF (`tempF`, `Temperature (°F)`): converted to degC."""
    n = unicodedata.normalize("NFKC", name).strip().lower()
    return n.endswith(("_f", "tempf", "°f)", "(f)", "°f", "℉)")) or "℉" in name


def _header(rows: list[list[str]]) -> tuple[int, int, int] | None:
    """(row, time column, temperature column) of the names row: `time,temperature_c`, or a
    weather service's (気象庁: 年月日時, 気温(℃) under a block of its own lines)."""
    for r, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        names = [unicodedata.normalize("NFKC", c).strip().lower() for c in row]
        it = next((i for i, n in enumerate(names) if n in TIME_NAMES), None)
        iv = next((i for i, n in enumerate(row) if _is_temperature(n)), None)
        if it is not None and iv is not None:
            return r, it, iv
    return None


def _time(text: str, tz) -> dt.datetime | None:
    text = unicodedata.normalize("NFKC", text).strip()
    day_after = False
    if text.endswith(" 24:00") or text.endswith(" 24:00:00"):      # 気象庁 writes the day's last hour as 24:00
        text, day_after = text.rsplit(" ", 1)[0] + " 00:00", True
    try:
        t = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        t = None
        for f in TIME_FORMATS:
            try:
                t = dt.datetime.strptime(text, f)
                break
            except ValueError:
                continue
        if t is None:
            return None
    if day_after:
        t += dt.timedelta(days=1)
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


def read_weather(path: str | Path, tz) -> ChannelData:
    """The outdoor temperature channel (times datetime64[ms] UTC, degC), sorted by time.
    Reads `time,temperature_c` in UTF-8, and a weather service's export in its own
    encoding (気象庁 CSV: Shift_JIS, lines above the names, 年月日時 / 気温(℃), `///` for a
    missing hour); missing marks are no reading."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a weather file (time,temperature_c)")
    if not path.is_file():
        raise InputError(f"{path}: no such weather file")
    try:
        enc = detect_encoding(path)
    except InputError:
        raise
    except Exception:           # noqa: BLE001  (a file the detector cannot read at all)
        enc = "utf-8-sig"
    try:
        with open(path, newline="", encoding=enc) as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, LookupError):
        raise InputError(f"{path}: not a text file in a known encoding (UTF-8, Shift_JIS)") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    except csv.Error as e:
        raise InputError(f"{path}: {e}") from None
    found = _header(rows)
    if found is None:
        header = [h.strip().lower() for h in rows[0]] if rows else []
        col = "time" if not any(h in TIME_NAMES for h in header) else "temperature_c"
        raise InputError(f"{path}: line 1: header lacks column {col!r} (expected `time,temperature_c`, "
                         f"or a weather service's 年月日時 and 気温 columns)")
    hr, it, iv = found
    tname = rows[hr][iv].strip() or "temperature_c"
    to_c = (lambda x: (x - 32.0) * 5.0 / 9.0) if _fahrenheit(tname) else (lambda x: x)     # noqa: E731
    times, temps = [], []
    started = False
    for line_no, r in enumerate(rows[hr + 1:], start=hr + 2):
        if not r or all(not c.strip() for c in r):
            continue
        if len(r) <= max(it, iv):
            raise InputError(f"{path}: line {line_no}: expected {len(rows[hr])} fields, got {len(r)}")
        t = _time(r[it], tz)
        if t is None:
            if not started and not r[it].strip():
                continue                 # a second header line (気象庁: 品質情報, 均質番号)
            raise InputError(f"{path}: line {line_no}: field `time`: {r[it].strip()!r} is not a time "
                             f"(ISO 8601 or YYYY/MM/DD HH:MM)")
        if not supported_time(t):            # year 0001 in UTC+9 is before year 1: a traceback
            raise InputError(f"{path}: line {line_no}: field `time`: {r[it].strip()!r}: year out of range 1970..2200")
        started = True
        v = unicodedata.normalize("NFKC", r[iv]).strip()
        if v.lower() in MISSING:
            continue                     # a missing hour: no reading
        v = v.rstrip(" )]")              # 気象庁 marks doubtful values "12.3 )" / "12.3 ]"
        try:
            x = to_c(float(v))
        except ValueError:
            raise InputError(f"{path}: line {line_no}: field `{tname}`: {v!r} is not a number") from None
        if not math.isfinite(x) or not -90.0 <= x <= 70.0:
            raise InputError(f"{path}: line {line_no}: field `{tname}`: {v} is not an outdoor "
                             f"temperature in degC (-90..70)")
        times.append(int(t.timestamp() * 1000))
        temps.append(x)
    if not times:
        raise InputError(f"{path}: no temperature readings")
    t_ms = np.array(times, np.int64)
    order = np.argsort(t_ms, kind="stable")
    info = ChannelInfo(CHANNEL_ID, "temperature_c", "degC", "outdoor_air")
    return ChannelData(info, t_ms[order].astype("datetime64[ms]"), np.array(temps)[order])
