"""Turning irregular meter samples into rates, durations and regular slots.

Meter data is irregular: samples jitter, collectors miss polls, gateways lose
power for hours.  The rules used by every detector:

- a sample holds its value until the next sample (left Riemann sum), but never
  across a gap longer than `max_gap_s`: the sample then counts for one nominal
  step only, so a night without data is neither invented nor integrated;
- counters (kWh, m3) become rates by differencing; a negative step (meter
  reset, rollover) or a step across a long gap yields no rate;
- slots (hours, days) keep the covered seconds beside the energy, so means are
  taken over what was measured, not over the calendar.

All times are int64 milliseconds since the epoch, UTC.
"""
from __future__ import annotations

import numpy as np

MS_PER_S = 1000
MS_PER_HOUR = 3_600_000


def wsum(x: np.ndarray, w: np.ndarray) -> float:
    """sum(x * w) in one pass (einsum: no temporary, no BLAS threads; boolean-mask
    indexing is avoided everywhere for the same reason: it costs ten passes)."""
    return float(np.einsum("i,i->", x, w))


def to_ms(times: np.ndarray) -> np.ndarray:
    """datetime64 (any unit) or int64 ms -> int64 ms since the epoch (UTC)."""
    t = np.asarray(times)
    if np.issubdtype(t.dtype, np.datetime64):
        return t.astype("datetime64[ms]").astype(np.int64)
    return t.astype(np.int64)


def clean_series(t_ms: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop NaN/inf values, sort by time and drop duplicate times (keep the last).
    Clean, sorted input (the usual case) costs three passes and no copies."""
    v = np.asarray(values, dtype=np.float64)
    t = t_ms
    if not np.isfinite(v).all():
        ok = np.isfinite(v)
        t, v = t[ok], v[ok]
    if t.size > 1 and not (np.diff(t) > 0).all():
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        keep = np.empty(t.size, bool)
        keep[:-1] = t[1:] != t[:-1]
        keep[-1] = True
        t, v = t[keep], v[keep]
    return t, v


def nominal_step_s(t_ms: np.ndarray) -> float:
    """The meter's usual sampling step in seconds (median of the differences)."""
    if t_ms.size < 2:
        return 60.0
    d = np.diff(t_ms[: min(t_ms.size, 20_001)])
    return float(np.median(d)) / MS_PER_S


def default_max_gap_s(step_s: float) -> float:
    """Longest hold we trust: 5 nominal steps, at least 2 minutes (poll jitter)."""
    return max(5.0 * step_s, 120.0)


def durations_s(t_ms: np.ndarray, step_s: float | None = None, max_gap_s: float | None = None) -> np.ndarray:
    """Seconds each sample stands for: time to the next sample, or one nominal
    step where that is longer than `max_gap_s` (a gap) and for the last sample."""
    if t_ms.size == 0:
        return np.empty(0)
    step = nominal_step_s(t_ms) if step_s is None else step_s
    gap = default_max_gap_s(step) if max_gap_s is None else max_gap_s
    d = np.empty(t_ms.size)
    np.subtract(t_ms[1:], t_ms[:-1], out=d[:-1])
    d[:-1] *= 1.0 / MS_PER_S
    d[-1] = step
    d[d > gap] = step
    return d


def counter_to_rate(t_ms: np.ndarray, counter: np.ndarray, per_s: float = 3600.0,
                    max_gap_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A running total -> mean rate over each interval, stamped at the interval
    start.  `per_s` = 3600 turns kWh into kW, 60 turns m3 into m3/min.
    Intervals with a negative step (reset) or longer than `max_gap_s` are dropped."""
    if t_ms.size < 2:
        return np.empty(0, np.int64), np.empty(0)
    dt_s = np.diff(t_ms) / MS_PER_S
    dv = np.diff(counter)
    step = float(np.median(dt_s))
    gap = default_max_gap_s(step) if max_gap_s is None else max_gap_s
    ok = (dv >= 0) & (dt_s > 0) & (dt_s <= gap)
    return t_ms[:-1][ok], dv[ok] / dt_s[ok] * per_s


def runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and key of each run of equal keys in a sorted key array (local
    days, hours): sums per run are then one `np.add.reduceat`, much cheaper than
    a weighted bincount."""
    if keys.size == 0:
        return np.empty(0, np.int64), keys[:0]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return starts, keys[starts]


def run_sums(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum of x over each run (see `runs`)."""
    return np.add.reduceat(x, starts) if starts.size else np.empty(0)


def slot_sums(t_ms: np.ndarray, rate: np.ndarray, dur_s: np.ndarray, slot_ms: int,
              t0_ms: int, n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Integral of `rate` (per hour: kW -> kWh) and covered seconds per regular slot
    [t0 + k*slot, t0 + (k+1)*slot).  A sample's whole duration goes to the slot
    it starts in, exact when samples do not straddle slot edges (1-s, 1-min,
    15-min data on hourly slots)."""
    k = (t_ms - t0_ms) // slot_ms
    inside = (k >= 0) & (k < n_slots)
    if not inside.all():
        k, rate, dur_s = k[inside], rate[inside], dur_s[inside]
    covered = np.zeros(n_slots)
    integral = np.zeros(n_slots)
    if k.size and np.all(k[1:] >= k[:-1]):        # time-sorted: sums over runs
        starts, keys = runs(k)
        covered[keys] = run_sums(dur_s, starts)
        integral[keys] = run_sums(rate * dur_s, starts) / 3600.0
    elif k.size:
        covered = np.bincount(k, weights=dur_s, minlength=n_slots)
        integral = np.bincount(k, weights=rate * dur_s, minlength=n_slots) / 3600.0
    return integral, covered


def hourly_mean(t_ms: np.ndarray, rate: np.ndarray, dur_s: np.ndarray, t0_ms: int, n_hours: int,
                min_coverage: float = 0.5) -> np.ndarray:
    """Mean rate per UTC hour (NaN where less than `min_coverage` of the hour was measured)."""
    integral, covered = slot_sums(t_ms, rate, dur_s, MS_PER_HOUR, t0_ms, n_hours)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = integral * 3600.0 / covered
    mean[covered < min_coverage * 3600.0] = np.nan
    return mean


def idle_mask(calendar, local_minute: np.ndarray, weekday: np.ndarray, day_type: np.ndarray,
              production: np.ndarray) -> np.ndarray:
    """Outside production and not a break between two shifts of a working day
    (nights, weekends, holidays): the time when only standby loads should run."""
    from mieruka.calendar import SATURDAY, WORKDAY, _minutes
    from mieruka.site import WEEKDAYS

    first = np.full(7, 1440, np.int64)
    last = np.full(7, -1, np.int64)
    for wd, name in enumerate(WEEKDAYS):
        for r in calendar.shifts.get(name, []):
            a, b = (_minutes(x) for x in r.split("-"))
            first[wd] = min(first[wd], a)
            last[wd] = max(last[wd], b if b > a else 1440)
    works = (day_type == WORKDAY) | (day_type == SATURDAY)
    brk = works & (local_minute >= first[weekday]) & (local_minute < last[weekday])
    return ~production & ~brk
