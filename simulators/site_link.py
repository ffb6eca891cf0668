"""Link a site config to a scenario: which scenario drives the site's channels, and
how a meter's register fields are filled from channel values.

`[simulation]` in the site file (all keys optional)::

    [simulation]
    scenario = "scenarios/demo.toml"   # relative to the site file; default: built from the channels
    seed = 1
    unknown_unit = "timeout"           # timeout (no answer, like a gateway) | exception (0x0B)
    [[simulation.faults]]              # live faults, see FaultSpec
    meter = "pm-hvac"
    kind = "timeout"

Site channels the scenario does not produce get a plausible default load, so any
site file can be simulated (the collector's tests write their own).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from mieruka.roles import is_compressor, is_site_total
from mieruka.site import SiteConfig, validate_section

from .scenario import (CompressorSpec, FaultSpec, LoadSpec, MainSpec, Scenario, ScenarioSection, _M,
                       load_scenario)


class SimulationSection(_M):
    scenario: Path | None = None
    seed: int = 0
    unknown_unit: Literal["timeout", "exception"] = "timeout"
    faults: list[FaultSpec] = Field(default_factory=list)


def simulation_section(cfg: SiteConfig) -> SimulationSection:
    return validate_section(SimulationSection, cfg, "simulation") or SimulationSection()


def scenario_for_site(cfg: SiteConfig, scenario_path: str | Path | None = None) -> Scenario:
    """The scenario named by the site (or `scenario_path`), completed with default
    loads for every site channel it does not produce; the site's calendar wins."""
    sim = simulation_section(cfg)
    path = scenario_path or (cfg.resolve_path(sim.scenario) if sim.scenario else None)
    sc = load_scenario(path) if path else Scenario(scenario=ScenarioSection(name=cfg.site.name))
    sc.calendar = cfg.calendar
    sc.scenario.timezone = cfg.site.timezone
    produced = set(sc.channel_ids())
    meter_of = {c.id: m.id for m, c in cfg.channels()}
    # compressors first (their air meters attach to them by system)
    for m, c in cfg.channels():
        if c.id in produced or c.quantity != "power_kw" or not is_compressor(c):
            continue
        system = c.system or c.id
        air = [x for _, x in cfg.channels() if x.system == system and x.id not in produced]
        pick = {q: next((x.id for x in air if x.quantity == q), None)
                for q in ("air_flow_m3min", "air_volume_m3", "pressure_mpa")}
        cap = c.capacity_m3_per_min or 6.0
        comp = CompressorSpec(system=system, power_channel=c.id, flow_channel=pick["air_flow_m3min"],
                              volume_channel=pick["air_volume_m3"], pressure_channel=pick["pressure_mpa"],
                              meter=m.id, capacity_m3_per_min=cap, full_load_power_kw=c.rated_power_kw or 6.0 * cap,
                              demand_production_m3min=0.55 * cap, leak_m3min=0.2 * cap)
        sc.compressors.append(comp)
        produced |= {x for x in (comp.power_channel, *pick.values()) if x}
    for m, c in cfg.channels():
        if c.id in produced or c.quantity != "power_kw":
            continue
        if is_site_total(c) and sc.main is None:
            sc.main = MainSpec(channel=c.id, meter=m.id, unmetered_production_kw=5.0, unmetered_standby_kw=1.0)
        else:
            rated = c.rated_power_kw or 10.0
            sc.loads.append(LoadSpec(channel=c.id, equipment_kind=c.equipment_kind, meter=m.id,
                                     production_kw=0.6 * rated, standby_kw=0.1 * rated,
                                     standby_allowance_kw=c.standby_allowance_kw))
        produced.add(c.id)
    # energy counters: integrate the power channel of the same meter
    for m in cfg.meters:
        power = next((c.id for c in m.channels if c.quantity == "power_kw"), None)
        for c in m.channels:
            if c.quantity == "energy_kwh" and c.id not in produced and power:
                _attach_energy(sc, power, c.id)
                produced.add(c.id)
        if power and not any(c.quantity == "energy_kwh" for c in m.channels):
            _attach_energy(sc, power, hidden_energy_channel(power))   # the meter's own counter registers
    for spec in sc.loads + sc.compressors + ([sc.main] if sc.main else []):
        ch = spec.power_channel if isinstance(spec, CompressorSpec) else spec.channel
        if spec.meter is None and ch in meter_of:
            spec.meter = meter_of[ch]
    return sc


def hidden_energy_channel(power_channel: str) -> str:
    """The counter of a meter whose site config lists no energy channel (served, not recorded)."""
    return f"{power_channel}#energy"


def _attach_energy(sc: Scenario, power_channel: str, energy_channel: str) -> None:
    for ld in sc.loads:
        if ld.channel == power_channel and not ld.energy_channel:
            ld.energy_channel = energy_channel
            return
    for c in sc.compressors:
        if c.power_channel == power_channel and not c.energy_channel:
            c.energy_channel = energy_channel
            return
    if sc.main and sc.main.channel == power_channel and not sc.main.energy_channel:
        sc.main.energy_channel = energy_channel


# ------------------------------------------------------------ meter fields
def meter_field_values(meter, regmap, values: dict[str, float], sec: ScenarioSection, rng: np.random.Generator) -> dict[str, float]:
    """Every field of a meter's register map from the channel values at one instant.

    Fields bound to a site channel take that channel's value; the others are
    derived from the meter's power (per-phase power, current, voltage, power
    factor, frequency) or its counters, so every mapped register reads plausibly.
    """
    bound = {c.register_field: c.id for c in meter.channels if c.register_field}
    power_ch = next((c.id for c in meter.channels if c.quantity == "power_kw"), None)
    p_kw = float(values.get(power_ch, 0.0)) if power_ch else 0.0
    energy = next((values[c.id] for c in meter.channels if c.quantity == "energy_kwh" and c.id in values), None)
    if energy is None and power_ch:
        energy = values.get(hidden_energy_channel(power_ch), 0.0)
    pf = sec.power_factor
    v_nom = sec.nominal_voltage_v
    out: dict[str, float] = {}
    for name, f in regmap.fields.items():
        if name in bound and bound[name] in values:
            out[name] = float(values[bound[name]])
            continue
        q = f.quantity
        if q == "voltage_v":
            phase = {"voltage_l2": 0.4, "voltage_l3": -0.3}.get(name, 0.0)
            out[name] = v_nom * (1 + 0.002 * rng.standard_normal()) + phase
        elif q == "current_a":
            out[name] = abs(p_kw) * 1000.0 / (3 * v_nom * pf)
        elif q == "power_kw":
            out[name] = p_kw / 3 if name[-2:] in ("l1", "l2", "l3") else p_kw
        elif q == "power_factor":
            out[name] = pf
        elif q == "frequency_hz":
            out[name] = sec.frequency_hz + 0.01 * rng.standard_normal()
        elif q == "reactive_power_kvar":
            out[name] = p_kw * math.tan(math.acos(pf))
        elif q == "energy_kwh":
            out[name] = float(energy or 0.0) if "export" not in name else 0.0
        elif q == "temperature_c":
            out[name] = 28.0 + 0.2 * rng.standard_normal()
        else:
            out[name] = 0.0
    return out
