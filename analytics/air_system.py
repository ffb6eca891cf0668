"""Compressed-air systems: compressors, flow meters and pressure paired by `system`.

Each step is a function that returns data: `group_air_systems` pairs the channels,
`system_specific_energy_kwh_per_m3` prices the air, `compressor_findings` profiles
each compressor (compressor_profile) and proposes its measures, `leak_findings`
finds the leaks (air_leak on the flow meters, or the leak load method on power
alone) and their growth, `pulse_blow_measures` the blow-off retrofit.  The findings
and measures come back as `FindingData`/`MeasureData` records; `analyze_air_systems`
adds them, in a fixed order, to the run's `Collector` (which writes their texts).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mieruka import roles

from . import air_leak as leak_mod
from . import compressor as comp_mod
from . import resample as rs
from . import savings as sav
from .findings import Collector
from .series import Series, end_ms, mean_rate, production_share

DEFAULT_SPECIFIC_ENERGY_KWH_PER_M3 = 0.12    # 7.2 kW per m3/min: middle of the 5.5-8 range (field notes)


def is_compressor(s: Series) -> bool:
    return roles.is_compressor(s.info)


@dataclass
class AirSystem:
    """The channels of one compressed-air system (`system` tag, else the channel id)."""

    id: str
    compressors: list[str] = field(default_factory=list)
    flow_meters: list[str] = field(default_factory=list)
    pressure: list[str] = field(default_factory=list)


@dataclass
class FindingData:
    """A finding before its texts are written (arguments of `Collector.finding`)."""

    kind: str
    channel: str
    start_ms: int
    end_ms: int
    energy_kwh: float
    metrics: dict
    annual_energy_kwh: float | None = None


@dataclass
class MeasureData:
    """A savings-plan measure before it is named (arguments of `Collector.measure`)."""

    id: str
    target: str
    kwh_per_year: float
    basis: str
    investment_jpy: float | None = None
    kind: str = "operation"


@dataclass
class CompressorRun:
    """A compressor's profile and its per-sample state on the time axis."""

    profile: comp_mod.CompressorProfile
    state: np.ndarray        # comp_mod.OFF / UNLOAD / LOAD ... per sample
    loaded: np.ndarray       # loaded fraction per sample, 0..1


def group_air_systems(power: dict[str, Series], flows: dict[str, Series],
                      pressures: dict[str, Series]) -> list[AirSystem]:
    """Compressors (by equipment kind) and flow meters grouped by their `system` tag
    (untagged: a system of their own); pressure meters join a system that has one of
    those.  Sorted by system id."""
    systems: dict[str, AirSystem] = {}
    for cid, s in power.items():
        if is_compressor(s):
            systems.setdefault(s.info.system or cid, AirSystem(s.info.system or cid)).compressors.append(cid)
    for cid, s in flows.items():
        systems.setdefault(s.info.system or cid, AirSystem(s.info.system or cid)).flow_meters.append(cid)
    for cid, s in pressures.items():
        if s.info.system in systems:
            systems[s.info.system].pressure.append(cid)
    return [systems[k] for k in sorted(systems)]


def pressure_band_mpa(ps: Series) -> tuple[float, float, float]:
    """(5th percentile, 95th percentile, median) of the pressure during production
    (all of it when there is no production), on at most ~100 000 samples."""
    k = max(1, ps.rate.size // 100_000)
    run_p = ps.rate[::k][ps.production[::k]] if ps.production[::k].any() else ps.rate[::k]
    return float(np.percentile(run_p, 5)), float(np.percentile(run_p, 95)), float(np.median(run_p))


def system_specific_energy_kwh_per_m3(compressor_kw: float, flow_mean_m3min: float,
                                      loaded_air_m3min: float | None) -> float | None:
    """kWh per m3 of free air delivered: compressor power over the metered flow when
    there is a flow meter, else over loaded time x rated capacity (`loaded_air_m3min`,
    None when no compressor has a capacity).  None when neither can be computed."""
    if flow_mean_m3min > 0 and compressor_kw > 0:
        return compressor_kw / (flow_mean_m3min * 60.0)
    if loaded_air_m3min is not None:
        return compressor_kw / (loaded_air_m3min * 60.0) if loaded_air_m3min > 0 else None
    return None


def compressor_findings(sysid: str, comp: str, s: Series, run: CompressorRun, *, flow_mean_m3min: float,
                        single_compressor: bool, sec: float | None, pres: tuple[float, float, float] | None,
                        per_year: float, a: sav.SavingsAssumptions) -> tuple[FindingData, list[MeasureData]]:
    """A compressor's profile finding (its unload energy is the waste) and its measures:
    night stop, pressure set point, VSD for load/unload control."""
    p, state, loaded = run.profile, run.state, run.loaded
    cap = s.info.capacity_m3_per_min
    if not cap and flow_mean_m3min > 0 and p.mean_loaded_fraction > 0 and single_compressor:
        cap = flow_mean_m3min / p.mean_loaded_fraction      # mass balance: delivered air = loaded time x capacity
    m = {"control": p.control, "load_share": p.load_share, "unload_share": p.unload_share,
         "off_share": p.off_share, "cycles_per_hour": p.cycles_per_hour, "full_load_kw": p.full_load_kw,
         "unload_power_kw": p.unload_power_kw, "loaded_power_kw": p.loaded_power_kw,
         "loaded_specific_power_kw_per_m3min": (p.loaded_power_kw / cap) if cap else None,
         "system_specific_energy_kwh_per_m3": sec, "capacity_m3_per_min": cap,
         "capacity_estimated": bool(cap and not s.info.capacity_m3_per_min),
         "mean_loaded_fraction": p.mean_loaded_fraction, "energy_kwh": p.energy_kwh,
         "energy_outside_production_kwh": p.energy_outside_production_kwh,
         "unload_energy_kwh": p.unload_share * p.hours * p.unload_power_kw,
         "pressure_p5_mpa": pres[0] if pres else None, "pressure_p95_mpa": pres[1] if pres else None,
         "pressure_median_mpa": pres[2] if pres else None, **p.speed_band_shares}
    finding = FindingData("compressor_profile", comp, int(s.t_ms[0]), end_ms(s), m["unload_energy_kwh"], m,
                          m["unload_energy_kwh"] * per_year)
    measures = []
    w_prod = s.axis.w_prod
    prod_e = rs.wsum(s.rate, w_prod) / 3600.0 * per_year
    night_e = p.energy_outside_production_kwh * per_year
    if night_e > 0 and p.running_hours_outside_production >= 1.0:
        measures.append(MeasureData("compressor_night_stop", comp, night_e,
                                    f"compressor energy outside production ({p.running_hours_outside_production:,.0f} h "
                                    f"running in the period)"))
    kwh, basis = sav.pressure_setpoint_kwh(prod_e, pres[2] if pres else None, a)
    if kwh > 0:
        measures.append(MeasureData("pressure_setpoint", comp, kwh, basis))
    if p.control == "load_unload":
        w_run = w_prod * (state != comp_mod.OFF)
        run_h = float(w_run.sum())
        f_load = rs.wsum(loaded, w_run) / run_h if run_h > 0 else 0.0
        run_e = rs.wsum(s.rate, w_run) / 3600.0 * per_year
        kwh, basis = sav.vsd_kwh(run_e, f_load, p.full_load_kw, p.unload_power_kw, a)
        if kwh > 0:
            measures.append(MeasureData("vsd_compressor", comp, kwh, basis,
                                        investment_jpy=a.vsd_investment_jpy_per_kw * p.full_load_kw,
                                        kind="equipment"))
    return finding, measures


def detect_leaks(system: AirSystem, power: dict[str, Series], flows: dict[str, Series],
                 runs: dict[str, CompressorRun], cap_total: float | None
                 ) -> list[tuple[str, leak_mod.LeakResult, float | None]]:
    """(channel, leak result, capacity m3/min it is compared with): from the flow meters
    first, else by the leak load method on each compressor with a rated capacity."""
    leaks: list[tuple[str, leak_mod.LeakResult, float | None]] = []
    for cid in system.flow_meters:
        fs = flows[cid]
        r = leak_mod.leak_from_flow(fs.rate, fs.dur_s, fs.production, fs.local_day, fs.idle)
        if r is not None:
            leaks.append((cid, r, cap_total))
    if leaks:
        return leaks
    for cid in system.compressors:
        s = power[cid]
        loaded = runs[cid].loaded
        if s.info.capacity_m3_per_min:
            r = leak_mod.leak_from_load(loaded, s.dur_s, s.idle, s.local_day, s.info.capacity_m3_per_min)
            if r is not None:
                w_prod = s.axis.w_prod
                r.extra["production_flow_m3min"] = s.info.capacity_m3_per_min * (
                    rs.wsum(loaded, w_prod) / float(w_prod.sum()) if w_prod.sum() > 0 else 0.0)
                leaks.append((cid, r, s.info.capacity_m3_per_min))
    return leaks


def leak_findings(sysid: str, cid: str, ch: Series, r: leak_mod.LeakResult, cap: float | None, *,
                  sec: float | None, sec_used: float, off_share: float, night_stop: bool,
                  a: sav.SavingsAssumptions) -> tuple[list[FindingData], list[MeasureData]]:
    """A leak finding (period and annual energy at the system's specific energy), a
    growth finding when its weekly trend grows, and the leak repair measure.  Air is
    taken as pressurised while any compressor runs (1 - `off_share`), or only during
    production when the compressors are stopped at night (`night_stop`)."""
    pressurised_h_year = 8760.0 * (1.0 - off_share)
    pflow = r.extra.get("production_flow_m3min") or 0.0
    period_pressurised_h = ch.dur_s.sum() / 3600.0 * (1.0 - off_share)
    e_period = r.leak_flow_m3min * 60.0 * period_pressurised_h * sec_used
    m = {"system": sysid, "method": r.method, "leak_flow_m3min": r.leak_flow_m3min,
         "leak_share": r.leak_flow_m3min / pflow if pflow > 0 else None,
         "leak_share_of_capacity": r.leak_flow_m3min / cap if cap else None,
         "production_flow_m3min": pflow, "specific_energy_kwh_per_m3": sec_used,
         "specific_energy_assumed": sec is None, "hours_outside_production": r.hours_outside_production,
         "days": r.days, "annual_energy_kwh": r.leak_flow_m3min * 60.0 * pressurised_h_year * sec_used}
    if r.trend is not None:
        m.update({"trend_m3min_per_week": r.trend.slope_m3min_per_week, "trend_r2": r.trend.r2,
                  "weekly_m3min": r.trend.weekly_m3min, "growing": r.trend.growing})
    findings = [FindingData("air_leak", cid, int(ch.t_ms[0]), end_ms(ch), e_period, m, m["annual_energy_kwh"])]
    if r.trend is not None and r.trend.growing:
        tr = r.trend
        gm = {"system": sysid, "slope_m3min_per_week": tr.slope_m3min_per_week,
              "growth_relative": tr.growth_relative, "weeks": len(tr.weekly_m3min), "trend_r2": tr.r2,
              "weekly_m3min": tr.weekly_m3min, "first_week_m3min": tr.weekly_m3min[0],
              "last_week_m3min": tr.weekly_m3min[-1]}
        # the energy of the growth: the added flow over the last week vs the first, over the span
        added = max(tr.weekly_m3min[-1] - tr.weekly_m3min[0], 0.0)
        e_g = 0.5 * added * 60.0 * period_pressurised_h * sec_used
        findings.append(FindingData("air_leak_growth", cid, int(ch.t_ms[0]), end_ms(ch), e_g, gm,
                                    added * 60.0 * pressurised_h_year * sec_used))
    hours = 8760.0 * production_share(ch) if night_stop else pressurised_h_year
    kwh, basis = sav.leak_repair_kwh(r.leak_flow_m3min, cap, hours, sec_used, a)
    measures = [MeasureData("leak_repair", sysid, kwh, basis)] if kwh > 0 else []
    return findings, measures


def pulse_blow_measures(system: AirSystem, power: dict[str, Series], runs: dict[str, CompressorRun],
                        prod_flow_m3min: float, sec_used: float, a: sav.SavingsAssumptions) -> list[MeasureData]:
    """Pulse blowing instead of continuous blow-off, on the air used in production."""
    if not system.compressors:
        return []
    prod_air = (prod_flow_m3min if prod_flow_m3min > 0 else sum(
        r.profile.mean_loaded_fraction * (power[c].info.capacity_m3_per_min or 0.0) for c, r in runs.items()))
    prod_air_year = prod_air * 60.0 * 8760.0 * np.mean([production_share(power[c]) for c in system.compressors])
    kwh, basis = sav.pulse_blow_kwh(prod_air_year, sec_used, a)
    return [MeasureData("pulse_blow", system.id, kwh, basis, kind="retrofit")] if kwh > 0 else []


def _add(out: Collector, findings: list[FindingData], measures: list[MeasureData]) -> None:
    for f in findings:
        out.finding(f.kind, f.channel, f.start_ms, f.end_ms, f.energy_kwh, f.metrics, f.annual_energy_kwh)
    for m in measures:
        out.measure(m.id, m.target, m.kwh_per_year, m.basis, investment=m.investment_jpy, kind=m.kind)


def analyze_air_systems(power: dict[str, Series], flows: dict[str, Series], pressures: dict[str, Series],
                        per_year: float, out: Collector) -> dict:
    """Findings and measures of every air system into `out`; returns the per-system summary."""
    a = out.assumptions
    air_summary = {}
    for system in group_air_systems(power, flows, pressures):
        sysid, comps = system.id, system.compressors
        flow_mean = sum(mean_rate(flows[c]) for c in system.flow_meters)
        prod_flow = sum(mean_rate(flows[c], flows[c].production) for c in system.flow_meters)
        pres = pressure_band_mpa(pressures[system.pressure[0]]) if system.pressure else None
        comp_kw = 0.0
        runs: dict[str, CompressorRun] = {}
        for cid in comps:
            s = power[cid]
            runs[cid] = CompressorRun(*comp_mod.compressor_profile(s.rate, s.dur_s, s.production,
                                                                   s.info.rated_power_kw, idle=s.idle))
            p = runs[cid].profile
            comp_kw += p.energy_kwh / p.hours if p.hours else 0.0
        cap_total = sum(power[c].info.capacity_m3_per_min or 0.0 for c in comps) or None
        loaded_air = (sum(r.profile.mean_loaded_fraction * (power[c].info.capacity_m3_per_min or 0.0)
                          for c, r in runs.items()) if cap_total and runs else None)
        sec = system_specific_energy_kwh_per_m3(comp_kw, flow_mean, loaded_air)
        sec_used = sec if sec else DEFAULT_SPECIFIC_ENERGY_KWH_PER_M3
        off_share = float(np.mean([r.profile.off_share for r in runs.values()])) if runs else 0.0
        night_stop = False
        for cid in comps:
            finding, measures = compressor_findings(sysid, cid, power[cid], runs[cid], flow_mean_m3min=flow_mean,
                                                    single_compressor=len(comps) == 1, sec=sec, pres=pres,
                                                    per_year=per_year, a=a)
            _add(out, [finding], measures)
            night_stop |= any(m.id == "compressor_night_stop" for m in measures)
        for cid, r, cap in detect_leaks(system, power, flows, runs, cap_total):
            findings, measures = leak_findings(sysid, cid, flows.get(cid) or power[cid], r, cap, sec=sec,
                                               sec_used=sec_used, off_share=off_share, night_stop=night_stop, a=a)
            _add(out, findings, measures)
        _add(out, [], pulse_blow_measures(system, power, runs, prod_flow, sec_used, a))
        air_summary[sysid] = {"compressors": comps, "flow_meters": system.flow_meters, "pressure": system.pressure,
                              "specific_energy_kwh_per_m3": sec, "flow_mean_m3min": flow_mean}
    return air_summary
