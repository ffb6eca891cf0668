"""Mean daily load profiles per day type (workday, Saturday, Sunday/holiday,
company holiday) of a channel over a period, from the store's 15-minute means:
the report's "workdays against holidays" chart and the finding charts."""
from __future__ import annotations

import datetime as dt

import numpy as np

from ..calendar import DAY_TYPES
from ..roles import is_site_total
from ..service.timefmt import to_ms


def day_type_profiles(ctx, channel: str | list[str], start: dt.datetime, end: dt.datetime,
                      interval_min: int = 15) -> dict[str, np.ndarray]:
    """{day type: mean per slot (NaN where no data)} for the day types present.  Several
    channels are summed slot by slot (the site without an incomer: its breakers), with
    their negative readings (generation) left out of the sum."""
    slots = 1440 // interval_min
    t_ms, kw = _summed_means(ctx, [channel] if isinstance(channel, str) else list(channel),
                             to_ms(start), to_ms(end), float(interval_min * 60))
    if len(t_ms) == 0:
        return {}
    lt, day_type, _ = ctx.calendar.classify(t_ms)
    slot = lt.minute // interval_min
    key = day_type.astype(np.int64) * slots + slot
    ok = np.isfinite(kw)
    s = np.bincount(key[ok], weights=kw[ok], minlength=len(DAY_TYPES) * slots)
    n = np.bincount(key[ok], minlength=len(DAY_TYPES) * slots)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (s / n).reshape(len(DAY_TYPES), slots)
    return {DAY_TYPES[k]: _hold_interval_means(mean[k]) for k in range(len(DAY_TYPES))
            if n.reshape(len(DAY_TYPES), slots)[k].any()}


def _summed_means(ctx, channels: list[str], start_ms, end_ms, every_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Interval means of one channel, or of several summed on their common grid (every
    aggregate is aligned on `start`, so equal times are the same interval)."""
    aggs = [ctx.store.aggregate(c, start_ms, end_ms, every_s) for c in channels]
    if len(aggs) == 1:
        return aggs[0].time, aggs[0].mean
    times = np.unique(np.concatenate([a.time for a in aggs])) if aggs else np.array([], "datetime64[ms]")
    total = np.zeros(len(times))
    seen = np.zeros(len(times), bool)
    for a in aggs:
        ok = np.isfinite(a.mean)
        i = np.searchsorted(times, a.time[ok])
        total[i] += np.maximum(a.mean[ok], 0.0)
        seen[i] = True
    return times, np.where(seen, total, np.nan)


MAX_HELD_SLOTS = 3      # 30- and 60-minute data on 15-minute slots; a longer hole stays a hole


def _hold_interval_means(row: np.ndarray) -> np.ndarray:
    """30- or 60-minute interval data leaves every other (or three in four) 15-minute
    slots empty, and a line through isolated points draws nothing: the report's profile
    of an hourly utility export was a blank chart.  An interval's mean holds over the
    slots it covers (it is stamped at its start), for holes of up to MAX_HELD_SLOTS."""
    ok = np.isfinite(row)
    if ok.all() or not ok.any():
        return row
    pos = np.flatnonzero(ok)
    # the data's step in slots (the usual spacing of the values), at most MAX_HELD_SLOTS + 1
    step = min(int(np.median(np.diff(pos))) if pos.size > 1 else 1, MAX_HELD_SLOTS + 1)
    idx = np.maximum.accumulate(np.where(ok, np.arange(row.size), -1))
    run = np.arange(row.size) - idx                 # slots since the last value
    fill = ~ok & (idx >= 0) & (run < step)
    out = row.copy()
    out[fill] = row[idx[fill]]
    return out


def production_slots(ctx, interval_min: int = 15) -> np.ndarray:
    """True for the slots of a workday in production (from the shift table of Monday..Friday union)."""
    same, spill = ctx.calendar._shift_tables
    minutes = (same[:5].any(axis=0) | spill[:5].any(axis=0))
    return minutes.reshape(-1, interval_min).any(axis=1)


def site_power_channels(infos) -> list[str]:
    """The channels whose sum is the site's electricity: the incomer when one is metered,
    else every power channel (the breakers, summed)."""
    power = [i for i in infos.values() if i.quantity == "power_kw"]
    totals = [i.id for i in power if is_site_total(i)]
    return totals[:1] if totals else [i.id for i in power]
