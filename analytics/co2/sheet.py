"""The fiscal-year CO2 sheet (like the JCCI CO2 check sheet): months 4月..3月 ×
energy type, with Scope 1/2 totals, Scope 2 location- and market-based side by
side, shares, cost and intensity per production unit.

Built from priced rows (:class:`PricedRow`); sums are numpy scatter-adds over
(energy, month) indices.  Rows of other fiscal years are not dropped: their
totals are kept in `by_fiscal_year` (they also serve as a target base year).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import numpy as np

from ...calendar import fiscal_year, fiscal_year_months
from ...energy import KINDS
from ...units import convert, parse_unit
from .engine import Priced

MONTH_LABELS = [f"{m}月" for m in (4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2, 3)]


@dataclass
class PricedRow:
    period: dt.date
    priced: Priced
    line: int | None = None
    site: str | None = None


@dataclass
class Production:
    period: dt.date
    amount: float
    unit: str


@dataclass
class Sheet:
    fiscal_year: int
    factor_set: dict
    months: list[str]                       # YYYY-MM, April first
    energies: list[str]                     # row order: electricity first, then by CO2
    t_co2: np.ndarray                       # energy x month, headline method
    t_co2_location: np.ndarray
    t_co2_market: np.ndarray
    amount: np.ndarray                      # energy x month in `units[e]`
    units: list[str]
    cost_jpy: np.ndarray                    # energy x month (NaN-free; see cost_known)
    cost_known: np.ndarray                  # bool energy x month: no row there lacks a cost
    present: np.ndarray                     # bool energy x month: there are rows
    heat_route_t: dict[str, float]          # energy -> t by heat value x carbon x 44/12 (where given)
    factors: list[dict]                     # each distinct factor used, with the energies it priced
    production: np.ndarray | None = None    # per month
    production_unit: str | None = None
    by_fiscal_year: dict[int, float] = field(default_factory=dict)
    by_site: dict[str, float] = field(default_factory=dict)
    targets: list[dict] = field(default_factory=list)

    # ------------------------------------------------------------ totals
    def scope(self, e: str) -> int:
        return KINDS[e].scope

    def _sum(self, arr: np.ndarray, scope: int | None = None) -> float:
        mask = [scope is None or self.scope(e) == scope for e in self.energies]
        return float(arr[np.array(mask, bool)].sum()) if any(mask) else 0.0

    @property
    def total_t(self) -> float:
        return self._sum(self.t_co2)

    @property
    def scope1_t(self) -> float:
        return self._sum(self.t_co2, 1)

    @property
    def scope2_t(self) -> float:
        return self._sum(self.t_co2, 2)

    @property
    def by_energy(self) -> dict[str, float]:
        return {e: float(v) for e, v in zip(self.energies, self.t_co2.sum(axis=1))}

    @property
    def by_month(self) -> dict[str, float]:
        return {m: float(v) for m, v in zip(self.months, self.t_co2.sum(axis=0))}

    @property
    def shares(self) -> dict[str, float]:
        tot = self.total_t
        return {e: (v / tot if tot else 0.0) for e, v in self.by_energy.items()}

    @property
    def unverified(self) -> list[dict]:
        return [f for f in self.factors if not f.get("verified", True)]

    def intensity(self) -> dict | None:
        if self.production is None:
            return None
        p = float(self.production.sum())
        per_month = {m: (float(t) / float(n) if n else None)
                     for m, t, n in zip(self.months, self.t_co2.sum(axis=0), self.production)}
        return {"production_unit": self.production_unit, "production": p,
                "t_co2_per_unit": self.total_t / p if p else None, "by_month": per_month}


def build_sheet(rows: list[PricedRow], factor_set: dict, fy: int | None = None,
                production: list[Production] = ()) -> Sheet:
    """Sum priced rows into the sheet of fiscal year `fy` (default: the latest in the rows)."""
    if not rows:
        raise ValueError("no energy rows")
    fys = np.array([fiscal_year(r.period) for r in rows])
    fy = int(fys.max()) if fy is None else fy
    by_fy = {int(y): float(sum(r.priced.t_co2 for r, f in zip(rows, fys) if f == y)) for y in np.unique(fys)}
    rows = [r for r, f in zip(rows, fys) if f == fy]
    if not rows:
        raise ValueError(f"no rows in FY{fy} (the rows cover FY{', FY'.join(map(str, sorted(by_fy)))})")
    months = fiscal_year_months(fy)
    totals: dict[str, float] = {}
    for r in rows:
        totals[r.priced.energy] = totals.get(r.priced.energy, 0.0) + r.priced.t_co2
    energies = sorted(totals, key=lambda e: (e != "electricity", -totals[e], e))
    units = [_common_unit([r.priced.unit for r in rows if r.priced.energy == e]) for e in energies]
    ei = np.array([energies.index(r.priced.energy) for r in rows])
    mi = np.array([months.index(f"{r.period.year}-{r.period.month:02d}") for r in rows])
    shape = (len(energies), 12)

    def scatter(values, dtype=float) -> np.ndarray:
        out = np.zeros(shape, dtype)
        np.add.at(out, (ei, mi), np.asarray(values, dtype))
        return out

    p = [r.priced for r in rows]
    amounts = [_amount_in(x, units[energies.index(x.energy)]) for x in p]
    missing_cost = scatter([x.cost_jpy is None for x in p], int)
    present = scatter([1 for _ in p], int)
    heat: dict[str, float] = {}
    for x in p:
        if x.t_co2_heat_route is not None:
            heat[x.energy] = heat.get(x.energy, 0.0) + x.t_co2_heat_route
    prod = None
    prod_unit = None
    if production:
        prod_rows = [q for q in production if fiscal_year(q.period) == fy]
        units_p = {q.unit for q in prod_rows}
        if len(units_p) > 1:
            raise ValueError(f"production rows use several units ({', '.join(sorted(units_p))}); use one")
        prod = np.zeros(12)
        for q in prod_rows:
            prod[months.index(f"{q.period.year}-{q.period.month:02d}")] += q.amount
        prod_unit = units_p.pop() if units_p else None
    by_site: dict[str, float] = {}
    for r in rows:
        if r.site:
            by_site[r.site] = by_site.get(r.site, 0.0) + r.priced.t_co2
    return Sheet(fy, factor_set, months, energies,
                 scatter([x.t_co2 for x in p]), scatter([x.t_co2_location for x in p]),
                 scatter([x.t_co2_market for x in p]), scatter(amounts), units,
                 scatter([x.cost_jpy or 0.0 for x in p]), missing_cost == 0, present > 0,
                 heat, _factors_used(p), prod, prod_unit, by_fy, by_site)


def _amount_in(x: Priced, unit: str) -> float:
    try:
        return convert(x.amount, parse_unit(x.unit), parse_unit(unit))
    except ValueError:      # m3 and Nm3 rows of one gas: amounts cannot be added (CO2 can)
        return float("nan")


def _common_unit(units: list[str]) -> str:
    """The unit most rows of an energy use (others are converted to it)."""
    vals, counts = np.unique(units, return_counts=True)
    return str(vals[np.argmax(counts)])


def _factors_used(priced: list[Priced]) -> list[dict]:
    seen: dict[str, dict] = {}
    for x in priced:
        for f in (x.factor_location, x.factor_market) if x.factor_location else (x.factor_used,):
            key = json.dumps(f, sort_keys=True, ensure_ascii=False)
            if key not in seen:
                seen[key] = dict(f, rows=0)
            seen[key]["rows"] += 1
    return list(seen.values())
