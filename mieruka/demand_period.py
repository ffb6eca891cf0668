"""The demand period on the site's clock and the live current period (デマンド時限).

A demand period is [start, start + period_min) aligned to multiples of
`period_min` on the *site's* local clock (:00/:30 for 30 minutes), so a zone with
a non-hour offset or with DST gets the periods its utility meter shows.

This is the small pure part of demand that both the collector (the live current
period, its prediction and alarm stage) and the analytics (demand over a range)
need; it sits in the core so that neither imports the other.  Pure: no I/O.
All times are int64 milliseconds since the epoch, UTC.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import asdict, dataclass

import numpy as np

MS_PER_S = 1000
MS_PER_MIN = 60_000
_TZ_PROBE_MS = 15 * MS_PER_MIN           # UTC offsets change on quarter hours in every zone


# ----------------------------------------------------------------------- the period grid
def _offsets_table(t0_ms: int, t1_ms: int, tz: zoneinfo.ZoneInfo) -> tuple[int, np.ndarray]:
    """UTC offsets (ms) of `tz` on a 15-minute UTC grid covering [t0, t1]: (grid start, table).
    Probed once a day; only days whose offset changes are probed every 15 minutes
    (two a year in DST zones), so a century costs a few thousand probes."""
    g0 = t0_ms // _TZ_PROBE_MS * _TZ_PROBE_MS
    n = (t1_ms - g0) // _TZ_PROBE_MS + 1
    per_day = 86_400_000 // _TZ_PROBE_MS
    days = np.arange(g0, g0 + n * _TZ_PROBE_MS + 86_400_000, 86_400_000, dtype=np.int64)
    off_d = np.array([_offset_ms(int(d), tz) for d in days], np.int64)
    table = np.repeat(off_d, per_day)[:n]
    for i in np.flatnonzero(np.diff(off_d)):
        for q in range(per_day):
            k = i * per_day + q
            if k < n:
                table[k] = _offset_ms(g0 + k * _TZ_PROBE_MS, tz)
    return g0, table


def _offset_ms(t_ms: int, tz: zoneinfo.ZoneInfo) -> int:
    return int(dt.datetime.fromtimestamp(t_ms / 1000, tz).utcoffset().total_seconds() * 1000)


def period_start_ms(t_ms: np.ndarray, tz: str | zoneinfo.ZoneInfo, period_min: int = 30) -> np.ndarray:
    """UTC start (ms) of the demand period each time falls in, periods being aligned
    to multiples of `period_min` on the site's local clock."""
    return _period_starts(t_ms, tz, period_min)[0]


def _period_starts(t_ms: np.ndarray, tz: str | zoneinfo.ZoneInfo, period_min: int) -> tuple[np.ndarray, bool]:
    """(period starts, True when they all lie on one regular UTC grid)."""
    tz = zoneinfo.ZoneInfo(tz) if isinstance(tz, str) else tz
    t = np.asarray(t_ms, np.int64)
    if t.size == 0:
        return t.copy(), True
    p = period_min * MS_PER_MIN
    g0, table = _offsets_table(int(t.min()), int(t.max()), tz)
    shifts = np.unique(table % p)
    if shifts.size == 1:                              # the usual case: a regular grid, arithmetic only
        s = int(shifts[0])
        out = t + s
        out //= p
        out *= p
        out -= s
        return out, True
    shift = table[(t - g0) // _TZ_PROBE_MS] % p
    return (t + shift) // p * p - shift, False


def period_bounds(t_ms: int, tz: str | zoneinfo.ZoneInfo, period_min: int = 30) -> tuple[int, int]:
    """[start, end) in UTC ms of the demand period that contains instant `t_ms` (live use)."""
    s = int(period_start_ms(np.array([t_ms], np.int64), tz, period_min)[0])
    return s, s + period_min * MS_PER_MIN


# --------------------------------------------------------------------- live prediction
def predict_end_kw(energy_kwh_so_far: float, present_kw: float, elapsed_s: float, period_s: float = 1800.0) -> float:
    """Predicted demand at the end of the period: energy so far plus the present load
    held for the time left, over the period's length (what demand monitors show)."""
    left_s = min(max(period_s - elapsed_s, 0.0), period_s)
    return (energy_kwh_so_far + max(present_kw, 0.0) * left_s / 3600.0) * 3600.0 / period_s


def alarm_stage(predicted_kw: float, target_kw: float | None, stages: tuple[float, ...] | list[float] = (0.8, 0.9, 1.0)
                ) -> int:
    """0 when below every stage, else the number of stages (fractions of the target,
    ascending) the prediction has reached: 1 = first warning ... len(stages) = over."""
    if not target_kw or not np.isfinite(predicted_kw):
        return 0
    return int(np.searchsorted(np.asarray(sorted(stages)) * target_kw, predicted_kw, side="right"))


@dataclass
class LiveDemand:
    """The current period as a demand monitor shows it."""

    period_start_ms: int
    period_end_ms: int
    elapsed_s: float
    energy_kwh: float              # so far in this period
    present_kw: float
    predicted_kw: float            # at the period's end, if the present load holds
    stage: int                     # 0 = below every alarm stage
    target_kw: float | None

    def to_dict(self) -> dict:
        return asdict(self)


class PeriodTracker:
    """Keeps the current demand period from live readings (a collector feeds it every
    poll): energy so far from the counter's rise, or from power held since the last
    reading; at a period edge the finished period comes back (`update` returns it).
    O(1) per reading; a counter step down (reset) counts nothing for that step."""

    def __init__(self, tz: str, period_min: int = 30, target_kw: float | None = None,
                 stages: tuple[float, ...] | list[float] = (0.8, 0.9, 1.0), max_gap_s: float = 120.0) -> None:
        self.tz, self.period_min, self.target_kw, self.stages = tz, period_min, target_kw, tuple(stages)
        self.max_gap_ms = int(max_gap_s * MS_PER_S)
        self.start_ms: int | None = None
        self.end_ms: int | None = None
        self.energy_kwh = 0.0
        self.covered_ms = 0
        self.present_kw = 0.0
        self._last_t: int | None = None
        self._last_counter: float | None = None

    def update(self, t_ms: int, kw: float | None = None, counter_kwh: float | None = None
               ) -> tuple[int, float, float] | None:
        """Feed one reading (power, counter or both); returns (start ms, kW, coverage)
        of a period that has just ended, else None."""
        done = None
        if self.start_ms is None:
            self.start_ms, self.end_ms = period_bounds(t_ms, self.tz, self.period_min)
        elif t_ms >= self.end_ms:
            # the step that crosses the edge is split by time (power held / counter linear)
            step = self._step_kwh(t_ms, kw, counter_kwh)
            last = self._last_t if self._last_t is not None else t_ms
            span = max(t_ms - last, 1)
            before = max(min(self.end_ms, t_ms) - last, 0)
            if step is not None and t_ms - last <= self.max_gap_ms:
                self.energy_kwh += step * before / span
                self.covered_ms += before
            p_s = self.period_min * 60.0
            done = (self.start_ms, self.energy_kwh * 3600.0 / p_s, min(self.covered_ms / (p_s * 1000), 1.0))
            self.start_ms, self.end_ms = period_bounds(t_ms, self.tz, self.period_min)
            self.energy_kwh, self.covered_ms = 0.0, 0
            if step is not None and t_ms - last <= self.max_gap_ms and last >= self.start_ms - span:
                after = t_ms - max(last, self.start_ms)
                if after > 0:
                    self.energy_kwh += step * after / span
                    self.covered_ms += after
            self._remember(t_ms, kw, counter_kwh)
            return done
        step = self._step_kwh(t_ms, kw, counter_kwh)
        if step is not None and self._last_t is not None and t_ms - self._last_t <= self.max_gap_ms:
            self.energy_kwh += step
            self.covered_ms += t_ms - self._last_t
        self._remember(t_ms, kw, counter_kwh)
        return done

    def _step_kwh(self, t_ms: int, kw: float | None, counter_kwh: float | None) -> float | None:
        if self._last_t is None or t_ms <= self._last_t:
            return None
        if counter_kwh is not None and self._last_counter is not None:
            d = counter_kwh - self._last_counter
            return d if d >= 0 else None
        return self.present_kw * (t_ms - self._last_t) / 3_600_000.0

    def _remember(self, t_ms: int, kw: float | None, counter_kwh: float | None) -> None:
        self._last_t = t_ms
        if kw is not None and np.isfinite(kw):
            self.present_kw = float(kw)
        if counter_kwh is not None and np.isfinite(counter_kwh):
            self._last_counter = float(counter_kwh)

    def status(self, now_ms: int | None = None) -> LiveDemand | None:
        """The current period, the prediction and the alarm stage."""
        if self.start_ms is None:
            return None
        now = self._last_t if now_ms is None else now_ms
        elapsed = max((now - self.start_ms) / 1000.0, 0.0)
        pred = predict_end_kw(self.energy_kwh, self.present_kw, elapsed, self.period_min * 60.0)
        return LiveDemand(self.start_ms, self.end_ms, elapsed, self.energy_kwh, self.present_kw, pred,
                          alarm_stage(pred, self.target_kw, self.stages), self.target_kw)
