"""Energy kinds that count for Scope 1 and 2, with English and Japanese names.

:func:`normalize_energy` turns what people write in a bill sheet (`電力`, `都市ガス`,
`LPG`, `プロパン`, `A重油`) into one canonical name (`electricity`, `city_gas`,
`lpg`, `a_heavy_oil`).  Industrial gases (oxygen, nitrogen, argon ...) are
refused with a message: they are bought as materials, not burnt, and do not
count as energy CO2 (their production's electricity is the supplier's Scope 2).
"""
from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass

# dimensions from mieruka.units
_EL, _GAS, _GASN, _LIQ, _MASS, _HEAT = ("energy_electric", "volume_gas", "volume_gas_normal",
                                       "volume_liquid", "mass", "heat")


@dataclass(frozen=True)
class EnergyKind:
    name: str
    label_ja: str
    scope: int                      # 1: burnt on site; 2: bought electricity/heat
    dimensions: tuple[str, ...]     # amount unit dimensions that fit
    aliases: tuple[str, ...] = ()
    liquid_fuel: bool = False       # priced by `tariffs.fuel_jpy_per_l` when no own price


_KINDS = [
    EnergyKind("electricity", "電力", 2, (_EL,), ("電気", "電力", "買電", "系統電力", "power", "grid_electricity")),
    EnergyKind("city_gas", "都市ガス", 1, (_GAS, _GASN), ("都市ガス", "ガス", "town_gas", "13a", "都市ガス13a")),
    EnergyKind("lpg", "LPG", 1, (_MASS,), ("液化石油ガス", "プロパン", "プロパンガス", "propane", "lp_gas", "lpガス")),
    EnergyKind("lng", "LNG", 1, (_MASS,), ("液化天然ガス",)),
    EnergyKind("natural_gas", "天然ガス", 1, (_GAS, _GASN), ("天然ガス", "その他可燃性天然ガス")),
    EnergyKind("kerosene", "灯油", 1, (_LIQ,), ("灯油",), True),
    EnergyKind("diesel", "軽油", 1, (_LIQ,), ("軽油", "gas_oil", "diesel_oil"), True),
    EnergyKind("gasoline", "ガソリン", 1, (_LIQ,), ("ガソリン", "揮発油", "petrol"), True),
    EnergyKind("a_heavy_oil", "A重油", 1, (_LIQ,), ("a重油", "重油a", "heavy_oil_a", "fuel_oil_a"), True),
    EnergyKind("bc_heavy_oil", "B・C重油", 1, (_LIQ,), ("b・c重油", "bc重油", "c重油", "b重油", "heavy_oil_c",
                                                    "fuel_oil_c", "c_heavy_oil", "b_heavy_oil"), True),
    EnergyKind("crude_oil", "原油", 1, (_LIQ,), ("原油",), True),
    EnergyKind("condensate", "NGL・コンデンセート", 1, (_LIQ,), ("コンデンセート", "ngl"), True),
    EnergyKind("naphtha", "ナフサ", 1, (_LIQ,), ("ナフサ",), True),
    EnergyKind("jet_fuel", "ジェット燃料油", 1, (_LIQ,), ("ジェット燃料油", "ジェット燃料"), True),
    EnergyKind("lubricating_oil", "潤滑油", 1, (_LIQ,), ("潤滑油",), True),
    EnergyKind("imported_coking_coal", "輸入原料炭", 1, (_MASS,), ("原料炭", "輸入原料炭", "coking_coal")),
    EnergyKind("imported_steam_coal", "輸入一般炭", 1, (_MASS,), ("一般炭", "輸入一般炭", "steam_coal", "coal", "石炭")),
    EnergyKind("domestic_steam_coal", "国産一般炭", 1, (_MASS,), ("国産一般炭",)),
    EnergyKind("imported_anthracite", "輸入無煙炭", 1, (_MASS,), ("無煙炭", "輸入無煙炭", "anthracite")),
    EnergyKind("coal_coke", "石炭コークス", 1, (_MASS,), ("石炭コークス", "コークス", "coke")),
    EnergyKind("petroleum_coke", "石油コークス", 1, (_MASS,), ("石油コークス",)),
    EnergyKind("coal_tar", "コールタール", 1, (_MASS,), ("コールタール",)),
    EnergyKind("asphalt", "アスファルト", 1, (_MASS,), ("アスファルト",)),
    EnergyKind("steam", "産業用蒸気", 2, (_HEAT,), ("蒸気", "産業用蒸気", "industrial_steam", "steam_industrial")),
    EnergyKind("hot_water", "温水", 2, (_HEAT,), ("温水", "産業用以外の蒸気", "steam_other", "district_heat")),
    EnergyKind("cold_water", "冷水", 2, (_HEAT,), ("冷水", "chilled_water", "district_cooling")),
]
KINDS: dict[str, EnergyKind] = {k.name: k for k in _KINDS}

# bought as materials, not energy: refused with this explanation
_NOT_ENERGY = {"oxygen", "酸素", "o2", "nitrogen", "窒素", "n2", "argon", "アルゴン", "ar", "hydrogen_gas_cylinder",
               "helium", "ヘリウム", "co2_gas", "炭酸ガス", "液化炭酸ガス", "液化窒素", "液化酸素", "液体窒素",
               "液体酸素", "液化アルゴン", "industrial_gas", "産業ガス", "工業ガス"}


def _fold(text: str) -> str:
    s = unicodedata.normalize("NFKC", str(text)).strip().lower()
    return s.replace(" ", "_").replace("-", "_").replace("･", "・")


_LOOKUP: dict[str, str] = {}
for _k in _KINDS:
    for _a in (_k.name, _k.label_ja, *_k.aliases):
        _LOOKUP[_fold(_a)] = _k.name


def normalize_energy(name: str) -> str:
    """Canonical energy kind for an English or Japanese name; ValueError otherwise
    (with suggestions, and a clear word for industrial gases)."""
    key = _fold(name)
    if key in _LOOKUP:
        return _LOOKUP[key]
    if key in _NOT_ENERGY:
        raise ValueError(f"{name!r} is an industrial gas bought as a material: it is not an energy and does "
                         "not count for Scope 1/2 CO2 (leave it out of the energy sheet)")
    close = [k for k in KINDS if key and k.startswith(key)][:3] or \
        difflib.get_close_matches(key, list(_LOOKUP), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown energy {name!r}{hint} (known: {', '.join(KINDS)})")


def energy_kind(name: str) -> EnergyKind:
    return KINDS[normalize_energy(name)]


def usual_units(energy: str) -> list[str]:
    """The amount units the energy is measured in (those its published factors use)."""
    from .units import UNITS
    kind = energy_kind(energy)
    return [u.name for u in UNITS.values() if u.dimension in kind.dimensions]


def check_unit_fits(energy: str, unit) -> None:
    """Refuse an amount unit whose dimension does not fit the energy (L of electricity)."""
    kind = energy_kind(energy)
    if unit.dimension not in kind.dimensions:
        raise ValueError(f"unit {unit.name} does not fit {kind.name} ({kind.label_ja}); "
                         f"use {', '.join(usual_units(energy))}")


_FUEL_DIMENSIONS = (_MASS, _LIQ, _GAS, _GASN, _HEAT)


def measurable_in(energy: str) -> tuple[str, ...]:
    """Unit dimensions the energy can physically be measured in: a fuel by mass,
    liquid or gas volume or heat (LPG in t or kL, both real); electricity only as
    electric energy, bought heat only as heat."""
    kind = energy_kind(energy)
    return _FUEL_DIMENSIONS if kind.scope == 1 else kind.dimensions


def unusual_unit_note(energy: str, unit, published: str | None = None) -> str | None:
    """With a row's own factor the amount may be in a unit the energy is not usually
    measured in (LPG in kL, as the Miyagi guideline's sample sheet does): it is
    computed, and this says what to check (`published`: the factor set's figure,
    e.g. "3.00 t-CO2/t").  None when the unit is the usual one; ValueError when the
    energy cannot be measured in that unit at all (electricity in L)."""
    kind = energy_kind(energy)
    if unit.dimension in kind.dimensions:
        return None
    if unit.dimension not in measurable_in(energy):
        check_unit_fits(energy, unit)            # raises: not even an own factor makes it fit
    usual = ", ".join(usual_units(energy))
    known = f"; the published factor is {published}" if published else ""
    return (f"{kind.name} ({kind.label_ja}) is usually measured in {usual}, here in {unit.name}: computed "
            f"with the row's own factor per {unit.name}; check that your factor really is per {unit.name}{known}")
