"""Compressed-air systems: compressors, flow meters and pressure paired by `system`.

Runs compressor_profile on each compressor, air_leak on the flow meters (or the
leak load method on power alone), prices the air at the system's specific
energy and proposes the compressor measures of the savings plan.
"""
from __future__ import annotations

import numpy as np

from . import air_leak as leak_mod
from . import compressor as comp_mod
from . import resample as rs
from . import savings as sav
from .findings import Collector
from .series import Series, end_ms, mean_rate, production_share

COMPRESSOR_KINDS = {"compressor", "air_compressor", "コンプレッサ", "コンプレッサー"}
DEFAULT_SPECIFIC_ENERGY_KWH_PER_M3 = 0.12    # 7.2 kW per m3/min: middle of the 5.5-8 range (field notes)


def is_compressor(s: Series) -> bool:
    return (s.info.equipment_kind or "").lower() in COMPRESSOR_KINDS


def analyze_air_systems(power: dict[str, Series], flows: dict[str, Series], pressures: dict[str, Series],
                        per_year: float, out: Collector) -> dict:
    """Findings and measures of every air system into `out`; returns the per-system summary."""
    systems: dict[str, dict[str, list[str]]] = {}
    for cid, s in power.items():
        if is_compressor(s):
            systems.setdefault(s.info.system or cid, {"comp": [], "flow": [], "pres": []})["comp"].append(cid)
    for cid, s in flows.items():
        systems.setdefault(s.info.system or cid, {"comp": [], "flow": [], "pres": []})["flow"].append(cid)
    for cid, s in pressures.items():
        if s.info.system in systems:
            systems[s.info.system]["pres"].append(cid)
    a = out.assumptions
    measures = out.measures
    air_summary = {}
    for sysid in sorted(systems):
        grp = systems[sysid]
        flow_mean = sum(mean_rate(flows[c]) for c in grp["flow"])
        prod_flow = sum(mean_rate(flows[c], flows[c].production) for c in grp["flow"])
        pres = None
        if grp["pres"]:
            ps = pressures[grp["pres"][0]]
            k = max(1, ps.rate.size // 100_000)
            run_p = ps.rate[::k][ps.production[::k]] if ps.production[::k].any() else ps.rate[::k]
            pres = (float(np.percentile(run_p, 5)), float(np.percentile(run_p, 95)), float(np.median(run_p)))
        comp_kw = 0.0
        profiles = {}
        for cid in grp["comp"]:
            s = power[cid]
            prof_c, state, loaded = comp_mod.compressor_profile(s.rate, s.dur_s, s.production,
                                                                s.info.rated_power_kw, idle=s.idle)
            profiles[cid] = (prof_c, state, loaded)
            comp_kw += prof_c.energy_kwh / prof_c.hours if prof_c.hours else 0.0
        # system specific energy: metered air if there is a flow meter, else loaded time x capacity
        cap_total = sum(power[c].info.capacity_m3_per_min or 0.0 for c in grp["comp"]) or None
        if flow_mean > 0 and comp_kw > 0:
            sec = comp_kw / (flow_mean * 60.0)
        elif cap_total and profiles:
            air = sum(p.mean_loaded_fraction * (power[c].info.capacity_m3_per_min or 0.0)
                      for c, (p, _, _) in profiles.items())
            sec = comp_kw / (air * 60.0) if air > 0 else None
        else:
            sec = None
        sec_used = sec if sec else DEFAULT_SPECIFIC_ENERGY_KWH_PER_M3
        off_share = float(np.mean([p.off_share for p, _, _ in profiles.values()])) if profiles else 0.0
        for cid in grp["comp"]:
            s = power[cid]
            p, state, loaded = profiles[cid]
            cap = s.info.capacity_m3_per_min
            if not cap and flow_mean > 0 and p.mean_loaded_fraction > 0 and len(grp["comp"]) == 1:
                cap = flow_mean / p.mean_loaded_fraction      # mass balance: delivered air = loaded time x capacity
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
            out.finding("compressor_profile", cid, int(s.t_ms[0]), end_ms(s), m["unload_energy_kwh"], m,
                        m["unload_energy_kwh"] * per_year)
            # measures of this compressor
            w_prod = s.axis.w_prod
            prod_e = rs.wsum(s.rate, w_prod) / 3600.0 * per_year
            night_e = p.energy_outside_production_kwh * per_year
            if night_e > 0 and p.running_hours_outside_production >= 1.0:
                out.measure("compressor_night_stop", cid, night_e,
                            f"compressor energy outside production ({p.running_hours_outside_production:,.0f} h "
                            f"running in the period)")
            kwh, basis = sav.pressure_setpoint_kwh(prod_e, pres[2] if pres else None, a)
            if kwh > 0:
                out.measure("pressure_setpoint", cid, kwh, basis)
            if p.control == "load_unload":
                w_run = w_prod * (state != comp_mod.OFF)
                run_h = float(w_run.sum())
                f_load = rs.wsum(loaded, w_run) / run_h if run_h > 0 else 0.0
                run_e = rs.wsum(s.rate, w_run) / 3600.0 * per_year
                kwh, basis = sav.vsd_kwh(run_e, f_load, p.full_load_kw, p.unload_power_kw, a)
                if kwh > 0:
                    out.measure("vsd_compressor", cid, kwh, basis,
                                investment=a.vsd_investment_jpy_per_kw * p.full_load_kw, kind="equipment")
        # leaks: flow meters first, else the leak load method on each compressor with a capacity
        leaks: list[tuple[str, leak_mod.LeakResult, float | None]] = []
        for cid in grp["flow"]:
            fs = flows[cid]
            r = leak_mod.leak_from_flow(fs.rate, fs.dur_s, fs.production, fs.local_day, fs.idle)
            if r is not None:
                leaks.append((cid, r, cap_total))
        if not leaks:
            for cid in grp["comp"]:
                s = power[cid]
                p, state, loaded = profiles[cid]
                if s.info.capacity_m3_per_min:
                    r = leak_mod.leak_from_load(loaded, s.dur_s, s.idle, s.local_day,
                                                s.info.capacity_m3_per_min)
                    if r is not None:
                        w_prod = s.axis.w_prod
                        r.extra["production_flow_m3min"] = s.info.capacity_m3_per_min * (
                            rs.wsum(loaded, w_prod) / float(w_prod.sum()) if w_prod.sum() > 0 else 0.0)
                        leaks.append((cid, r, s.info.capacity_m3_per_min))
        pressurised_h_year = 8760.0 * (1.0 - off_share)
        night_stop = any(mm.id == "compressor_night_stop" and mm.target in grp["comp"] for mm in measures)
        for cid, r, cap in leaks:
            ch = flows.get(cid) or power[cid]
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
            out.finding("air_leak", cid, int(ch.t_ms[0]), end_ms(ch), e_period, m,
                        m["annual_energy_kwh"])
            if r.trend is not None and r.trend.growing:
                tr = r.trend
                gm = {"system": sysid, "slope_m3min_per_week": tr.slope_m3min_per_week,
                      "growth_relative": tr.growth_relative, "weeks": len(tr.weekly_m3min), "trend_r2": tr.r2,
                      "weekly_m3min": tr.weekly_m3min, "first_week_m3min": tr.weekly_m3min[0],
                      "last_week_m3min": tr.weekly_m3min[-1]}
                # the energy of the growth: the added flow over the last week vs the first, over the span
                added = max(tr.weekly_m3min[-1] - tr.weekly_m3min[0], 0.0)
                e_g = 0.5 * added * 60.0 * period_pressurised_h * sec_used
                out.finding("air_leak_growth", cid, int(ch.t_ms[0]), end_ms(ch), e_g, gm,
                            added * 60.0 * pressurised_h_year * sec_used)
            hours = 8760.0 * production_share(ch) if night_stop else pressurised_h_year
            kwh, basis = sav.leak_repair_kwh(r.leak_flow_m3min, cap, hours, sec_used, a)
            if kwh > 0:
                lm = out.measure("leak_repair", sysid, kwh, basis)
                # the share of it outside production (what an incomer's standby also holds)
                lm.outside_production_share = 0.0 if night_stop else 1.0 - production_share(ch)
        if grp["comp"]:
            prod_air = (prod_flow if prod_flow > 0 else sum(
                p.mean_loaded_fraction * (power[c].info.capacity_m3_per_min or 0.0) for c, (p, _, _) in profiles.items()))
            prod_air_year = prod_air * 60.0 * 8760.0 * np.mean([production_share(power[c]) for c in grp["comp"]])
            kwh, basis = sav.pulse_blow_kwh(prod_air_year, sec_used, a)
            if kwh > 0:
                out.measure("pulse_blow", sysid, kwh, basis, kind="retrofit")
        air_summary[sysid] = {"compressors": grp["comp"], "flow_meters": grp["flow"], "pressure": grp["pres"],
                              "specific_energy_kwh_per_m3": sec, "flow_mean_m3min": flow_mean}
    return air_summary
