"""The CO2 engine: the one place that turns energy into t-CO2 and yen.

API (stable; detectors and the REST API call it)::

    engine = CO2Engine.from_site(cfg)                 # or CO2Engine("shk_2023")
    p = engine.price("kerosene", 1000, "L", "2024-05")
    p.t_co2, p.cost_jpy, p.factor_used                 # 2.50 t, yen or None, {set, energy, value, unit, source, verified, ...}
    engine.price_electricity_kwh(10_000, date(2024, 5, 1))
    engine.price_findings(findings, tariff_jpy_per_kwh=None)   # fills cost_jpy, co2_t, factor

`price(energy, amount, unit, period, contract=None, supplier=None, menu=None,
factor=None, factor_unit=None, cost_jpy=None) -> Priced`:

- `energy`: English or Japanese name (:func:`mieruka.energy.normalize_energy`);
  `unit`: any amount unit fitting the energy (:mod:`mieruka.units`);
  `period`: a date, datetime or "YYYY-MM" (picks the fiscal year of the
  electricity factor).
- Scope 1 fuels use the factor set (`shk_2023` by default); `t_co2_heat_route`
  is amount × heat value × carbon factor × 44/12 where the set gives both.
- Scope 2 electricity: `t_co2_location` from the retailer's basic factor
  (基礎排出係数; the 代替値 default when no retailer is known) and `t_co2_market`
  from the adjusted factor (調整後) of the contract's menu.  `t_co2` is the one the
  site chose (`[co2] scope2_method`, default "market").  The retailer comes from
  `contract` (a contract id of the site config), `supplier` (a contract id or a
  retailer name) or the site's default contract.  Its factor is that of results
  fiscal year = the energy's fiscal year − 1 (the list used for that year's
  report), unless the contract names `results_fiscal_year`.
- `factor`/`factor_unit` override the factor for this amount (a bill's own figure).
- Cost: `cost_jpy` as given, else from the site's tariffs, else None.

`price_findings(findings, tariff_jpy_per_kwh=None)` prices each
:class:`mieruka.models.Finding` (its `energy_kwh` of electricity, period =
finding start) and sets `co2_t`, `cost_jpy` (the given flat tariff, else the
site's time-of-use bands over [start, end), else its flat rate) and `factor`.
A finding on a channel whose meter is listed in a contract uses that contract.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ...calendar import fiscal_year
from ...energy import KINDS, check_unit_fits, normalize_energy, unusual_unit_note
from ...errors import ConfigError
from ...units import Unit, check_same_dimension, convert, parse_factor_unit, parse_unit
from .costs import tariff_cost_jpy, tou_cost_jpy
from .factors import Factor, FactorLibrary, FactorLookupError

C_TO_CO2 = 44.0 / 12.0


@dataclass
class Priced:
    energy: str
    scope: int
    amount: float
    unit: str
    t_co2: float                    # the headline figure (Scope 2: the site's method)
    t_co2_location: float           # Scope 1: same as t_co2
    t_co2_market: float
    cost_jpy: float | None
    factor_used: dict               # the factor behind t_co2
    factor_location: dict | None = None
    factor_market: dict | None = None
    t_co2_heat_route: float | None = None
    cost_source: str | None = None  # "input" | "tariff" | None
    warnings: list[str] | None = None   # computed, but worth a look (an unusual unit with an own factor)

    def as_dict(self) -> dict:
        """JSON-ready (the REST API returns this)."""
        return {k: v for k, v in self.__dict__.items() if v is not None} | {"verified": self.verified}

    @property
    def verified(self) -> bool:
        return all(f is None or f.get("verified", True)
                   for f in (self.factor_used, self.factor_location, self.factor_market))


def to_date(period) -> dt.date:
    """A date from a date, datetime, numpy datetime64 or 'YYYY-MM' / 'YYYY-MM-DD' text."""
    if isinstance(period, dt.datetime):
        return period.date()
    if isinstance(period, dt.date):
        return period
    if isinstance(period, np.datetime64):     # numpy times are UTC in mieruka: the UTC calendar day
        return period.astype("datetime64[D]").item()
    s = unicodedata.normalize("NFKC", str(period)).strip()     # full-width digits from a bill sheet
    for fmt in ("%Y-%m", "%Y-%m-%d", "%Y/%m", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(s, fmt).date()
        except ValueError:
            pass
    m = _JA_MONTH.match(s)
    if m:
        era, year, month, day = m.group(1), m.group(2), int(m.group(3)), int(m.group(4) or 1)
        y = 1 if year == "元" else int(year)
        if not era and (year == "元" or y < 1900):
            raise ValueError(f"{period!r}: a year without an era must have four digits (2024年4月, 令和6年4月)")
        if era:
            y += _ERA_START[era[0].upper() if era[0] in "RHrh" else era] - 1
        try:
            return dt.date(y, month, day)
        except ValueError:
            pass
    raise ValueError(f"{period!r} is not YYYY-MM, a date (YYYY-MM-DD), 2024年4月 or 令和6年4月")


# Japanese bills write months as 2024年4月 or in the era: 令和6年4月 (R6.4), 平成31年3月 (H31.3)
_ERA_START = {"令和": 2019, "R": 2019, "平成": 1989, "H": 1989}
_JA_MONTH = re.compile(r"^(令和|平成|[RHrh])?\s*(\d{1,4}|元)\s*[年.\-/]\s*(\d{1,2})\s*月?\s*(?:(\d{1,2})\s*日?)?\s*(?:分)?$")


class CO2Engine:
    def __init__(self, factor_set: str = "shk_2023", extra_files: list[Path | str] = (), contracts=(),
                 tariffs=None, scope2_method: str = "market", calendar=None, channel_meters: dict | None = None):
        self.library = FactorLibrary.load(list(extra_files))
        self.set = self.library.factor_set(factor_set)
        self.contracts = list(contracts)
        self.tariffs = tariffs
        if scope2_method not in ("market", "location"):
            raise ValueError("scope2_method must be 'market' or 'location'")
        self.scope2_method = scope2_method
        self.calendar = calendar
        self.channel_meters = channel_meters or {}

    @classmethod
    def from_site(cls, cfg, factor_set: str | None = None) -> "CO2Engine":
        from ...calendar import SiteCalendar
        meters = {c.id: m.id for m, c in cfg.channels()}
        try:
            return cls(factor_set or cfg.co2.factor_set, [cfg.resolve_path(p) for p in cfg.co2.factor_files],
                       cfg.contracts, cfg.tariffs, cfg.co2.scope2_method, SiteCalendar.from_config(cfg), meters)
        except ConfigError as e:
            if factor_set is not None and f"unknown factor set {factor_set!r}" in str(e):
                raise
            key = "co2.factor_set" if "unknown factor set" in str(e) else "co2.factor_files"
            raise ConfigError(f"{cfg.source or '<config>'}: {key}: {e}") from None

    def describe(self) -> dict:
        return {"id": self.set.id, "title": self.set.title, "source": self.set.source,
                "revision": self.set.revision, "scope2_method": self.scope2_method}

    # ----------------------------------------------------------------- price
    def price(self, energy: str, amount: float, unit: str | Unit, period, contract: str | None = None,
              supplier: str | None = None, menu: str | None = None, factor: float | None = None,
              factor_unit: str | None = None, cost_jpy: float | None = None) -> Priced:
        energy = normalize_energy(energy)
        u = unit if isinstance(unit, Unit) else parse_unit(unit)
        when = to_date(period)
        kind = KINDS[energy]
        warnings = None
        if factor is not None or factor_unit is not None:
            # an own factor decides the unit: the amount's unit must be the factor's (or convert
            # to it); a unit unusual for the energy (LPG in kL) is computed, with a warning
            loc = mkt = self._row_factor(energy, factor, factor_unit)
            check_same_dimension(u, loc.unit.per)
            std = self.set.factors.get(energy) or self.library.defaults.get(energy)
            note = unusual_unit_note(energy, u, f"{std.value:g} {std.unit.text} ({std.set})" if std else None)
            if note:
                warnings = [note]
        else:
            check_unit_fits(energy, u)
            if kind.scope == 2 and energy == "electricity":
                loc, mkt = self._electricity_factors(when, contract, supplier, menu)
            else:
                loc = mkt = self._supplier_or_set_factor(energy, when, supplier, menu)
        t_loc = float(loc.unit.t_co2(loc.value, amount, u))
        t_mkt = t_loc if mkt is loc else float(mkt.unit.t_co2(mkt.value, amount, u))
        heat = None
        if loc.heat_gj_per_unit and loc.carbon_tc_per_gj:
            heat = float(convert(amount, u, loc.unit.per) * loc.heat_gj_per_unit * loc.carbon_tc_per_gj * C_TO_CO2)
        headline, used = (t_mkt, mkt) if self.scope2_method == "market" else (t_loc, loc)
        source = "input" if cost_jpy is not None else None
        if cost_jpy is None:
            cost_jpy = tariff_cost_jpy(self.tariffs, energy, amount, u)
            source = "tariff" if cost_jpy is not None else None
        two = kind.scope == 2 and mkt is not loc
        return Priced(energy, kind.scope, float(amount), u.name, headline, t_loc, t_mkt,
                      None if cost_jpy is None else float(cost_jpy), used.as_dict(),
                      loc.as_dict() if two else None, mkt.as_dict() if two else None, heat, source, warnings)

    def price_electricity_kwh(self, kwh: float, when, contract: str | None = None) -> Priced:
        return self.price("electricity", kwh, "kWh", when, contract=contract)

    def price_findings(self, findings: list, tariff_jpy_per_kwh: float | None = None) -> list:
        """Fill `co2_t`, `cost_jpy` and `factor` of each Finding (its energy_kwh is electricity)."""
        for f in findings:
            contract = self._contract_for_channel(f.channel)
            p = self.price("electricity", f.energy_kwh, "kWh", f.start, contract=contract)
            f.co2_t = p.t_co2
            f.factor = dict(p.factor_used, factor_set=self.set.id)
            if tariff_jpy_per_kwh is not None:
                f.cost_jpy = f.energy_kwh * tariff_jpy_per_kwh
            elif self.tariffs is not None and self.tariffs.time_of_use and self.calendar is not None:
                f.cost_jpy, by_band = tou_cost_jpy(f.energy_kwh, f.start, f.end, self.tariffs, self.calendar)
                f.metrics.setdefault("energy_kwh_by_tariff_band", by_band)
            else:
                f.cost_jpy = p.cost_jpy
        return findings

    # --------------------------------------------------------------- factors
    def _row_factor(self, energy: str, value, unit_text) -> Factor:
        if value is None or unit_text is None:
            raise ValueError("an own factor needs both `factor` and `factor_unit`")
        if value < 0:
            raise ValueError(f"factor {value} is negative")
        fu = parse_factor_unit(unit_text)
        return Factor(energy, float(value), fu, "row", "factor given with the amount", "input", "", True,
                      basis="row")

    def _supplier_or_set_factor(self, energy: str, when: dt.date, supplier, menu) -> Factor:
        if supplier and self.library.has_supplier(energy, supplier):
            # a gas supplier's own factor; fuels without one use the set's factor
            sup, note = self.library.supplier(energy, supplier, fiscal_year(when) - 1)
            basic, adjusted = self.library.supplier_factors(sup, menu, note)
            return replace(basic or adjusted, basis="supplier")
        if energy in self.set.factors:
            return self.set.factors[energy]
        if energy in self.library.defaults:
            return self.library.defaults[energy]
        raise FactorLookupError(f"factor set {self.set.id!r} has no factor for {energy}; add one in a factor file "
                                "(docs/co2.md) or give `factor` and `factor_unit` in the row", "energy")

    def _electricity_factors(self, when: dt.date, contract, supplier, menu) -> tuple[Factor, Factor]:
        c = self._find_contract(contract, supplier)
        retailer = c.retailer if c else supplier
        menu = menu or (c.menu if c else None)
        want_fy = (c.results_fiscal_year if c and c.results_fiscal_year else fiscal_year(when) - 1)
        default = self.library.defaults.get("electricity")
        if not retailer:
            if default is None:
                raise FactorLookupError("no electricity retailer and no default factor ([defaults.electricity])",
                                        "supplier")
            return replace(default, basis="location"), replace(default, basis="market")
        sup, note = self.library.supplier("electricity", retailer, want_fy)
        basic, adjusted = self.library.supplier_factors(sup, menu, note)
        if basic is None:        # a retailer that publishes only adjusted factors
            basic = replace(default, basis="location",
                            note=f"{sup.entry.name} publishes no basic factor: 代替値 used") if default else adjusted
        if adjusted is None:
            adjusted = replace(basic, basis="market", note="no adjusted factor published: basic used")
        return basic, adjusted

    def _find_contract(self, contract, supplier):
        if contract:
            for c in self.contracts:
                if c.id == contract:
                    return c
            raise FactorLookupError(f"no contract {contract!r} in the site config "
                                    f"(contracts: {', '.join(c.id for c in self.contracts) or 'none'})", "contract")
        elec = [c for c in self.contracts if normalize_energy(c.energy) == "electricity"]
        if supplier:
            return next((c for c in elec if c.id == supplier), None)
        return next((c for c in elec if not c.meters), elec[0] if elec else None)

    def _contract_for_channel(self, channel: str) -> str | None:
        meter = self.channel_meters.get(channel)
        for c in self.contracts:
            if meter and meter in c.meters and normalize_energy(c.energy) == "electricity":
                return c.id
        return None
