"""Amount units and emission-factor units, with their dimensions.

An amount of energy is a number and a unit (`12 千m3`, `1000 L`, `10 MWh`).
Units convert only within their dimension:

=================  =========================================  ===========
dimension          units                                      base unit
=================  =========================================  ===========
energy_electric    kWh, MWh, 千kWh (= MWh), GWh               kWh
volume_gas         m3, 千m3  (gas at the SHK reference state)  m3
volume_gas_normal  Nm3, 千Nm3 (0 °C, 1 atm "normal" m3)         Nm3
volume_liquid      L, kL                                      L
mass               kg, t                                      kg
heat               MJ, GJ, TJ                                 GJ
=================  =========================================  ===========

Why Nm3 is its own dimension: the 2023 SHK list gives gas factors per 千m3
at 25 °C / 1 bar, the older list per 千Nm3 at 0 °C / 1 atm.  The same gas
is about 9 % (298.15 / 273.15 × 1.01325 / 1) more "m3" at 25 °C than "Nm3", and
a gas bill's m3 may be at yet another state.  Converting silently would hide
a 9 % error, so mieruka refuses to mix them: give the amount in the unit of the
factor, or give your supplier's own factor for the unit on your bill.

Factor units are "<mass> CO2 per <amount unit>": `t-CO2/kWh`, `kg-CO2/千m3`,
`tCO2/kL`, `t-CO₂/t`, `kgCO2/MWh`.  :func:`parse_factor_unit` returns the mass
in tonnes per "<mass>" and the per-unit.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

DIMENSIONS = ("energy_electric", "volume_gas", "volume_gas_normal", "volume_liquid", "mass", "heat")


@dataclass(frozen=True)
class Unit:
    name: str            # canonical spelling, e.g. "千m3"
    dimension: str
    to_base: float       # how many base units one of this unit is


_UNITS = [
    Unit("kWh", "energy_electric", 1.0),
    Unit("MWh", "energy_electric", 1e3),
    Unit("千kWh", "energy_electric", 1e3),
    Unit("GWh", "energy_electric", 1e6),
    Unit("m3", "volume_gas", 1.0),
    Unit("千m3", "volume_gas", 1e3),
    Unit("Nm3", "volume_gas_normal", 1.0),
    Unit("千Nm3", "volume_gas_normal", 1e3),
    Unit("L", "volume_liquid", 1.0),
    Unit("kL", "volume_liquid", 1e3),
    Unit("kg", "mass", 1.0),
    Unit("t", "mass", 1e3),
    Unit("MJ", "heat", 1e-3),
    Unit("GJ", "heat", 1.0),
    Unit("TJ", "heat", 1e3),
]
UNITS: dict[str, Unit] = {u.name: u for u in _UNITS}

# other spellings, after _fold() (lower case, no spaces, ³ -> 3, full width -> ASCII)
_ALIASES = {
    "kwh": "kWh", "mwh": "MWh", "千kwh": "千kWh", "1000kwh": "千kWh", "thousandkwh": "千kWh", "gwh": "GWh",
    "m3": "m3", "m^3": "m3", "立方メートル": "m3", "立米": "m3",
    "千m3": "千m3", "1000m3": "千m3", "thousandm3": "千m3", "km3": None,   # km3 is a cubic kilometre: refuse
    "nm3": "Nm3", "nm^3": "Nm3", "千nm3": "千Nm3", "1000nm3": "千Nm3", "thousandnm3": "千Nm3",
    "l": "L", "litre": "L", "liter": "L", "litres": "L", "liters": "L", "リットル": "L", "ℓ": "L",
    "kl": "kL", "kilolitre": "kL", "kiloliter": "kL", "1000l": "kL", "千l": "kL", "キロリットル": "kL",
    "kg": "kg", "キログラム": "kg",
    "t": "t", "ton": "t", "tonne": "t", "tonnes": "t", "tons": "t", "トン": "t", "1000kg": "t", "千kg": "t",
    "mj": "MJ", "gj": "GJ", "tj": "TJ",
}


def _fold(text: str) -> str:
    s = unicodedata.normalize("NFKC", text).strip()   # ｍ³ -> m3, ＫＬ -> KL
    return re.sub(r"[\s_]", "", s).lower()


def parse_unit(text: str) -> Unit:
    """The amount unit for a spelling (`m³`, `thousand m3`, `1000kWh`, `KL`, `litre`);
    ValueError naming the accepted units otherwise."""
    key = _fold(str(text))
    name = _ALIASES.get(key)
    if name is None:
        raise ValueError(f"unknown unit {text!r}; use one of {', '.join(UNITS)}")
    return UNITS[name]


def convert(amount, from_unit: str | Unit, to_unit: str | Unit):
    """Convert an amount (number or numpy array) between units of one dimension."""
    a = from_unit if isinstance(from_unit, Unit) else parse_unit(from_unit)
    b = to_unit if isinstance(to_unit, Unit) else parse_unit(to_unit)
    check_same_dimension(a, b)
    if a.to_base == b.to_base:
        return amount
    return amount * (a.to_base / b.to_base)


def check_same_dimension(a: Unit, b: Unit) -> None:
    if a.dimension == b.dimension:
        return
    gas = {"volume_gas", "volume_gas_normal"}
    if {a.dimension, b.dimension} == gas:
        raise ValueError(f"{a.name} and {b.name} are gas volumes at different reference states "
                         "(m3 at 25 °C/1 bar vs Nm3 at 0 °C/1 atm, about 9 % apart); mieruka does not "
                         "convert them: give the amount in the factor's unit or a factor for your unit")
    raise ValueError(f"{a.name} ({a.dimension}) cannot be converted to {b.name} ({b.dimension})")


# ----------------------------------------------------------------- factor units
_MASS_T = {"t": 1.0, "kg": 1e-3, "g": 1e-6}
_FACTOR = re.compile(r"^(t|kg|g)-?co2(?:e|eq)?/(.+)$")


@dataclass(frozen=True)
class FactorUnit:
    text: str
    t_per_mass: float    # tonnes CO2 per one of the numerator's mass unit
    per: Unit            # the amount unit the factor is per

    def t_co2(self, value: float, amount, amount_unit: Unit):
        """t-CO2 for `amount` in `amount_unit` at `value` in this factor unit
        (refuses an amount unit of another dimension)."""
        return convert(amount, amount_unit, self.per) * value * self.t_per_mass


def parse_factor_unit(text: str) -> FactorUnit:
    """`t-CO2/kWh`, `kg-CO2/千m3`, `tCO2/kL`, `t-CO₂/t`, `kgCO2/MWh` -> FactorUnit."""
    key = _fold(str(text)).replace("co₂", "co2").replace("／", "/")
    m = _FACTOR.match(key)
    if not m:
        raise ValueError(f"factor unit {text!r} is not '<t|kg|g>-CO2/<unit>', e.g. t-CO2/kWh or kg-CO2/千m3")
    try:
        per = parse_unit(m.group(2))
    except ValueError as e:
        raise ValueError(f"factor unit {text!r}: {e}") from None
    return FactorUnit(str(text), _MASS_T[m.group(1)], per)


# ----------------------------------------------------------------- meter units
# What loggers and meters write beside a value (`P(kW)`, `電力量[Wh]`, `流量 L/min`),
# as a factor to the mieruka quantity's own unit (`power_kw` is kW, ...).  These are
# rates and instrument readings, a separate table from the amount units above so
# that a CO2 amount can never be given in kW.
@dataclass(frozen=True)
class MeterUnit:
    name: str
    dimension: str       # power, energy, air_flow, volume, pressure, ...
    to_base: float       # base units per one of this unit (base: kW, kWh, m3/min, m3, MPa, ...)
    offset: float = 0.0  # added after scaling (temperatures)


_METER_UNITS = [
    MeterUnit("W", "power", 1e-3), MeterUnit("kW", "power", 1.0), MeterUnit("MW", "power", 1e3),
    MeterUnit("Wh", "energy", 1e-3), MeterUnit("kWh", "energy", 1.0), MeterUnit("MWh", "energy", 1e3),
    MeterUnit("m3/min", "air_flow", 1.0), MeterUnit("L/min", "air_flow", 1e-3), MeterUnit("m3/h", "air_flow", 1 / 60),
    MeterUnit("L/s", "air_flow", 60e-3), MeterUnit("m3/s", "air_flow", 60.0),
    MeterUnit("m3", "volume", 1.0), MeterUnit("L", "volume", 1e-3), MeterUnit("kL", "volume", 1.0),
    MeterUnit("MPa", "pressure", 1.0), MeterUnit("kPa", "pressure", 1e-3), MeterUnit("Pa", "pressure", 1e-6),
    MeterUnit("bar", "pressure", 0.1), MeterUnit("kgf/cm2", "pressure", 0.0980665), MeterUnit("psi", "pressure", 0.00689476),
    MeterUnit("degC", "temperature", 1.0), MeterUnit("K", "temperature", 1.0, -273.15),
    MeterUnit("V", "voltage", 1.0), MeterUnit("kV", "voltage", 1e3),
    MeterUnit("A", "current", 1.0), MeterUnit("mA", "current", 1e-3),
    MeterUnit("1", "ratio", 1.0), MeterUnit("%", "ratio", 1e-2),
    MeterUnit("Hz", "frequency", 1.0),
    MeterUnit("var", "reactive_power", 1e-3), MeterUnit("kvar", "reactive_power", 1.0),
    MeterUnit("varh", "reactive_energy", 1e-3), MeterUnit("kvarh", "reactive_energy", 1.0),
]
METER_UNITS: dict[str, MeterUnit] = {u.name: u for u in _METER_UNITS}
_METER_ALIASES = {
    **{u.name.lower(): u.name for u in _METER_UNITS},
    "m^3/min": "m3/min", "nm3/min": "m3/min", "立米/分": "m3/min", "m3/分": "m3/min", "l/分": "L/min",
    "nl/min": "L/min", "lpm": "L/min", "m^3/h": "m3/h", "m3/hr": "m3/h", "nm3/h": "m3/h",
    "m^3": "m3", "nm3": "m3", "立米": "m3", "リットル": "L", "ℓ": "L", "ℓ/min": "L/min",
    "℃": "degC", "°c": "degC", "c": "degC", "degc": "degC", "kelvin": "K",
    "kgf/cm^2": "kgf/cm2", "kg/cm2": "kgf/cm2", "mpa(g)": "MPa", "kpa(g)": "kPa",
    "kva r": "kvar", "kvar": "kvar", "kvarh": "kvarh", "pf": "1",
}
# mieruka quantity -> the dimension and base unit its values are in
QUANTITY_DIMENSION = {
    "power_kw": "power", "energy_kwh": "energy", "air_flow_m3min": "air_flow", "air_volume_m3": "volume",
    "pressure_mpa": "pressure", "temperature_c": "temperature", "voltage_v": "voltage", "current_a": "current",
    "power_factor": "ratio", "frequency_hz": "frequency", "reactive_power_kvar": "reactive_power",
    "gas_flow_m3h": "air_flow", "gas_volume_m3": "volume", "water_volume_m3": "volume",
}


def parse_meter_unit(text: str) -> MeterUnit:
    """`kW`, `ｋＷ`, `L/min`, `m³/min`, `℃`, `kgf/cm2` -> MeterUnit; ValueError naming the accepted ones."""
    key = _fold(str(text)).replace("／", "/").replace("³", "3").replace("²", "2")
    name = _METER_ALIASES.get(key)
    if name is None:
        raise ValueError(f"unknown unit {text!r}; use one of {', '.join(METER_UNITS)}")
    return METER_UNITS[name]


def meter_conversion(unit: str | MeterUnit, quantity: str) -> tuple[float, float]:
    """(scale, offset) turning values in `unit` into `quantity`'s own unit:
    `value_in_quantity_unit = value * scale + offset`.  Refuses another dimension."""
    u = unit if isinstance(unit, MeterUnit) else parse_meter_unit(unit)
    dim = QUANTITY_DIMENSION.get(quantity)
    if dim is None:
        raise ValueError(f"unknown quantity {quantity!r}")
    if u.dimension != dim:
        raise ValueError(f"unit {u.name} ({u.dimension}) does not fit {quantity} ({dim})")
    scale = u.to_base
    if quantity == "gas_flow_m3h":          # base of the air_flow dimension is m3/min
        scale *= 60.0
    return scale, u.offset
