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
