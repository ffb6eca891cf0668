"""Outdoor temperature from a CSV file: `time,temperature_c` (`mieruka analyze --weather`).

`time` is ISO 8601; without a UTC offset it is site time (`tz`).  Any other
columns are ignored, so a weather service's export works once its columns are
named.  Bad input ends with one line naming the file, line and field.
"""
from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np

from .errors import InputError
from .models import ChannelData, ChannelInfo

CHANNEL_ID = "outdoor_air"


def read_weather(path: str | Path, tz) -> ChannelData:
    """The outdoor temperature channel (times datetime64[ms] UTC, degC), sorted by time."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such weather file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = csv.reader(f)
            header = [h.strip().lower() for h in next(rows, [])]
            for col in ("time", "temperature_c"):
                if col not in header:
                    raise InputError(f"{path}: line 1: header lacks column {col!r} (expected `time,temperature_c`)")
            it, iv = header.index("time"), header.index("temperature_c")
            times, temps = [], []
            for line_no, r in enumerate(rows, start=2):
                if not r or all(not c.strip() for c in r):
                    continue
                if len(r) <= max(it, iv):
                    raise InputError(f"{path}: line {line_no}: expected {len(header)} fields, got {len(r)}")
                text = r[it].strip()
                try:
                    t = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
                except ValueError:
                    raise InputError(f"{path}: line {line_no}: field `time`: {text!r} is not an ISO 8601 time") \
                        from None
                if t.tzinfo is None:
                    t = t.replace(tzinfo=tz)
                v = r[iv].strip()
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
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as e:
        raise InputError(f"{path}: {e}") from None
    if not times:
        raise InputError(f"{path}: no temperature readings")
    t_ms = np.array(times, np.int64)
    order = np.argsort(t_ms, kind="stable")
    info = ChannelInfo(CHANNEL_ID, "temperature_c", "degC", "outdoor_air")
    return ChannelData(info, t_ms[order].astype("datetime64[ms]"), np.array(temps)[order])
