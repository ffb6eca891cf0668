"""Standby waste: power a breaker draws outside production.

Measure 1 of the audit catalogue ("switch off standby loads: compare weekday
and holiday consumption").  For each power channel we look only at the
samples outside production (nights, weekends, national and company holidays)
and report the typical standby level, the hours it runs and the energy above
the channel's allowance for necessary loads (emergency lighting,
refrigeration).

Breaks between shifts (lunch) count as outside production: switching off
at lunch (昼休み消灯) is part of the same measure.

The typical level is the time-weighted mean outside production over the days
that look normal: a day whose mean outside production is far above the
median day (equipment left on over a holiday, a night that stayed high) is a
baseline_gap finding of its own, so it is left out here and the two findings
do not count the same kWh twice.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .resample import run_sums, runs, wsum

MIN_HOURS_PER_DAY = 2.0     # a day needs this much non-production data to vote
OUTLIER_MADS = 4.0          # a day above median + 4 scaled MADs (and +25%) is an anomaly, not standby


@dataclass
class StandbyResult:
    mean_kw: float              # typical power outside production (mean over normal days)
    mean_kw_all: float          # plain mean over all non-production samples
    hours: float                # measured hours outside production
    energy_kwh: float           # energy outside production (all of it)
    waste_kwh: float            # (mean_kw - allowance) x hours: what switching off would save
    share_of_channel_energy: float
    days: int                   # days that voted
    is_off: bool                # equipment is off outside production (not reported)
    reportable: bool            # on outside production and above its allowance


def standby_profile(power_kw: np.ndarray, dur_s: np.ndarray, production: np.ndarray, local_day: np.ndarray,
                    allowance_kw: float = 0.0, off_kw: float | None = None,
                    idle: np.ndarray | None = None, day_runs: tuple | None = None,
                    w_out: np.ndarray | None = None) -> StandbyResult | None:
    """Standby figures of one channel.

    power_kw, dur_s, production, local_day: per-sample arrays (see `resample.durations_s`
    and `SiteCalendar.classify`).  `off_kw`: below this the equipment counts as off
    (default: 0.5% of the channel's 95th percentile in production, at least 0.01 kW:
    a meter's zero offset, not a load).
    `idle`: the samples that count as standby time (default: all outside production);
    `day_runs`: `resample.runs(local_day)` and `w_out`: dur_s x mask, when the caller
    already has them (channels polled together share them).
    Returns None when there is no data outside production.
    """
    if w_out is None:
        w_out = dur_s * (~production if idle is None else idle)
    starts, _ = day_runs if day_runs is not None else runs(local_day)   # time-sorted: days come in runs
    h_day = run_sums(w_out, starts) / 3600.0
    if not h_day.any():
        return None
    total_kwh = wsum(power_kw, dur_s) / 3600.0
    e_day = run_sums(power_kw * w_out, starts)
    hours = float(h_day.sum())
    energy = float(e_day.sum()) / 3600.0
    voting = h_day >= MIN_HOURS_PER_DAY
    if voting.any():
        m_day = e_day[voting] / 3600.0 / h_day[voting]
        med = float(np.median(m_day))
        mad = 1.4826 * float(np.median(np.abs(m_day - med)))
        normal = m_day <= med + max(OUTLIER_MADS * mad, 0.25 * med)
        mean_kw = float(e_day[voting][normal].sum()) / 3600.0 / float(h_day[voting][normal].sum())
    else:
        mean_kw = energy / hours if hours else 0.0
    if off_kw is None:
        k = max(1, power_kw.size // 50_000)                 # a percentile needs no million samples
        prod = power_kw[::k][production[::k]]
        p95 = float(np.percentile(prod, 95)) if prod.size else float(np.percentile(power_kw[::k], 95))
        off_kw = max(0.005 * p95, 0.01)
    waste = max(mean_kw - allowance_kw, 0.0) * hours
    return StandbyResult(
        mean_kw=mean_kw, mean_kw_all=energy / hours if hours else 0.0, hours=hours, energy_kwh=energy,
        waste_kwh=waste, share_of_channel_energy=energy / total_kwh if total_kwh > 0 else 0.0,
        days=int(voting.sum()), is_off=mean_kw <= off_kw,
        reportable=mean_kw > off_kw and mean_kw - allowance_kw > off_kw,
    )
