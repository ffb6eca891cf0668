"""A day's load profile against its baseline (the dashboard's main chart).

The baseline is the per-slot median of the same day type over the previous
weeks, computed from the store's interval means: robust to the odd anomalous
day, and cheap (a 28 x 96 matrix)."""
from __future__ import annotations

import datetime as dt
import warnings

import numpy as np

from ..calendar import DAY_TYPES
from .timefmt import to_ms


def day_profile(ctx, channel: str, date: dt.date, interval_min: int = 15, weeks: int = 4) -> dict:
    tz = ctx.tz
    slots = 1440 // interval_min
    day0 = dt.datetime.combine(date, dt.time(), tz) - dt.timedelta(days=7 * weeks)
    day1 = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), tz)
    agg = ctx.store.aggregate(channel, to_ms(day0), to_ms(day1), float(interval_min * 60))
    ndays = (date - day0.date()).days + 1
    grid = np.full((ndays, slots), np.nan)
    if len(agg.time):
        lt = ctx.calendar.local(agg.time)
        first_day = (day0.date() - dt.date(1970, 1, 1)).days
        d = lt.day - first_day
        s = lt.minute // interval_min
        ok = (d >= 0) & (d < ndays)
        grid[d[ok], s[ok]] = agg.mean[ok]
    first_day = (day0.date() - dt.date(1970, 1, 1)).days
    types = ctx.calendar.day_types(first_day, first_day + ndays - 1)
    same = np.flatnonzero(types[:-1] == types[-1])
    hist = grid[same]
    has = ~np.isnan(hist).all(axis=1)
    hist = hist[has]
    if len(hist):
        with np.errstate(all="ignore"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                base = np.nanmedian(hist, axis=0)
    else:
        base = np.full(slots, np.nan)
    return {"channel": channel, "date": date.isoformat(), "day_type": DAY_TYPES[int(types[-1])],
            "interval_min": interval_min,
            "slots": [f"{(i * interval_min) // 60:02d}:{(i * interval_min) % 60:02d}" for i in range(slots)],
            "today": _opt(grid[-1]), "baseline": _opt(base), "baseline_days": int(len(hist))}


def _opt(a: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(x) else round(float(x), 4) for x in a]
