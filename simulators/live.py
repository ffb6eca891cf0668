"""The simulated factory running against the wall clock (for the live Modbus server).

Simulated time = start + (monotonic now − start) × speed.  Values come from the
same :class:`~simulators.engine.Factory` as recordings, computed in short
vectorised chunks ahead of the clock; counters keep integrating across chunks.
"""
from __future__ import annotations

import datetime as dt
import time

import numpy as np

from mieruka.calendar import SiteCalendar

from .engine import Factory, resolve_events
from .scenario import FaultSpec, Scenario

AHEAD_SAMPLES = 30
MAX_GAP_SAMPLES = 200_000


def to_ms(t: dt.datetime, tz) -> int:
    """A scenario datetime (naive = site local time) as UTC milliseconds."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    return int(t.timestamp() * 1000)


class LiveFactory:
    def __init__(self, scenario: Scenario, calendar: SiteCalendar, seed: int = 0, speed: float = 1.0,
                 start: dt.datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self.step_s = max(1.0, speed / 2)     # sample grid of the model in simulated seconds
        self.cal = calendar
        self.start_ms = to_ms(start, calendar.tz) if start else int(time.time() * 1000)
        self._mono0 = time.monotonic()
        events = resolve_events(scenario, calendar, self.start_ms - 86_400_000, self.start_ms + 400 * 86_400_000, seed)
        self.factory = Factory(scenario, seed, calendar, events, origin_ms=self.start_ms)
        step_ms = int(self.step_s * 1000)
        self._next_ms = self.start_ms - self.start_ms % step_ms
        self._t0 = self._next_ms
        self._values: dict[str, np.ndarray] = {}
        self._n = 0
        self.key: tuple[int, int] | None = None      # identifies the sample the last values_at returned
        self._cached: dict[str, float] = {}

    def now_ms(self) -> int:
        return self.start_ms + int((time.monotonic() - self._mono0) * self.speed * 1000)

    def values_at(self, t_ms: int | None = None) -> dict[str, float]:
        """Every channel's value at simulated time t (default: now)."""
        t = self.now_ms() if t_ms is None else t_ms
        step_ms = int(self.step_s * 1000)
        if t >= self._next_ms:
            self._advance(t, step_ms)
        i = min(max((t - self._t0) // step_ms, 0), self._n - 1)
        if (self._t0, i) != self.key:     # many reads fall in one sample: build its dict once
            self.key = (self._t0, i)
            self._cached = {k: float(v[i]) for k, v in self._values.items()}
        return self._cached

    def _advance(self, t: int, step_ms: int) -> None:
        gap = (t - self._next_ms) // step_ms
        if gap > MAX_GAP_SAMPLES:
            # idle for a long time: integrate the gap coarsely so counters stay continuous
            coarse = int(np.ceil((t - self._next_ms) / MAX_GAP_SAMPLES / step_ms)) * step_ms
            times = np.arange(self._next_ms, t - step_ms, coarse, dtype=np.int64)
            self.factory.run(times, coarse / 1000)
            self._next_ms = int(times[-1] + coarse)
        times = np.arange(self._next_ms, t + AHEAD_SAMPLES * step_ms, step_ms, dtype=np.int64)
        chunk = self.factory.run(times, self.step_s)
        self._values = chunk.values
        self._t0 = int(times[0])
        self._n = len(times)
        self._next_ms = int(times[-1] + step_ms)


class LiveFaults:
    """Faults active at a simulated instant, per meter (no window: always)."""

    def __init__(self, faults: list[FaultSpec], tz) -> None:
        self.tz = tz
        self.by_meter: dict[str, list[tuple[FaultSpec, int, int]]] = {}
        for f in faults:
            self.add(f)

    def add(self, f: FaultSpec) -> None:
        a = to_ms(f.start, self.tz) if f.start else -(1 << 62)
        b = to_ms(f.end, self.tz) if f.end else 1 << 62
        self.by_meter.setdefault(f.meter, []).append((f, a, b))

    def active(self, meter_id: str, t_ms: int) -> list[FaultSpec]:
        return [f for f, a, b in self.by_meter.get(meter_id, ()) if a <= t_ms < b]
