"""ISO 8601 in the site zone, with its offset, everywhere the application speaks time."""
from __future__ import annotations

import datetime as dt

import numpy as np

from ..recording import format_times


_TOD: np.ndarray | None = None      # "HH:MM:SS" for each second of a day, built once (86,400 strings)


def _tod() -> np.ndarray:
    global _TOD
    if _TOD is None:
        _TOD = np.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)], dtype=object)
    return _TOD


def iso_many(times: np.ndarray, tz: str, calendar=None) -> list[str]:
    """datetime64[ms] UTC -> ['2026-04-01T09:00:00+09:00', ...] (vectorised).

    With the site's calendar (zone cached) and whole seconds, strings are put
    together from a table of the day's seconds and one text per date: a day of
    minutes in ~0.3 ms, where numpy's datetime_as_string takes ~1 ms."""
    if len(times) == 0:
        return []
    ms = np.asarray(times).astype("datetime64[ms]").astype(np.int64)
    if calendar is None or (ms % 1000).any():
        return format_times(times, tz).astype(str).tolist()
    off = calendar._offsets_ms(ms)
    sec = (ms + off) // 1000
    day = sec // 86400
    sod = sec - day * 86400
    d0 = int(day.min())
    epoch = dt.date(1970, 1, 1)
    dates = np.array([(epoch + dt.timedelta(days=d)).isoformat() + "T" for d in range(d0, int(day.max()) + 1)],
                     dtype=object)
    uoff = np.unique(off)
    if len(uoff) == 1:
        suffix: object = _suffix(int(uoff[0]))
    else:
        suffix = np.array([_suffix(int(o)) for o in uoff], dtype=object)[np.searchsorted(uoff, off)]
    return (dates[day - d0] + _tod()[sod] + suffix).tolist()


def _suffix(offset_ms: int) -> str:
    mins = offset_ms // 60000
    return f"{'+' if mins >= 0 else '-'}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"


def iso(t: np.datetime64 | dt.datetime | None, tz) -> str | None:
    if t is None:
        return None
    if isinstance(t, np.datetime64):
        ms = int(t.astype("datetime64[ms]").astype(np.int64))
        t = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
    return t.astimezone(tz).isoformat()


def to_ms(t: dt.datetime) -> np.datetime64:
    return np.datetime64(int(round(t.timestamp() * 1000)), "ms")
