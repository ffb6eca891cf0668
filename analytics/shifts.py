"""Production hours read off the load, for a site that did not state its shifts.

Standby is "power outside production", so everything rests on the production
hours.  A recording analysed without `--shift` or `[calendar] shifts` used to
get a Japanese day shift (08:00-12:00, 13:00-17:00): a plant in New York
working 07:00-19:00 then had its evening production called standby, and a
two-shift plant half its output.  When the shifts were not given, they are
read off the site's own hourly profile instead:

- the site's load (the site-total channels, else every non-compressor power
  channel, summed) is averaged per hour of day, separately for workdays and
  Saturdays (Sundays and holidays never produce in the calendar);
- an hour is production when its mean reaches halfway between the site's
  floor (lowest hourly mean, nights and days off) and the peak of its day type
  (a Saturday shift runs lighter than a weekday's);
- consecutive production hours become one shift, so a lunch break that shows
  in the load stays a break and one that does not is worked through.

Nothing is inferred when the load does not swing (peak under 1.5 x floor: a
24/7 or flat load, whose night load is then judged by `base_load`), or when a
day type has too few days to read; the calendar's shifts stay as they were and
the summary says why.
"""
from __future__ import annotations

import numpy as np

PEAK_TO_FLOOR_MIN = 1.5        # the workday peak must be this many times the floor to read shifts
LEVEL = 0.5                    # production from floor + LEVEL x (peak - floor)
MIN_DAYS = 1                   # days of a type needed to read its hours


def hourly_profile(local_hour: np.ndarray, day_type: np.ndarray, kw: np.ndarray,
                   types: tuple[int, ...]) -> np.ndarray:
    """(len(types), 24) mean kW per hour of day for each day type (NaN without data)."""
    out = np.full((len(types), 24), np.nan)
    ok = np.isfinite(kw)
    for i, t in enumerate(types):
        m = ok & (day_type == t)
        if not m.any():
            continue
        s = np.bincount(local_hour[m], weights=kw[m], minlength=24)
        n = np.bincount(local_hour[m], minlength=24)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i] = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    return out


def _ranges(hours: np.ndarray) -> list[str]:
    """Production hours (24 bools) as HH:00-HH:00 ranges."""
    out, h = [], 0
    while h < 24:
        if hours[h]:
            k = h
            while k < 24 and hours[k]:
                k += 1
            out.append(f"{h:02d}:00-{k:02d}:00")
            h = k
        else:
            h += 1
    return out


def infer_shifts(profile: np.ndarray, days: tuple[int, int]) -> tuple[dict[str, list[str]] | None, str]:
    """Shifts from a (2, 24) profile (row 0 workdays, row 1 Saturdays) and the
    number of days of each behind it.  Returns (shifts per weekday or None, why)."""
    work, sat = profile
    if days[0] < MIN_DAYS or np.isnan(work).sum() > 4:
        return None, "too few workdays to read production hours from the load"
    floor = float(np.nanmin(profile))
    peak = float(np.nanmax(work))
    if not np.isfinite(floor) or not np.isfinite(peak) or peak <= 0 or peak < PEAK_TO_FLOOR_MIN * max(floor, 0.0):
        return None, "the load does not swing enough to tell production hours from the rest"
    level = floor + LEVEL * (peak - floor)
    w = _ranges(np.nan_to_num(work, nan=-np.inf) >= level)
    s = []
    sat_peak = float(np.nanmax(sat)) if np.isfinite(sat).any() else float("nan")
    if days[1] >= MIN_DAYS and np.isfinite(sat_peak) and sat_peak >= PEAK_TO_FLOOR_MIN * max(floor, 0.0) \
            and sat_peak > floor:
        # a Saturday shift runs lighter than a weekday's: its own peak sets its level
        s = _ranges(np.nan_to_num(sat, nan=-np.inf) >= floor + LEVEL * (sat_peak - floor))
    shifts = {d: list(w) for d in ("mon", "tue", "wed", "thu", "fri")}
    shifts["sat"], shifts["sun"] = s, []
    return shifts, (f"read off the site's load: hours at or above {level:.1f} kW (halfway between the floor "
                    f"{floor:.1f} kW and the workday peak {peak:.1f} kW)")


def spec(shifts: dict[str, list[str]]) -> str:
    """The shifts as a `--shift` text, e.g. "mon-fri 07:00-19:00; sat 08:00-12:00"."""
    parts = []
    if shifts.get("mon"):
        parts.append("mon-fri " + ",".join(shifts["mon"]))
    if shifts.get("sat"):
        parts.append("sat " + ",".join(shifts["sat"]))
    return "; ".join(parts) or "none"
