"""Compressed-air leaks: the air a system uses when nothing should use air.

Two methods (US DOE practice, field notes):

- flow meter: the flow outside production (nights, weekends, holidays) is leak
  flow, since no process consumes air then;
- leak load method, when only compressor power is metered: with no production
  demand, leakage share = T_load / (T_load + T_unload) and leak flow = share x
  capacity (m3/min free air).  We use the loaded fraction of each sample (see
  `compressor.compressor_states`), which equals T_load/(T_load+T_unload) for
  load/unload machines and extends to 1-minute averages and VSDs.

The typical leak is the median of the daily means outside production (robust
to a night when a process was left blowing air).  Leaks grow between
inspections, so the weekly trend is reported and a clearly growing leak is a
finding of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .resample import run_sums, runs, wsum

MIN_HOURS_PER_DAY = 2.0
GROWTH_MIN_WEEKS = 3
GROWTH_MIN_RELATIVE = 0.15     # growth over the span, relative to the mean, to call it growing
GROWTH_MIN_R2 = 0.6


@dataclass
class LeakTrend:
    week_start_days: list[int]           # local day number of each week's first day
    weekly_m3min: list[float]            # median of the daily leak flows of each week
    slope_m3min_per_week: float
    growth_relative: float               # fitted growth over the span / mean
    r2: float
    growing: bool


@dataclass
class LeakResult:
    method: str                          # "flow_meter" | "leak_load"
    leak_flow_m3min: float
    hours_outside_production: float
    days: int
    trend: LeakTrend | None = None
    extra: dict = field(default_factory=dict)


def daily_means(x: np.ndarray, dur_s: np.ndarray, mask: np.ndarray, local_day: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per local day present in the (time-sorted) data: (time-weighted sum of x in
    x-units x hours, hours) over `mask`, and the day numbers."""
    starts, days = runs(local_day)
    w = dur_s * mask
    return run_sums(x * w, starts) / 3600.0, run_sums(w, starts) / 3600.0, days


def weekly_trend(day_sum: np.ndarray, day_hours: np.ndarray, days: np.ndarray) -> LeakTrend | None:
    """Mean per week (weeks start on the first day of data) and its linear trend."""
    if days.size == 0:
        return None
    d0 = int(days[0])
    wk = (days - d0) // 7
    n_weeks = int(wk[-1]) + 1
    if n_weeks < GROWTH_MIN_WEEKS:
        return None
    # a week's level is the median of its days (a day when production ran on a day off
    # must not look like leak growth); a few dozen weeks, so a loop is fine
    vote = day_hours >= MIN_HOURS_PER_DAY
    with np.errstate(invalid="ignore", divide="ignore"):
        daily = day_sum / day_hours
    xs, ys = [], []
    for w in range(n_weeks):
        d = daily[(wk == w) & vote]
        if d.size >= 2:
            xs.append(w)
            ys.append(float(np.median(d)))
    if len(xs) < GROWTH_MIN_WEEKS:
        return None
    x = np.array(xs, dtype=float)
    y = np.array(ys)
    slope, icpt = np.polyfit(x, y, 1)
    fit = slope * x + icpt
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - fit) ** 2)) / ss_tot if ss_tot > 0 else 0.0
    growth = slope * (x[-1] - x[0]) / y.mean() if y.mean() > 0 else 0.0
    return LeakTrend([d0 + 7 * int(i) for i in x], [float(v) for v in y], float(slope), float(growth), r2,
                     bool(growth >= GROWTH_MIN_RELATIVE and r2 >= GROWTH_MIN_R2 and slope > 0))


def _robust_level(day_sum: np.ndarray, day_hours: np.ndarray) -> tuple[float, int]:
    vote = day_hours >= MIN_HOURS_PER_DAY
    if vote.any():
        return float(np.median(day_sum[vote] / day_hours[vote])), int(vote.sum())
    h = day_hours.sum()
    return (float(day_sum.sum() / h) if h > 0 else 0.0), 0


def leak_from_flow(flow_m3min: np.ndarray, dur_s: np.ndarray, production: np.ndarray,
                   local_day: np.ndarray, idle: np.ndarray | None = None) -> LeakResult | None:
    """Leak flow (m3/min) from an air-flow meter: the flow outside production
    (`idle`: the samples to use, default all outside production)."""
    out = ~production if idle is None else idle
    if not out.any():
        return None
    s, h, day_no = daily_means(flow_m3min, dur_s, out, local_day)
    level, days = _robust_level(s, h)
    w_prod = dur_s * production
    prod_h = float(w_prod.sum()) / 3600.0
    prod_mean = wsum(flow_m3min, w_prod) / 3600.0 / prod_h if prod_h > 0 else 0.0
    return LeakResult("flow_meter", level, float(h.sum()), days, weekly_trend(s, h, day_no),
                      {"production_flow_m3min": prod_mean})


def leak_from_load(loaded_fraction: np.ndarray, dur_s: np.ndarray, idle: np.ndarray,
                   local_day: np.ndarray, capacity_m3_per_min: float) -> LeakResult | None:
    """Leak flow (m3/min) by the leak load method from a compressor's loaded fraction
    over the idle samples (outside production).  A compressor that stops after a
    long unloaded run and restarts on low pressure still feeds the leaks over the
    whole night, so off time counts; a day whose idle time has no loaded sample
    at all (the system was switched off) does not vote."""
    if not idle.any():
        return None
    s, h, day_no = daily_means(loaded_fraction, dur_s, idle, local_day)
    h = np.where(s > 0, h, 0.0)
    if not (h > 0).any():
        return None
    share, days = _robust_level(s, h)
    trend = weekly_trend(s * capacity_m3_per_min, h, day_no)
    return LeakResult("leak_load", share * capacity_m3_per_min, float(h.sum()), days, trend,
                      {"leak_share_of_capacity": share})
