"""The simulated factory: turns a scenario into channel values over a time grid.

`Factory.run(t_ms, step_s)` computes one chunk of samples for every channel
(vectorised) and carries its state (noise, counters, compressor cycle count) to
the next chunk, so the live Modbus server and the recording writer share one
model: the server asks for short chunks as wall time advances, the recording
asks for weeks at once.  Rates are means over [t, t + step); counters and
pressure are values at the sample.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from mieruka.calendar import COMPANY_HOLIDAY, SATURDAY, SUNDAY_HOLIDAY, WORKDAY, SiteCalendar

from .compressor import CompressorOut, CompressorState, run_compressor
from .loads import (DayPhase, day_phase, load_level_kw, noise_factor, outdoor_temp_c, production_scale,
                    shift_span_tables)
from .scenario import LoadSpec, Scenario

MS_PER_DAY = 86_400_000


@dataclass
class Event:
    """An injected event resolved to a local day."""

    kind: str
    day: int                     # local day number
    channel: str | None = None
    system: str | None = None
    level: float = 1.0
    growth_m3min_per_week: float = 0.0


@dataclass
class Chunk:
    """One computed chunk: channel values plus what the ground truth needs."""

    t_ms: np.ndarray
    values: dict[str, np.ndarray]
    phase: DayPhase
    event_excess_kw: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)  # (event idx, channel) -> kW
    event_mask: dict[str, np.ndarray] = field(default_factory=dict)     # channel -> samples changed by an event
    compressors: dict[str, CompressorOut] = field(default_factory=dict)
    leak_m3min: dict[str, np.ndarray] = field(default_factory=dict)


class Factory:
    def __init__(self, scenario: Scenario, seed: int = 0, calendar: SiteCalendar | None = None,
                 events: list[Event] | None = None, origin_ms: int | None = None) -> None:
        self.sc = scenario
        self.cal = calendar or SiteCalendar.from_section(scenario.calendar, scenario.scenario.timezone)
        self.rng = np.random.default_rng(seed)
        self.events = events or []
        self.origin_ms = origin_ms        # leak growth counts weeks from here (first chunk if None)
        self._noise: dict[str, np.ndarray | None] = {}
        self._counters: dict[str, float] = {}
        self._comp: dict[str, CompressorState] = {c.system: CompressorState() for c in scenario.compressors}
        self._first, self._last = shift_span_tables(self.cal)

    # ------------------------------------------------------------------ helpers
    def _noisy(self, key: str, n: int, rel: float, step_s: float) -> np.ndarray:
        f, st = noise_factor(self.rng, n, rel, step_s, self.sc.scenario.noise_smoothing_s, self._noise.get(key))
        self._noise[key] = st
        return f

    def _counter(self, key: str, start: float, rate_per_h: np.ndarray, step_s: float) -> np.ndarray:
        """Counter value at each sample start, integrating a rate (per hour) over the samples."""
        c0 = self._counters.get(key, start)
        inc = rate_per_h * (step_s / 3600.0)
        cum = np.cumsum(inc)
        self._counters[key] = c0 + (float(cum[-1]) if len(cum) else 0.0)
        return c0 + cum - inc

    def _workday_as(self, ph: DayPhase, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Production and lunch masks as if `days` samples were a Monday's shifts (holiday runs)."""
        cal = self.cal
        same, _ = cal._shift_tables
        prod = same[0, ph.minute]
        lunch = ~prod & (ph.minute >= self._first[0]) & (ph.minute < self._last[0]) & (self._first[0] >= 0)
        return np.where(days, prod, ph.production), np.where(days, lunch, ph.lunch)

    # ---------------------------------------------------------------------- run
    def run(self, t_ms: np.ndarray, step_s: float) -> Chunk:
        t_ms = np.asarray(t_ms, np.int64)
        n = len(t_ms)
        if self.origin_ms is None and n:
            self.origin_ms = int(t_ms[0])
        ph = day_phase(self.cal, t_ms)
        temp = outdoor_temp_c(ph, self.sc.scenario)
        scale = production_scale(ph, self.sc.scenario, int(self.origin_ms // 86_400_000))
        out = Chunk(t_ms, {}, ph)
        if self.sc.scenario.outdoor_temp_channel:
            out.values[self.sc.scenario.outdoor_temp_channel] = temp
        ev_days = {e.day for e in self.events}
        in_events = np.isin(ph.day, list(ev_days)) if ev_days else np.zeros(n, bool)

        # holiday runs: the whole factory follows a workday's shifts that day
        run_days = np.zeros(n, bool)
        for e in self.events:
            if e.kind == "holiday_run":
                run_days |= ph.day == e.day
        prod_ev, lunch_ev = self._workday_as(ph, run_days) if run_days.any() else (ph.production, ph.lunch)

        total = np.zeros(n)
        for ld in self.sc.loads:
            rel = self.sc.scenario.noise if ld.noise is None else ld.noise
            nf = self._noisy(ld.channel, n, rel, step_s)
            normal = load_level_kw(ld, ph.production, ph.lunch, temp, scale)
            level = normal
            if in_events.any():
                level = load_level_kw(ld, prod_ev, lunch_ev, temp, scale)
                for i, e in enumerate(self.events):
                    m = self._event_mask(e, ld, ph)
                    if m is None:
                        continue
                    level = np.where(m, np.maximum(level, e.level * ld.production_kw), level)
                changed = level != normal
                if changed.any():
                    out.event_mask[ld.channel] = changed
                    self._attribute(out, ld.channel, ph, (level - normal) * nf)
            p = level * nf + self._peak_kw(ld.channel, t_ms)
            out.values[ld.channel] = p
            total += p
            if ld.energy_channel:
                out.values[ld.energy_channel] = self._wrap(
                    self._counter(ld.energy_channel, ld.counter_start_kwh, p, step_s), ld.counter_wrap_kwh)

        for c in self.sc.compressors:
            self._run_compressor(c, out, ph, prod_ev, lunch_ev, run_days, step_s)
            total += out.values[c.power_channel]

        m = self.sc.main
        if m:
            nf = self._noisy(m.channel, n, self.sc.scenario.noise, step_s)
            unm = np.where(ph.production, m.unmetered_production_kw, m.unmetered_standby_kw)
            unm_ev = np.where(prod_ev, m.unmetered_production_kw, m.unmetered_standby_kw)
            if run_days.any():
                self._attribute(out, m.channel, ph, (unm_ev - unm) * nf, kinds=("holiday_run",))
            p = total + unm_ev * nf + self._peak_kw(None, t_ms)
            out.values[m.channel] = p
            # the incomer sees every event of the loads below it
            mask = np.zeros(n, bool)
            for ch, mk in list(out.event_mask.items()):
                mask |= mk
            for (i, ch), kw in list(out.event_excess_kw.items()):
                if ch != m.channel:
                    key = (i, m.channel)
                    out.event_excess_kw[key] = out.event_excess_kw.get(key, 0) + kw
            if mask.any() or run_days.any():
                out.event_mask[m.channel] = mask | run_days
            if m.energy_channel:
                out.values[m.energy_channel] = self._counter(m.energy_channel, m.counter_start_kwh, p, step_s)
        return out

    def _peak_kw(self, channel: str | None, t_ms: np.ndarray) -> np.ndarray | float:
        """Extra kW of the scenario's peaks on a load (or, channel None, unmetered on the incomer)."""
        extra: np.ndarray | float = 0.0
        for pk in self.sc.peaks:
            if pk.channel != channel:
                continue
            st = pk.start if pk.start.tzinfo else pk.start.replace(tzinfo=self.cal.tz)
            a = int(st.timestamp() * 1000)
            b = a + int(pk.minutes * 60_000)
            extra = extra + np.where((t_ms >= a) & (t_ms < b), pk.kw, 0.0)
        return extra

    @staticmethod
    def _wrap(v: np.ndarray, wrap: float | None) -> np.ndarray:
        return np.mod(v, wrap) if wrap else v

    def _event_mask(self, e: Event, ld: LoadSpec, ph: DayPhase) -> np.ndarray | None:
        if e.channel != ld.channel or e.kind not in ("left_on", "night_high"):
            return None
        m = ph.day == e.day
        if e.kind == "night_high":   # after the last shift of that workday until midnight
            m &= ph.minute >= self._last[ph.weekday]
        return m

    def _attribute(self, out: Chunk, channel: str, ph: DayPhase, excess_kw: np.ndarray,
                   kinds: tuple[str, ...] = ("left_on", "night_high", "holiday_run")) -> None:
        """Split a channel's event excess by event (events sit on distinct days)."""
        for i, e in enumerate(self.events):
            if e.kind not in kinds:
                continue
            if e.kind != "holiday_run" and e.channel != channel:
                continue
            m = ph.day == e.day
            if m.any():
                kw = np.where(m, excess_kw, 0.0)
                if np.any(kw != 0):
                    out.event_excess_kw[(i, channel)] = out.event_excess_kw.get((i, channel), 0) + kw

    def _run_compressor(self, c, out: Chunk, ph: DayPhase, prod_ev, lunch_ev, run_days, step_s: float) -> None:
        n = len(out.t_ms)
        weeks = (out.t_ms - self.origin_ms) / (7 * MS_PER_DAY)
        leak = np.full(n, c.leak_m3min)
        for e in self.events:
            if e.kind == "leak_growth" and e.system == c.system:
                leak = leak + e.growth_m3min_per_week * np.clip(weeks, 0, None)
        lunch_d = c.demand_lunch_m3min if c.demand_lunch_m3min is not None else 0.3 * c.demand_production_m3min

        def demand_of(prod, lunch):
            return np.where(prod, c.demand_production_m3min, np.where(lunch, lunch_d, c.demand_standby_m3min))

        nf = self._noisy(c.system + ":demand", n, c.demand_noise, step_s)
        use = demand_of(prod_ev, lunch_ev) * nf
        demand = use + leak
        running = prod_ev | lunch_ev | ~np.full(n, c.stop_outside_production)
        st = self._comp[c.system]
        res = run_compressor(c, demand, running, out.t_ms, step_s, st)
        out.compressors[c.system] = res
        out.leak_m3min[c.system] = leak
        out.values[c.power_channel] = res.power_kw
        if run_days.any():
            # the same chunk without the holiday run, for the event's excess (no state carried)
            base_use = demand_of(ph.production, ph.lunch) * nf
            base_run = ph.production | ph.lunch | ~np.full(n, c.stop_outside_production)
            base = run_compressor(c, base_use + leak, base_run, out.t_ms, step_s, CompressorState())
            self._attribute(out, c.power_channel, ph, res.power_kw - base.power_kw, kinds=("holiday_run",))
            out.event_mask[c.power_channel] = run_days
        if c.energy_channel:
            out.values[c.energy_channel] = self._counter(c.energy_channel, c.counter_start_kwh, res.power_kw, step_s)
        if c.flow_channel:
            out.values[c.flow_channel] = demand * self._noisy(c.flow_channel, n, 0.01, step_s)
        if c.volume_channel:
            out.values[c.volume_channel] = self._wrap(
                self._counter(c.volume_channel, c.counter_start_m3, demand * 60.0, step_s), c.volume_wrap_m3)
        if c.pressure_channel:
            out.values[c.pressure_channel] = res.pressure_mpa + 0.002 * self.rng.standard_normal(n)


# ------------------------------------------------------------------ events
def resolve_events(sc: Scenario, cal: SiteCalendar, start_ms: int, end_ms: int, seed: int) -> list[Event]:
    """Turn the scenario's events into dated events inside [start, end): explicit dates
    are kept, `count` draws distinct days of the right type by seed."""
    rng = np.random.default_rng(seed + 7919)
    t = np.arange(start_ms, end_ms, 3_600_000, dtype=np.int64)
    if len(t) == 0:
        return []
    lt, day_type, _ = cal.classify(t.astype("datetime64[ms]"))
    days, first_idx, hours = np.unique(lt.day, return_index=True, return_counts=True)
    whole = hours >= 23            # only whole local days inside the window
    types = day_type[first_idx]
    used: set[int] = set()
    out: list[Event] = []
    for e in sc.events:
        if e.kind == "leak_growth":
            out.append(Event(e.kind, -1, None, e.system, 1.0, e.growth_m3min_per_week))
            continue
        if e.date is not None:
            d = (e.date - dt.date(1970, 1, 1)).days
            out.append(Event(e.kind, d, e.channel, e.system, e.level))
            used.add(d)
            continue
        want = (WORKDAY,) if e.kind == "night_high" else (SATURDAY, SUNDAY_HOLIDAY, COMPANY_HOLIDAY)
        cand = [int(d) for d, ty, w in zip(days, types, whole) if w and ty in want and int(d) not in used]
        pick = rng.choice(len(cand), size=min(e.count, len(cand)), replace=False) if cand else []
        for k in sorted(pick):
            used.add(cand[k])
            out.append(Event(e.kind, cand[k], e.channel, e.system, e.level))
    return out


__all__ = ["Factory", "Event", "Chunk", "resolve_events"]
