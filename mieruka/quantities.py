"""The quantities a channel can carry.  Names carry their unit, so a value is
never ambiguous (`power_kw`, not `power`).

Each quantity has physical bounds (`lo`, `hi`): values no meter in a factory can
produce (a 1e12 kW reading is a decoding error or a bad cell, not a load).  They are
the one place both paths use: the collector flags a reading outside them (or outside
a register map's or channel's narrower bounds) `out_of_range`, and so does the
recording reader (`flag_out_of_range`), so analytics never see such a value.  The
bounds are deliberately wide (a 1 GW incomer, a PWh counter): they catch garbage,
not unusual plants; a channel's own `min_value`/`max_value` narrows them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Quantity:
    name: str
    unit: str
    counter: bool = False       # a running total (energy, volume): analytics use its differences
    rate_of: str | None = None  # the counter this rate integrates to (power_kw -> energy_kwh)
    description: str = ""
    lo: float = -math.inf       # physical bounds (inclusive), in `unit`
    hi: float = math.inf


_ALL = [
    # signed: export, generation and meters wired the other way round read negative
    Quantity("power_kw", "kW", rate_of="energy_kwh", description="active power", lo=-1e6, hi=1e6),
    Quantity("energy_kwh", "kWh", counter=True, description="active energy counter", lo=-1e12, hi=1e12),
    Quantity("air_flow_m3min", "m3/min", rate_of="air_volume_m3", description="compressed-air flow (free air)",
             lo=-1e4, hi=1e4),
    Quantity("air_volume_m3", "m3", counter=True, description="compressed-air volume counter", lo=-1e13, hi=1e13),
    # gauge: a full vacuum is -0.1013 MPa; 100 MPa is far beyond any factory's hydraulics
    Quantity("pressure_mpa", "MPa", description="gauge pressure", lo=-0.11, hi=100.0),
    Quantity("temperature_c", "degC", description="temperature", lo=-273.15, hi=3000.0),
    Quantity("voltage_v", "V", description="voltage", lo=-1e6, hi=1e6),
    Quantity("current_a", "A", description="current", lo=-1e6, hi=1e6),
    # meters round; a few report 1.0005: allow a hair over 1, not a percentage (100)
    Quantity("power_factor", "1", description="power factor", lo=-1.01, hi=1.01),
    Quantity("frequency_hz", "Hz", description="frequency", lo=0.0, hi=1000.0),
    Quantity("reactive_power_kvar", "kvar", rate_of="reactive_energy_kvarh", description="reactive power",
             lo=-1e6, hi=1e6),
    Quantity("reactive_energy_kvarh", "kvarh", counter=True, description="reactive energy counter (lagging)",
             lo=-1e12, hi=1e12),
    Quantity("gas_flow_m3h", "m3/h", rate_of="gas_volume_m3", description="gas flow", lo=-1e6, hi=1e6),
    Quantity("gas_volume_m3", "m3", counter=True, description="gas volume counter", lo=-1e13, hi=1e13),
    Quantity("water_volume_m3", "m3", counter=True, description="water volume counter", lo=-1e13, hi=1e13),
]

QUANTITIES: dict[str, Quantity] = {q.name: q for q in _ALL}


_RATE_SECONDS = {"kW": 3600.0, "kvar": 3600.0, "m3/min": 60.0, "m3/h": 3600.0}   # rate unit -> s per counter unit


def counter_max_rate_per_s(counter: str) -> float | None:
    """The fastest a counter can run, in its unit per second: the physical bound of the
    rate that integrates to it (1e6 kW -> 278 kWh/s).  None when no rate is known."""
    for q in _ALL:
        if q.rate_of == counter and q.unit in _RATE_SECONDS:
            return max(abs(q.lo), abs(q.hi)) / _RATE_SECONDS[q.unit]
    return None


def bounds(quantity: str, *narrower: tuple[float | None, float | None]) -> tuple[float, float]:
    """The plausible range of a channel: the quantity's physical bounds, narrowed by
    any (min, max) pairs given (a register map field's, a channel's; None = not set)."""
    q = QUANTITIES[quantity]
    lo = max([q.lo] + [a for a, _ in narrower if a is not None])
    hi = min([q.hi] + [b for _, b in narrower if b is not None])
    return lo, hi


def out_of_range(quantity: str, values: np.ndarray) -> np.ndarray:
    """Mask of values outside the quantity's physical bounds (NaN is not flagged:
    a missing value has its own quality)."""
    q = QUANTITIES[quantity]
    v = np.asarray(values, np.float64)
    with np.errstate(invalid="ignore"):
        return (v < q.lo) | (v > q.hi) | np.isinf(v)


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
