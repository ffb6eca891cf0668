"""Ready-made factories for tests and benchmarks: small or large, quiet or noisy,
load/unload or VSD compressors, with or without injected events and meter faults.

    sc = factory_scenario("large", noise=0.08, faults=True)
    batch, infos, truth = generate_recording(sc, "2026-04-25", days=14, step_s=60, seed=3)
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from mieruka.site import CalendarSection

from .scenario import (CompressorSpec, EventSpec, FaultSpec, LoadSpec, MainSpec, Scenario, ScenarioSection)

_KINDS = ("press", "machine_tool", "injection_molding", "welding", "furnace", "pump", "conveyor", "washer")


def factory_scenario(size: Literal["small", "large"] = "small", noise: float = 0.03,
                     control: Literal["load_unload", "vsd"] = "load_unload", leak_share: float = 0.2,
                     events: bool = True, faults: bool = False, compressor_stops_at_night: bool = False,
                     calendar: CalendarSection | None = None, layout_seed: int = 0) -> Scenario:
    """A plausible factory.  `leak_share`: leak flow as a share of the first compressor's
    capacity; `layout_seed` varies the large plant's breaker sizes."""
    rng = np.random.default_rng(layout_seed)
    loads = [
        LoadSpec(channel="press_power", meter="m-press", equipment_kind="press", production_kw=18.0, lunch_kw=6.0,
                 standby_kw=2.4, energy_channel="press_energy"),
        LoadSpec(channel="machining_power", meter="m-machining", equipment_kind="machine_tool", production_kw=22.0,
                 lunch_kw=7.0, standby_kw=3.1),
        LoadSpec(channel="lighting_power", meter="m-lighting", kind="lighting", production_kw=7.5, lunch_kw=3.0,
                 standby_kw=0.5, standby_allowance_kw=0.3, noise=min(noise, 0.01)),
        LoadSpec(channel="hvac_power", meter="m-hvac", kind="hvac", production_kw=3.0, hvac_kw_per_degc=0.7,
                 lunch_kw=0.0, standby_kw=0.0),
    ]
    comps = [CompressorSpec(system="air1", power_channel="compressor_power", flow_channel="air_flow",
                            volume_channel="air_volume", pressure_channel="air_pressure", meter="m-comp",
                            flow_meter="m-air", control=control, capacity_m3_per_min=6.2, full_load_power_kw=37.0,
                            unload_power_kw=11.0 if control == "load_unload" else 4.5, receiver_m3=2.5,
                            pressure_band_mpa=(0.62, 0.70), demand_production_m3min=3.2, demand_lunch_m3min=0.6,
                            leak_m3min=leak_share * 6.2, stop_outside_production=compressor_stops_at_night)]
    main = MainSpec(channel="main_power", meter="m-main", energy_channel="main_energy",
                    unmetered_production_kw=12.0, unmetered_standby_kw=2.5)
    if size == "large":
        main.unmetered_production_kw, main.unmetered_standby_kw = 60.0, 8.0
        for i in range(16):
            prod = float(np.round(rng.uniform(8, 75), 1))
            off = rng.random() < 0.3
            loads.append(LoadSpec(channel=f"line{i + 1:02d}_power", meter=f"m-line{i + 1:02d}",
                                  equipment_kind=_KINDS[i % len(_KINDS)], production_kw=prod,
                                  lunch_kw=float(np.round(prod * rng.uniform(0.1, 0.5), 1)),
                                  standby_kw=0.0 if off else float(np.round(prod * rng.uniform(0.04, 0.2), 2))))
        loads.append(LoadSpec(channel="hall_lighting_power", meter="m-hall", kind="lighting", production_kw=24.0,
                              lunch_kw=12.0, standby_kw=1.6, standby_allowance_kw=1.2, noise=min(noise, 0.01)))
        loads.append(LoadSpec(channel="office_hvac_power", meter="m-office", kind="hvac", production_kw=8.0,
                              hvac_kw_per_degc=1.8, standby_kw=0.8))
        comps.append(CompressorSpec(system="air2", power_channel="compressor2_power", flow_channel="air2_flow",
                                    pressure_channel="air2_pressure", meter="m-comp2", flow_meter="m-air2",
                                    control="vsd" if control == "load_unload" else "load_unload",
                                    capacity_m3_per_min=11.0, full_load_power_kw=75.0, receiver_m3=6.0,
                                    pressure_band_mpa=(0.60, 0.70), demand_production_m3min=7.5,
                                    demand_lunch_m3min=2.0, leak_m3min=0.12 * 11.0))
    sc = Scenario(scenario=ScenarioSection(name=f"{size}-{control}", noise=noise), calendar=calendar or
                  CalendarSection(company_holidays=[{"name": "年末年始", "from": "12-29", "to": "01-03"},
                                                    {"name": "お盆", "from": "08-13", "to": "08-16"}]),
                  main=main, loads=loads, compressors=comps)
    if events:
        sc.events = [EventSpec(kind="left_on", channel="press_power", count=1),
                     EventSpec(kind="holiday_run", count=1),
                     EventSpec(kind="night_high", channel="machining_power", count=1),
                     EventSpec(kind="leak_growth", system="air1", growth_m3min_per_week=0.08)]
        if size == "large":
            sc.events.append(EventSpec(kind="left_on", channel="line03_power", count=1))
    if faults:
        sc.faults = [FaultSpec(meter="m-hvac", kind="timeout", count=3, duration_min=20),
                     FaultSpec(meter="m-machining", kind="exception", count=2, duration_min=15),
                     FaultSpec(meter="m-press", kind="garbage", count=2, duration_min=5),
                     FaultSpec(meter="m-lighting", kind="stuck", count=1, duration_min=120),
                     FaultSpec(meter="m-air", kind="gap", count=1, duration_min=90),
                     FaultSpec(meter="m-main", kind="gap", count=1, duration_min=45)]
    return Scenario.model_validate(sc.model_dump())
