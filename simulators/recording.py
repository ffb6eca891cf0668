"""Recordings of the simulated factory, with ground truth for scoring detectors.

`generate_channels` runs the factory over a time grid in whole-day chunks
(vectorised inside each chunk), applies meter faults, and accumulates the
truth as it goes; `generate_recording` returns it as a ReadingBatch;
`write_simulated_recording` writes recording format v1 plus `<name>.truth.json`.
The truth schema is documented in docs/simulators.md.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mieruka.calendar import DAY_TYPES, SiteCalendar
from mieruka.models import TIME_DTYPE, ChannelInfo, ReadingBatch
from mieruka.quantities import QUANTITIES

from .engine import Event, Factory, resolve_events
from .faults import FaultWindow, apply_faults, resolve_faults
from .live import to_ms
from .scenario import Scenario

MS_PER_DAY = 86_400_000
CHUNK_SAMPLES = 1_000_000


@dataclass
class Simulated:
    """Per-channel arrays of a simulated recording and its ground truth."""

    infos: list[ChannelInfo]
    data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]      # id -> (time, value, quality)
    truth: dict
    timezone: str = "Asia/Tokyo"
    rows: int = field(default=0)

    def to_batch(self) -> ReadingBatch:
        parts = [ReadingBatch(t, np.full(len(t), cid, dtype=object), v, q) for cid, (t, v, q) in self.data.items()]
        return ReadingBatch.concat(parts)


def scenario_channels(sc: Scenario) -> list[ChannelInfo]:
    """Channel metadata from the scenario alone (recordings without a site config)."""
    out: list[ChannelInfo] = []
    if sc.main:
        out.append(ChannelInfo(sc.main.channel, "power_kw", "kW", "incomer", meter=sc.main.meter))
        if sc.main.energy_channel:
            out.append(ChannelInfo(sc.main.energy_channel, "energy_kwh", "kWh", "incomer", meter=sc.main.meter))
    for ld in sc.loads:
        kind = ld.equipment_kind or {"breaker": "machine", "lighting": "lighting", "hvac": "hvac",
                                     "chiller": "chiller"}.get(ld.kind, "other")
        out.append(ChannelInfo(ld.channel, "power_kw", "kW", kind, ld.system, meter=ld.meter,
                               standby_allowance_kw=ld.standby_allowance_kw, always_on=ld.always_on))
        if ld.energy_channel:
            out.append(ChannelInfo(ld.energy_channel, "energy_kwh", "kWh", kind, ld.system, meter=ld.meter))
    if sc.scenario.outdoor_temp_channel:
        out.append(ChannelInfo(sc.scenario.outdoor_temp_channel, "temperature_c", "degC", "outdoor_air"))
    for c in sc.compressors:
        out.append(ChannelInfo(c.power_channel, "power_kw", "kW", "compressor", c.system, meter=c.meter,
                               rated_power_kw=c.full_load_power_kw, capacity_m3_per_min=c.capacity_m3_per_min))
        if c.energy_channel:
            out.append(ChannelInfo(c.energy_channel, "energy_kwh", "kWh", "compressor", c.system, meter=c.meter))
        for ch, q in ((c.flow_channel, "air_flow_m3min"), (c.volume_channel, "air_volume_m3"),
                      (c.pressure_channel, "pressure_mpa")):
            if ch:
                out.append(ChannelInfo(ch, q, QUANTITIES[q].unit, "air_meter", c.system, meter=c.flow_meter))
    return out


def site_channels(cfg) -> tuple[list[ChannelInfo], dict[str, float]]:
    """Channel metadata from a site config, and the wrap of integer counter registers."""
    from mieruka.collector.registers import load_register_map

    infos, wraps = [], {}
    base = str(cfg.source.parent) if cfg.source else None
    for m, c in cfg.channels():
        infos.append(replace(c.info(m.id), unit=QUANTITIES[c.quantity].unit))
        if m.model and c.register_field:
            f = load_register_map(m.model, base).fields.get(c.register_field)
            if f is not None and f.counter and f.wrap_raw:
                wraps[c.id] = f.wrap_raw * f.scale
    return infos, wraps


def _iso(ms: int, tz) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz).isoformat()


def generate_channels(sc: Scenario, start: dt.datetime | dt.date | str, days: float, step_s: float = 60.0,
                      seed: int = 0, site=None, progress=None) -> Simulated:
    """Simulate `days` from `start` (naive = site local time) every `step_s` seconds."""
    cal = SiteCalendar.from_config(site) if site is not None else \
        SiteCalendar.from_section(sc.calendar, sc.scenario.timezone)
    tz = cal.tz
    if isinstance(start, str):
        start = dt.datetime.fromisoformat(start)
    if not isinstance(start, dt.datetime):
        start = dt.datetime.combine(start, dt.time())
    if step_s <= 0 or days <= 0:
        raise ValueError("step_s and days must be > 0")
    start_ms = to_ms(start, tz)
    step_ms = int(round(step_s * 1000))
    n_total = int(round(days * MS_PER_DAY / step_ms))
    end_ms = start_ms + n_total * step_ms
    events = resolve_events(sc, cal, start_ms, end_ms, seed)
    fac = Factory(sc, seed, cal, events, origin_ms=start_ms)
    if site is not None:
        infos, wraps = site_channels(site)
        meter_of = {i.id: i.meter for i in infos}
    else:
        infos, wraps = scenario_channels(sc), {}
        meter_of = {i.id: (i.meter or i.id) for i in infos}
    for ld in sc.loads:
        if ld.counter_wrap_kwh and ld.energy_channel:
            wraps.setdefault(ld.energy_channel, ld.counter_wrap_kwh)
    for c in sc.compressors:
        if c.volume_wrap_m3 and c.volume_channel:
            wraps.setdefault(c.volume_channel, c.volume_wrap_m3)
    if sc.main and sc.main.counter_wrap_kwh and sc.main.energy_channel:
        wraps.setdefault(sc.main.energy_channel, sc.main.counter_wrap_kwh)
    ids = [i.id for i in infos]
    acc = _TruthAcc(sc, infos, events, cal, step_s)
    per_day = max(1, MS_PER_DAY // step_ms)
    chunk = max(per_day, (CHUNK_SAMPLES // per_day) * per_day)
    parts: dict[str, list[np.ndarray]] = {i: [] for i in ids}
    times: list[np.ndarray] = []
    for k0 in range(0, n_total, chunk):
        t = start_ms + np.arange(k0, min(k0 + chunk, n_total), dtype=np.int64) * step_ms
        out = fac.run(t, step_s)
        _derived(out.values, infos, sc, fac.rng, len(t))
        missing = [i for i in ids if i not in out.values]
        if missing:
            from mieruka.errors import ConfigError
            raise ConfigError(f"the scenario produces no values for channel(s) {', '.join(missing)}")
        acc.add(out)
        times.append(t)
        for i in ids:
            parts[i].append(out.values[i])
        if progress:
            progress(len(t))
    t_all = np.concatenate(times) if times else np.empty(0, np.int64)
    faults = resolve_faults(sc.faults + _site_faults(site), tz, start_ms, end_ms, seed)
    known_meters = set(meter_of.values())
    for w in faults:
        if w.meter not in known_meters:
            from mieruka.errors import ConfigError
            raise ConfigError(f"fault {w.kind}: no meter {w.meter!r} (meters: {', '.join(sorted(known_meters))})")
    data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    rows = 0
    for info in infos:
        v = np.concatenate(parts.pop(info.id))
        counter = QUANTITIES[info.quantity].counter
        q = np.zeros(len(v), np.uint8)
        keep = np.ones(len(v), bool)
        ws = [w for w in faults if w.meter == meter_of.get(info.id) and (w.channel in (None, info.id))]
        apply_faults(t_all, v, q, keep, ws, counter)
        if info.id in wraps:
            v = np.mod(v, wraps[info.id])
        if not keep.all():
            data[info.id] = (t_all[keep].astype(TIME_DTYPE), v[keep], q[keep])
        else:
            data[info.id] = (t_all.astype(TIME_DTYPE), v, q)
        rows += int(keep.sum())
    truth = acc.finish(seed, start_ms, end_ms, faults, meter_of)
    return Simulated(infos, data, truth, cal.timezone, rows)


def _derived(values: dict, infos: list[ChannelInfo], sc: Scenario, rng: np.random.Generator, n: int) -> None:
    """Site channels the scenario does not model but a meter reports (voltage, frequency...)."""
    sec = sc.scenario
    for info in infos:
        if info.id in values:
            continue
        base = {"voltage_v": sec.nominal_voltage_v, "frequency_hz": sec.frequency_hz,
                "power_factor": sec.power_factor, "temperature_c": 28.0}.get(info.quantity)
        if base is not None:
            values[info.id] = base * (1 + 0.002 * rng.standard_normal(n))


def _site_faults(site) -> list:
    if site is None:
        return []
    from .site_link import simulation_section
    return list(simulation_section(site).faults)


def generate_recording(scenario: Scenario, start, days: float, step_s: float = 60.0, seed: int = 0,
                       site=None) -> tuple[ReadingBatch, list[ChannelInfo], dict]:
    """(readings, channel metadata, ground truth) of a simulated recording."""
    sim = generate_channels(scenario, start, days, step_s, seed, site)
    return sim.to_batch(), sim.infos, sim.truth


def write_simulated_recording(sim: Simulated, path: str | Path) -> tuple[Path, Path]:
    """Write the recording (format v1, site-zone times) and `<stem>.truth.json` beside it."""
    from mieruka.recording import write_channels

    path = Path(path)
    write_channels(path, sim.data, sim.infos, tz=sim.timezone)
    truth_path = path.with_name(path.name.removesuffix(".csv") + ".truth.json")
    truth_path.write_text(json.dumps(sim.truth, indent=1, ensure_ascii=False) + "\n", "utf-8")
    return path, truth_path


# ------------------------------------------------------------------ truth
class _TruthAcc:
    """Accumulates the ground truth chunk by chunk (sums, never per-sample lists)."""

    def __init__(self, sc: Scenario, infos: list[ChannelInfo], events: list[Event], cal: SiteCalendar,
                 step_s: float) -> None:
        self.sc, self.infos, self.events, self.cal, self.step_s = sc, infos, events, cal, step_s
        self.energy: dict[str, float] = {}
        self.stby_sum: dict[str, float] = {}
        self.stby_n: dict[str, int] = {}
        self.night_sum: dict[str, float] = {}
        self.night_n: dict[str, int] = {}
        self.ev_kwh: dict[tuple[int, str], float] = {}
        self.sys: dict[str, dict] = {c.system: {"load": 0.0, "unload": 0.0, "off": 0.0, "n": 0, "kwh": 0.0,
                                                "m3": 0.0, "leak_week": {}, "leak_sum": 0.0, "prod_flow": 0.0,
                                                "prod_n": 0, "growth_kwh": 0.0, "p_lo": [], "p_hi": []}
                                    for c in sc.compressors}
        self.t0: int | None = None
        # true demand of the incomer: sum of its power per period (site-clock periods)
        self.demand_ms = sc.demand_period_min * 60_000
        self.demand_sum: dict[int, float] = {}
        self.demand_n: dict[int, int] = {}

    def _add_demand(self, out) -> None:
        m = self.sc.main
        if m is None or m.channel not in out.values:
            return
        t = out.t_ms
        off = self.cal.local(t.astype(TIME_DTYPE)).offset_ms.astype(np.int64)
        start = t - (t + off) % self.demand_ms
        keys, inv = np.unique(start, return_inverse=True)
        sums = np.bincount(inv, weights=out.values[m.channel])
        counts = np.bincount(inv)
        for k, s_, c in zip(keys.tolist(), sums.tolist(), counts.tolist()):
            self.demand_sum[k] = self.demand_sum.get(k, 0.0) + s_
            self.demand_n[k] = self.demand_n.get(k, 0) + c

    def _demand_truth(self) -> dict | None:
        if self.sc.main is None:
            return None
        tz = self.cal.tz
        per_s = self.demand_ms / 1000.0
        full = round(per_s / self.step_s)
        periods, months = [], {}
        for k in sorted(self.demand_sum):
            if self.demand_n[k] != full:          # the recording starts or ends inside this period
                continue
            kw = self.demand_sum[k] * self.step_s / per_s
            periods.append({"start": _iso(k, tz), "kw": kw})
            month = dt.datetime.fromtimestamp(k / 1000, tz).strftime("%Y-%m")
            if month not in months or kw > months[month]["max_kw"]:
                months[month] = {"month": month, "max_kw": kw, "at": _iso(k, tz)}
        return {"channel": self.sc.main.channel, "energy_channel": self.sc.main.energy_channel,
                "period_min": self.sc.demand_period_min, "periods": periods,
                "monthly": [months[m] for m in sorted(months)],
                "peaks": [{"start": _iso(to_ms(pk.start, tz), tz), "minutes": pk.minutes, "kw": pk.kw,
                           "channel": pk.channel, "label": pk.label} for pk in self.sc.peaks]}

    def add(self, out) -> None:
        h = self.step_s / 3600.0
        self._add_demand(out)
        if self.t0 is None:
            self.t0 = int(out.t_ms[0])
        outside = ~out.phase.production
        for info in self.infos:
            if info.quantity != "power_kw" or info.id not in out.values:
                continue
            p = out.values[info.id]
            self.energy[info.id] = self.energy.get(info.id, 0.0) + float(p.sum()) * h
            m = outside & ~out.event_mask.get(info.id, np.zeros(len(p), bool))
            self.stby_sum[info.id] = self.stby_sum.get(info.id, 0.0) + float(p[m].sum())
            self.stby_n[info.id] = self.stby_n.get(info.id, 0) + int(m.sum())
            m &= ~out.phase.lunch
            self.night_sum[info.id] = self.night_sum.get(info.id, 0.0) + float(p[m].sum())
            self.night_n[info.id] = self.night_n.get(info.id, 0) + int(m.sum())
        for key, kw in out.event_excess_kw.items():
            self.ev_kwh[key] = self.ev_kwh.get(key, 0.0) + float(np.sum(kw)) * h
        week = (out.t_ms - self.t0) // (7 * MS_PER_DAY)
        for c in self.sc.compressors:
            s, r = self.sys[c.system], out.compressors[c.system]
            leak = out.leak_m3min[c.system]
            s["load"] += float(r.loaded.sum())
            s["unload"] += float(r.unloaded.sum())
            s["off"] += float(r.off.sum())
            s["n"] += len(leak)
            s["kwh"] += float(r.power_kw.sum()) * h
            s["m3"] += float(r.delivered_m3min.sum()) * self.step_s / 60.0
            s["leak_sum"] += float(leak.sum())
            for w in np.unique(week):
                lw = leak[week == w]
                tot = s["leak_week"].setdefault(int(w), [0.0, 0])
                tot[0] += float(lw.sum())
                tot[1] += len(lw)
            prod = out.phase.production
            if c.flow_channel and c.flow_channel in out.values:
                s["prod_flow"] += float(out.values[c.flow_channel][prod].sum())
                s["prod_n"] += int(prod.sum())
            growth = leak - c.leak_m3min
            marginal = (c.full_load_power_kw - c.unload_kw) / c.capacity_m3_per_min   # kW per m3/min
            s["growth_kwh"] += float(growth.sum()) * marginal * h

    def finish(self, seed: int, start_ms: int, end_ms: int, faults: list[FaultWindow], meter_of) -> dict:
        tz = self.cal.tz
        specs = {ld.channel: ld for ld in self.sc.loads}
        comps = {c.power_channel: c for c in self.sc.compressors}
        channels = {}
        for info in self.infos:
            d: dict = {"quantity": info.quantity, "equipment_kind": info.equipment_kind, "system": info.system,
                       "meter": meter_of.get(info.id)}
            if info.quantity == "power_kw":
                ld, comp = specs.get(info.id), comps.get(info.id)
                if ld is not None:      # off at night and on holidays (breaks may still draw power)
                    off = ld.off_outside_production
                    allowance = max(info.standby_allowance_kw, ld.standby_allowance_kw)
                elif comp is not None:
                    off, allowance = comp.stop_outside_production, 0.0
                else:
                    off, allowance = False, info.standby_allowance_kw
                n = self.stby_n.get(info.id, 0)
                nn = self.night_n.get(info.id, 0)
                d.update(energy_kwh=self.energy.get(info.id, 0.0),
                         standby_kw=(self.stby_sum[info.id] / n) if n else 0.0,
                         standby_hours=n * self.step_s / 3600.0,
                         standby_kw_excluding_breaks=(self.night_sum[info.id] / nn) if nn else 0.0,
                         standby_allowance_kw=allowance, off_outside_production=bool(off),
                         always_on=bool(ld is not None and (ld.kind == "constant" or ld.always_on)))
            channels[info.id] = d
        systems = {}
        for c in self.sc.compressors:
            s = self.sys[c.system]
            n = max(s["n"], 1)
            weeks = [v[0] / v[1] for _, v in sorted(s["leak_week"].items())]
            leak = s["leak_sum"] / n
            prod_flow = s["prod_flow"] / s["prod_n"] if s["prod_n"] else None
            systems[c.system] = {
                "compressor_channel": c.power_channel, "flow_channel": c.flow_channel,
                "pressure_channel": c.pressure_channel, "volume_channel": c.volume_channel,
                "capacity_m3_per_min": c.capacity_m3_per_min, "control": c.control,
                "full_load_power_kw": c.full_load_power_kw, "unload_power_kw": c.unload_kw,
                "leak_flow_m3min": leak, "leak_flow_m3min_by_week": weeks,
                "leak_growing": any(e.kind == "leak_growth" and e.system == c.system for e in self.events),
                "leak_share": (leak / prod_flow) if prod_flow else None,
                "production_flow_m3min": prod_flow,
                "load_share": s["load"] / n, "unload_share": s["unload"] / n, "off_share": s["off"] / n,
                "loaded_specific_power_kw_per_m3min": c.full_load_power_kw / c.capacity_m3_per_min,
                "system_specific_energy_kwh_per_m3": s["kwh"] / s["m3"] if s["m3"] else None,
                "energy_kwh": s["kwh"], "delivered_m3": s["m3"],
                "pressure_band_mpa": list(c.pressure_band_mpa),
                "stop_outside_production": c.stop_outside_production,
            }
        events = []
        first = (start_ms + self.cal.local(np.array([start_ms]).astype(TIME_DTYPE)).offset_ms[0]) // MS_PER_DAY
        last = first + (end_ms - start_ms) // MS_PER_DAY + 1
        types = self.cal.day_types(int(first), int(last))
        for (i, ch), kwh in sorted(self.ev_kwh.items()):
            e = self.events[i]
            date = SiteCalendar.day_to_date(e.day)
            day_start = dt.datetime.combine(date, dt.time(), tz)
            begin = day_start
            if e.kind == "night_high":
                from .loads import shift_span_tables
                _, last_end = shift_span_tables(self.cal)
                begin = day_start + dt.timedelta(minutes=int(last_end[date.weekday()]))
            events.append({"kind": e.kind, "channel": ch, "system": None, "date": date.isoformat(),
                           "day_type": DAY_TYPES[int(types[e.day - first])] if first <= e.day <= last else None,
                           "start": begin.isoformat(), "end": (day_start + dt.timedelta(days=1)).isoformat(),
                           "excess_kwh": kwh,
                           "injected_on": e.channel if e.kind != "holiday_run" else None})
        for e in self.events:
            if e.kind == "leak_growth":
                events.append({"kind": "leak_growth", "channel": next(
                    (c.power_channel for c in self.sc.compressors if c.system == e.system), None),
                    "system": e.system, "date": None, "day_type": None,
                    "start": _iso(start_ms, tz), "end": _iso(end_ms, tz),
                    "excess_kwh": self.sys[e.system]["growth_kwh"] if e.system in self.sys else 0.0,
                    "growth_m3min_per_week": e.growth_m3min_per_week})
        main = self.sc.main.channel if self.sc.main else None
        # what a plan could honestly save: standby above its allowance on loads that may be
        # switched off (not the always-on ones, not the incomer), and the excess of the
        # injected anomalies on the loads (the incomer sees the same kWh again)
        sb = sum(max(c["standby_kw"] - c["standby_allowance_kw"], 0.0) * c["standby_hours"]
                 for cid, c in channels.items() if c.get("standby_kw") is not None and cid != main
                 and cid in specs and not c.get("always_on") and not c.get("off_outside_production"))
        anomalies = sum(e["excess_kwh"] for e in events if e["date"] and e["channel"] != main)
        return {
            "achievable_savings_kwh": {"standby_kwh": sb, "anomaly_kwh": anomalies, "total_kwh": sb + anomalies,
                                       "note": "over the recording, not annualised; air systems not included"},
            "version": 1, "seed": seed, "start": _iso(start_ms, tz), "end": _iso(end_ms, tz),
            "step_s": self.step_s, "timezone": self.cal.timezone,
            "scenario": self.sc.scenario.name,
            "channels": channels, "systems": systems, "events": events,
            "demand": self._demand_truth(),
            "faults": [{"meter": w.meter, "channel": w.channel, "kind": w.kind, "start": _iso(w.start_ms, tz),
                        "end": _iso(w.end_ms, tz)} for w in faults],
        }


__all__ = ["generate_recording", "generate_channels", "write_simulated_recording", "Simulated"]
