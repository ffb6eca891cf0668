"""Emission-factor files: loading, validation and look-up.

Every `*.toml` in `config/factors/` is read, then the user's own files
(`[co2] factor_files` in the site config), later files overriding earlier
ones.  A file may hold (format in docs/co2.md):

- `set = "ID"` + `[factors]`: fuel factors of a factor set (SHK lists).  A file
  naming an existing set adds or replaces factors in it; `extends = "ID"` starts
  a new set from a copy of another.
- `[[suppliers]]`: a supplier's own factors by fiscal year of results, with
  `basic` (基礎) and `adjusted` (調整後, per menu): electricity retailers, or a gas
  supplier's own city-gas factor.
- `[defaults.ENERGY]`: the factor used when no supplier is known (代替値).

Every factor keeps `verified` (false marks a figure that could not be checked
against the official list) and the title/source of the file it came from.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ...config import FACTORS_DIR
from ...energy import check_unit_fits, normalize_energy
from ...errors import ConfigError
from ...site import format_validation_error, read_toml
from ...units import FactorUnit, parse_factor_unit


class FactorLookupError(ValueError):
    """No factor for what was asked; `field` names the input field to blame
    (supplier, menu, energy, contract) so that CSV errors point at the right column."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


# ------------------------------------------------------------- file models
class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _unit_ok(v: str) -> str:
    parse_factor_unit(v)
    return v


class FactorEntry(_M):
    value: float = Field(ge=0)
    unit: str
    heat_gj_per_unit: float | None = Field(default=None, gt=0)
    carbon_tc_per_gj: float | None = Field(default=None, gt=0)
    verified: bool = True
    note: str | None = None
    label: str | None = None
    _u = field_validator("unit")(_unit_ok)


class SupplierEntry(_M):
    name: str = Field(min_length=1)
    energy: str = "electricity"
    aliases: list[str] = Field(default_factory=list)
    results_fiscal_year: int | None = None
    unit: str = "t-CO2/kWh"
    basic: float | None = Field(default=None, ge=0)
    adjusted: dict[str, float] = Field(default_factory=dict)
    verified: bool = True
    note: str | None = None
    _u = field_validator("unit")(_unit_ok)
    _energy = field_validator("energy")(normalize_energy)


class FactorFile(_M):
    title: str = Field(min_length=1)
    source: str = Field(min_length=1)
    revision: str | None = None
    set: str | None = None
    extends: str | None = None
    factors: dict[str, FactorEntry] = Field(default_factory=dict)
    suppliers: list[SupplierEntry] = Field(default_factory=list)
    defaults: dict[str, FactorEntry] = Field(default_factory=dict)


# ---------------------------------------------------------- loaded factors
@dataclass(frozen=True)
class Factor:
    """One factor as used: value in `unit`, where it came from, whether verified."""

    energy: str
    value: float
    unit: FactorUnit
    set: str                      # factor set id, or the stem of the supplier/default file
    title: str
    source: str
    file: str
    verified: bool = True
    heat_gj_per_unit: float | None = None
    carbon_tc_per_gj: float | None = None
    note: str | None = None
    supplier: str | None = None
    menu: str | None = None
    results_fiscal_year: int | None = None
    basis: str = "fuel"           # fuel | location | market | row

    def as_dict(self) -> dict:
        d = {"set": self.set, "energy": self.energy, "value": self.value, "unit": self.unit.text,
             "basis": self.basis, "source": self.source, "title": self.title, "verified": self.verified}
        for k in ("supplier", "menu", "results_fiscal_year", "note", "heat_gj_per_unit", "carbon_tc_per_gj"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d


@dataclass
class FactorSet:
    id: str
    title: str
    source: str
    revision: str | None
    factors: dict[str, Factor] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


@dataclass
class Supplier:
    entry: SupplierEntry
    title: str
    source: str
    file: str

    def matches(self, name: str) -> bool:
        key = _fold(name)
        return key == _fold(self.entry.name) or key in {_fold(a) for a in self.entry.aliases}


def _fold(s: str) -> str:
    return unicodedata.normalize("NFKC", s).strip().casefold().replace(" ", "")


class FactorLibrary:
    """All factor sets, suppliers and defaults from the shipped and the user's files."""

    def __init__(self) -> None:
        self.sets: dict[str, FactorSet] = {}
        self.suppliers: list[Supplier] = []
        self.defaults: dict[str, Factor] = {}

    @classmethod
    def load(cls, extra_files: list[Path | str] = ()) -> "FactorLibrary":
        lib = cls()
        for p in sorted(FACTORS_DIR.glob("*.toml")):
            lib.add_file(p)
        for p in extra_files:
            lib.add_file(Path(p))
        return lib

    def add_file(self, path: Path) -> None:
        where = str(path)
        data = read_toml(path, "factor")
        try:
            f = FactorFile.model_validate(data)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, where, data, model=FactorFile)) from None
        if f.factors and not f.set:
            raise ConfigError(f"{where}: factors: needs `set = \"ID\"` naming the factor set they belong to")
        if f.set:
            self._add_set(f, where)
        for s in f.suppliers:
            self.suppliers.append(Supplier(s, f.title, f.source, where))
        for name, e in f.defaults.items():
            energy = self._energy(name, where, f"defaults.{name}")
            self.defaults[energy] = self._factor(energy, e, path.stem, f, where, f"defaults.{name}")

    def _add_set(self, f: FactorFile, where: str) -> None:
        if f.extends:
            if f.extends not in self.sets:
                raise ConfigError(f"{where}: extends: no factor set {f.extends!r} (known: {', '.join(self.sets)})")
            base = self.sets[f.extends]
            s = FactorSet(f.set, f.title, f.source, f.revision,
                          {k: replace(v, set=f.set) for k, v in base.factors.items()}, list(base.files))
            self.sets[f.set] = s
        s = self.sets.setdefault(f.set, FactorSet(f.set, f.title, f.source, f.revision))
        s.files.append(where)
        for name, e in f.factors.items():
            energy = self._energy(name, where, f"factors.{name}")
            s.factors[energy] = self._factor(energy, e, f.set, f, where, f"factors.{name}")

    @staticmethod
    def _energy(name: str, where: str, key: str) -> str:
        try:
            return normalize_energy(name)
        except ValueError as e:
            raise ConfigError(f"{where}: {key}: {e}") from None

    @staticmethod
    def _factor(energy: str, e: FactorEntry, set_id: str, f: FactorFile, where: str, key: str) -> Factor:
        fu = parse_factor_unit(e.unit)
        try:
            check_unit_fits(energy, fu.per)
        except ValueError as err:
            raise ConfigError(f"{where}: {key}.unit: {err}") from None
        note = " ".join(x for x in (e.label, e.note) if x) or None
        return Factor(energy, e.value, fu, set_id, f.title, f.source, where, e.verified,
                      e.heat_gj_per_unit, e.carbon_tc_per_gj, note)

    # ------------------------------------------------------------- look-up
    def factor_set(self, set_id: str) -> FactorSet:
        if set_id not in self.sets:
            raise ConfigError(f"unknown factor set {set_id!r}; known: {', '.join(sorted(self.sets))}")
        return self.sets[set_id]

    def has_supplier(self, energy: str, name: str) -> bool:
        return any(s.entry.energy == energy and s.matches(name) for s in self.suppliers)

    def supplier(self, energy: str, name: str, results_fy: int | None) -> tuple[Supplier, str | None]:
        """The supplier entry for `name` and the wanted results year: that year, else
        the latest earlier one, else the earliest later one (a note says so)."""
        # entries of one supplier share their aliases (a user's file may name it only once)
        names = {_fold(s.entry.name) for s in self.suppliers if s.entry.energy == energy and s.matches(name)}
        cands = [s for s in self.suppliers if s.entry.energy == energy and _fold(s.entry.name) in names]
        if not cands:
            known = sorted({s.entry.name for s in self.suppliers if s.entry.energy == energy})
            raise FactorLookupError(f"no {energy} factor for supplier {name!r} (known: {', '.join(known) or 'none'}; "
                                    "add one in a factor file, see docs/co2.md)", "supplier")
        if results_fy is None:
            return max(cands, key=lambda s: s.entry.results_fiscal_year or 0), None
        exact = [s for s in cands if s.entry.results_fiscal_year in (results_fy, None)]
        if exact:
            return exact[-1], None
        earlier = [s for s in cands if s.entry.results_fiscal_year < results_fy]
        pick = max(earlier, key=lambda s: s.entry.results_fiscal_year) if earlier else \
            min(cands, key=lambda s: s.entry.results_fiscal_year)
        return pick, f"no FY{results_fy} results for {pick.entry.name}: used FY{pick.entry.results_fiscal_year}"

    def supplier_factors(self, sup: Supplier, menu: str | None, note: str | None) -> tuple[Factor | None, Factor | None]:
        """(basic, adjusted-for-menu) factors of a supplier entry; menu None -> company_wide."""
        e = sup.entry
        fu = parse_factor_unit(e.unit)
        common = dict(energy=e.energy, unit=fu, set=Path(sup.file).stem, title=sup.title, source=sup.source, file=sup.file,
                      verified=e.verified, supplier=e.name, results_fiscal_year=e.results_fiscal_year)
        notes = " ".join(x for x in (e.note, note) if x) or None
        basic = Factor(value=e.basic, basis="location", note=notes, **common) if e.basic is not None else None
        key = _menu_key(e.adjusted, menu)
        if key is None and menu not in (None, "", "company_wide"):
            raise FactorLookupError(f"{e.name} FY{e.results_fiscal_year}: no adjusted factor for menu {menu!r} "
                                    f"(menus: {', '.join(e.adjusted) or 'none'})", "menu")
        adjusted = None
        if key is not None:
            adjusted = Factor(value=e.adjusted[key], basis="market", menu=key, note=notes, **common)
        return basic, adjusted


def _menu_key(adjusted: dict[str, float], menu: str | None) -> str | None:
    want = _fold(menu or "company_wide")
    keys = {_fold(k): k for k in adjusted}
    for cand in (want, f"menu_{want}", f"メニュー{want}"):
        if cand in keys:
            return keys[cand]
    starts = [k for f, k in keys.items() if f.startswith(f"menu_{want}_") or f.startswith(f"{want}_")]
    return starts[0] if len(starts) == 1 else None
