"""Electrical loads over time: breakers, lighting and air conditioning, with noise.

Pure vectorised functions of a :class:`DayPhase` (what part of the production
day each sample falls in); levels are mean kW of the sample interval.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from mieruka.calendar import SATURDAY, WORKDAY, SiteCalendar, _minutes

from .scenario import LoadSpec, ScenarioSection


@dataclass
class DayPhase:
    """Per-sample calendar facts (all arrays of the sample count)."""

    day: np.ndarray          # local day number
    minute: np.ndarray       # local minute of day
    weekday: np.ndarray      # 0 = Monday
    day_of_year: np.ndarray  # 0..365
    day_type: np.ndarray     # mieruka.calendar DAY_TYPES code
    production: np.ndarray   # bool: inside a shift on a working day
    lunch: np.ndarray        # bool: a break between shifts of a working day


def shift_span_tables(cal: SiteCalendar) -> tuple[np.ndarray, np.ndarray]:
    """First shift start and last shift end (minutes) per weekday; -1 where no shift.
    Shifts crossing midnight count as ending at 24:00 (their spill is production anyway)."""
    first = np.full(7, -1, np.int64)
    last = np.full(7, -1, np.int64)
    for wd, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun")):
        rs = cal.shifts.get(name, [])
        if rs:
            starts = [_minutes(r.split("-")[0]) for r in rs]
            ends = [_minutes(r.split("-")[1]) if _minutes(r.split("-")[1]) > _minutes(r.split("-")[0]) else 1440
                    for r in rs]
            first[wd], last[wd] = min(starts), max(ends)
    return first, last


def day_phase(cal: SiteCalendar, t_ms: np.ndarray) -> DayPhase:
    lt, day_type, production = cal.classify(t_ms.astype("datetime64[ms]"))
    first, last = shift_span_tables(cal)
    works = np.isin(day_type, (WORKDAY, SATURDAY))
    lunch = works & ~production & (lt.minute >= first[lt.weekday]) & (lt.minute < last[lt.weekday]) & \
        (first[lt.weekday] >= 0)
    # day of year from the local day number (days since 1970-01-01)
    years = lt.day.astype("datetime64[D]").astype("datetime64[Y]")
    doy = (lt.day.astype("datetime64[D]") - years.astype("datetime64[D]")).astype(np.int64)
    return DayPhase(lt.day, lt.minute, lt.weekday, doy, day_type, production, lunch)


def outdoor_temp_c(ph: DayPhase, sec: ScenarioSection) -> np.ndarray:
    """Outdoor temperature: seasonal cosine (warmest early August) plus a daily cosine (warmest 14:00)."""
    season = np.cos(2 * np.pi * (ph.day_of_year - 215) / 365.0)
    daily = np.cos(2 * np.pi * (ph.minute - 14 * 60) / 1440.0)
    out = sec.outdoor_temp_mean_c + sec.outdoor_temp_season_c * season + sec.outdoor_temp_daily_c * daily
    if sec.outdoor_temp_weather_c:
        out = out + sec.outdoor_temp_weather_c * weather_anomaly(ph.day)
    return out


def weather_anomaly(local_day: np.ndarray) -> np.ndarray:
    """A day's weather departure from the season, about -1.5..1.5 (std ~0.7): three
    incommensurate cycles of 3-13 days, so fronts and heat waves last a few days,
    the same for every chunk and every run (a function of the day alone)."""
    d = np.asarray(local_day, dtype=np.float64)
    return (np.sin(2 * np.pi * d / 12.7 + 0.3) + 0.7 * np.sin(2 * np.pi * d / 5.3 + 1.1)
            + 0.5 * np.sin(2 * np.pi * d / 3.1 + 2.0)) / 1.4


def production_scale(ph: DayPhase, sec: ScenarioSection, origin_day: int) -> np.ndarray | None:
    """Relative level of production loads: slow drift from the first day plus a
    seasonal swing (None when neither is set)."""
    if not (sec.production_drift_per_year or sec.production_season):
        return None
    years = (ph.day - origin_day) / 365.0
    season = np.cos(2 * np.pi * (ph.day_of_year - sec.production_peak_day_of_year) / 365.0)
    return 1.0 + sec.production_drift_per_year * years + sec.production_season * season


def lunch_kw(spec: LoadSpec) -> float:
    if spec.lunch_kw is not None:
        return spec.lunch_kw
    if spec.kind == "hvac":
        return spec.production_kw
    return spec.standby_kw + 0.3 * (spec.production_kw - spec.standby_kw)


def load_level_kw(spec: LoadSpec, production: np.ndarray, lunch: np.ndarray,
                  temp_c: np.ndarray | None = None, prod_scale: np.ndarray | None = None) -> np.ndarray:
    """Noise-free mean power of a load for each sample (kW).  `prod_scale`: relative
    level of production loads (drift, season), applied to breakers in production."""
    if spec.kind == "constant":
        level = np.full(production.shape, spec.production_kw)
        if temp_c is not None and spec.cooling_kw_per_degc:
            level = level + spec.cooling_kw_per_degc * np.maximum(temp_c - spec.balance_c, 0.0)
        return level
    prod_kw = spec.production_kw if prod_scale is None or spec.kind != "breaker" else spec.production_kw * prod_scale
    level = np.where(production, prod_kw, np.where(lunch, lunch_kw(spec), spec.standby_kw))
    if spec.kind == "chiller" and temp_c is not None and spec.cooling_kw_per_degc:
        level = level + np.where(production | lunch,
                                 spec.cooling_kw_per_degc * np.maximum(temp_c - spec.balance_c, 0.0), 0.0)
    if spec.kind == "hvac" and temp_c is not None and spec.hvac_kw_per_degc:
        # cooling or heating load while the air conditioning runs (production and lunch)
        level = level + np.where(production | lunch, spec.hvac_kw_per_degc * np.abs(temp_c - spec.comfort_c), 0.0)
    return level


def noise_factor(rng: np.random.Generator, n: int, rel: float, step_s: float, smoothing_s: float,
                 state: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Multiplicative noise 1 + rel * (white + slow AR(1)) with unit-variance parts;
    the AR state is carried between chunks.  Returns (factor, new state)."""
    # float32 draws: half the cost, and noise needs no more precision
    white = rng.standard_normal(n, dtype=np.float32)
    slow_e = rng.standard_normal(n, dtype=np.float32)
    if rel == 0 or n == 0:
        return np.ones(n), (state if state is not None else np.zeros(1))
    a = float(np.exp(-step_s / smoothing_s)) if smoothing_s > 0 else 0.0
    zi = np.array([a * (state[0] if state is not None else rng.standard_normal())])
    slow, _ = lfilter([np.sqrt(1 - a * a)], [1.0, -a], slow_e, zi=zi)
    mix = white * np.float32(0.6 * rel) + slow.astype(np.float32) * np.float32(0.8 * rel)   # std = rel
    mix += np.float32(1.0)
    np.maximum(mix, 0.0, out=mix)
    return mix.astype(np.float64), slow[-1:].astype(np.float64)
