"""Standby waste: power a breaker draws outside production.

Measure 1 of the audit catalogue ("switch off standby loads: compare weekday
and holiday consumption").  For each power channel we look only at the
samples outside production (nights, weekends, national and company holidays)
and report the typical standby level, the hours it runs and the energy above
the channel's allowance for necessary loads (emergency lighting,
refrigeration).

The typical level is the median of the daily mean outside production, so a
machine left on over one holiday (a baseline_gap finding of its own) does not
inflate the standby figure and the two findings do not count the same kWh
twice.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_HOURS_PER_DAY = 2.0     # a day needs this much non-production data to vote


@dataclass
class StandbyResult:
    mean_kw: float              # typical power outside production (median of daily means)
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
                    idle: np.ndarray | None = None) -> StandbyResult | None:
    """Standby figures of one channel.

    power_kw, dur_s, production, local_day: per-sample arrays (see `resample.durations_s`
    and `SiteCalendar.classify`).  `off_kw`: below this the equipment counts as off
    (default: 2% of the channel's 95th percentile in production, at least 0.02 kW).
    `idle`: the samples that count as standby time (default: all outside production);
    the pipeline leaves out breaks between shifts (lunch), which are not standby.
    Returns None when there is no data outside production.
    """
    out = ~production if idle is None else idle
    if not out.any():
        return None
    e_s = power_kw * dur_s                                   # kW·s per sample
    total_kwh = float(e_s.sum()) / 3600.0
    d0 = int(local_day.min())
    day = local_day[out] - d0
    e_day = np.bincount(day, weights=e_s[out])
    h_day = np.bincount(day, weights=dur_s[out]) / 3600.0
    hours = float(h_day.sum())
    energy = float(e_day.sum()) / 3600.0
    voting = h_day >= MIN_HOURS_PER_DAY
    if voting.any():
        mean_kw = float(np.median(e_day[voting] / 3600.0 / h_day[voting]))
    else:
        mean_kw = energy / hours if hours else 0.0
    if off_kw is None:
        prod = power_kw[production]
        p95 = float(np.percentile(prod, 95)) if prod.size else float(np.percentile(power_kw, 95))
        off_kw = max(0.02 * p95, 0.02)
    waste = max(mean_kw - allowance_kw, 0.0) * hours
    return StandbyResult(
        mean_kw=mean_kw, mean_kw_all=energy / hours if hours else 0.0, hours=hours, energy_kwh=energy,
        waste_kwh=waste, share_of_channel_energy=energy / total_kwh if total_kwh > 0 else 0.0,
        days=int(voting.sum()), is_off=mean_kw <= off_kw,
        reportable=mean_kw > off_kw and mean_kw - allowance_kw > off_kw,
    )
