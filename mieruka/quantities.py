"""The quantities a channel can carry.  Names carry their unit, so a value is
never ambiguous (`power_kw`, not `power`)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quantity:
    name: str
    unit: str
    counter: bool = False       # a running total (energy, volume): analytics use its differences
    rate_of: str | None = None  # the counter this rate integrates to (power_kw -> energy_kwh)
    description: str = ""


_ALL = [
    Quantity("power_kw", "kW", rate_of="energy_kwh", description="active power"),
    Quantity("energy_kwh", "kWh", counter=True, description="active energy counter"),
    Quantity("air_flow_m3min", "m3/min", rate_of="air_volume_m3", description="compressed-air flow (free air)"),
    Quantity("air_volume_m3", "m3", counter=True, description="compressed-air volume counter"),
    Quantity("pressure_mpa", "MPa", description="gauge pressure"),
    Quantity("temperature_c", "degC", description="temperature"),
    Quantity("voltage_v", "V", description="voltage"),
    Quantity("current_a", "A", description="current"),
    Quantity("power_factor", "1", description="power factor"),
    Quantity("frequency_hz", "Hz", description="frequency"),
    Quantity("reactive_power_kvar", "kvar", rate_of="reactive_energy_kvarh", description="reactive power"),
    Quantity("reactive_energy_kvarh", "kvarh", counter=True, description="reactive energy counter (lagging)"),
    Quantity("gas_flow_m3h", "m3/h", rate_of="gas_volume_m3", description="gas flow"),
    Quantity("gas_volume_m3", "m3", counter=True, description="gas volume counter"),
    Quantity("water_volume_m3", "m3", counter=True, description="water volume counter"),
]

QUANTITIES: dict[str, Quantity] = {q.name: q for q in _ALL}
