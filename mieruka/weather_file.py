"""Outdoor temperature from a CSV file: `time,temperature_c` (`mieruka analyze --weather`).

`time` is ISO 8601; without a UTC offset it is site time (`tz`).  Any other
columns are ignored, so a weather service's export works once its columns are
named.  Bad input ends with one line naming the file, line and field.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
import unicodedata
from pathlib import Path

import numpy as np

from .errors import InputError
from .models import ChannelData, ChannelInfo

CHANNEL_ID = "outdoor_air"


# header names people and weather services use (気象庁's download says 年月日時 and 気温(℃))
_TIME_NAMES = ("time", "datetime", "date_time", "timestamp", "時刻", "日時", "年月日時", "日付時刻")
_TEMP_NAMES = ("temperature_c", "temperature", "temp_c", "気温", "気温(℃)", "気温(°c)", "外気温", "外気温度")


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    for i, h in enumerate(header):
        if h in names:
            return i
    return None


def _parse_time(text: str) -> dt.datetime:
    """ISO 8601, or the forms spreadsheets and 気象庁 write: 2026/4/5 1:00(:00)."""
    text = unicodedata.normalize("NFKC", text).strip()
    try:
        return dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        pass
    for fmt in ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            pass
    raise ValueError(text)


def read_weather(path: str | Path, tz) -> ChannelData:
    """The outdoor temperature channel (times datetime64[ms] UTC, degC), sorted by time."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a weather file (time,temperature_c)")
    if not path.is_file():
        raise InputError(f"{path}: no such weather file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:                                   # Excel's CSV and 気象庁's download on Japanese Windows
            text = raw.decode("cp932")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 or Shift_JIS text") from None
    try:
        rows = csv.reader(io.StringIO(text, newline=""))
        header = [unicodedata.normalize("NFKC", h).strip().lower() for h in next(rows, [])]
        it, iv = _column(header, _TIME_NAMES), _column(header, _TEMP_NAMES)
        for col, i in (("time", it), ("temperature_c", iv)):
            if i is None:
                raise InputError(f"{path}: line 1: header lacks column {col!r} (expected `time,temperature_c`, "
                                 "or 日時,気温)")
        times, temps = [], []
        for line_no, r in enumerate(rows, start=2):
            if not r or all(not c.strip() for c in r):
                continue
            if len(r) <= max(it, iv):
                raise InputError(f"{path}: line {line_no}: expected {len(header)} fields, got {len(r)}")
            cell = r[it].strip()
            try:
                t = _parse_time(cell)
            except ValueError:
                raise InputError(f"{path}: line {line_no}: field `time`: {cell!r} is not an ISO 8601 time") \
                    from None
            if not 1970 <= t.year <= 2200:       # year 0001 in UTC+9 is before year 1: a traceback
                raise InputError(f"{path}: line {line_no}: field `time`: {cell!r}: year out of range 1970..2200")
            if t.tzinfo is None:
                t = t.replace(tzinfo=tz)
            v = unicodedata.normalize("NFKC", r[iv]).strip()
            if not v:
                continue                     # a missing hour: no reading
            try:
                x = float(v)
            except ValueError:
                raise InputError(f"{path}: line {line_no}: field `temperature_c`: {v!r} is not a number") \
                    from None
            if not math.isfinite(x) or not -90.0 <= x <= 70.0:
                raise InputError(f"{path}: line {line_no}: field `temperature_c`: {v} is not an outdoor "
                                 f"temperature in degC (-90..70)")
            times.append(int(t.timestamp() * 1000))
            temps.append(x)
    except csv.Error as e:
        raise InputError(f"{path}: {e}") from None
    if not times:
        raise InputError(f"{path}: no temperature readings")
    t_ms = np.array(times, np.int64)
    order = np.argsort(t_ms, kind="stable")
    info = ChannelInfo(CHANNEL_ID, "temperature_c", "degC", "outdoor_air")
    return ChannelData(info, t_ms[order].astype("datetime64[ms]"), np.array(temps)[order])
