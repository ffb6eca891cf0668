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
    Quantity("reactive_power_kvar", "kvar", description="reactive power"),
    Quantity("gas_flow_m3h", "m3/h", rate_of="gas_volume_m3", description="gas flow"),
    Quantity("gas_volume_m3", "m3", counter=True, description="gas volume counter"),
    Quantity("water_volume_m3", "m3", counter=True, description="water volume counter"),
]

QUANTITIES: dict[str, Quantity] = {q.name: q for q in _ALL}

# Japanese (and plain English) names people write in mapping files and headers
_ALIASES = {
    "電力": "power_kw", "有効電力": "power_kw", "power": "power_kw", "active_power": "power_kw",
    "電力量": "energy_kwh", "有効電力量": "energy_kwh", "energy": "energy_kwh",
    "流量": "air_flow_m3min", "空気流量": "air_flow_m3min", "エア流量": "air_flow_m3min", "air_flow": "air_flow_m3min",
    "積算流量": "air_volume_m3", "空気量": "air_volume_m3", "air_volume": "air_volume_m3",
    "圧力": "pressure_mpa", "pressure": "pressure_mpa", "温度": "temperature_c", "temperature": "temperature_c",
    "電圧": "voltage_v", "voltage": "voltage_v", "電流": "current_a", "current": "current_a",
    "力率": "power_factor", "周波数": "frequency_hz", "frequency": "frequency_hz",
    "無効電力": "reactive_power_kvar", "reactive_power": "reactive_power_kvar",
    "ガス流量": "gas_flow_m3h", "gas_flow": "gas_flow_m3h", "ガス量": "gas_volume_m3", "gas_volume": "gas_volume_m3",
    "水量": "water_volume_m3", "water_volume": "water_volume_m3",
}


def parse_quantity(text: str) -> str:
    """A quantity name (`power_kw`) or a Japanese/English alias (`電力`, `流量`, `power`)."""
    import unicodedata
    key = unicodedata.normalize("NFKC", str(text)).strip()
    if key in QUANTITIES:
        return key
    name = _ALIASES.get(key) or _ALIASES.get(key.lower())
    if name is None:
        raise ValueError(f"unknown quantity {text!r}; one of {', '.join(QUANTITIES)} (or 電力, 電力量, 流量, 圧力, ...)")
    return name
