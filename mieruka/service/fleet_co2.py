"""CO2 of one site's metered data (month by month, priced by the one CO2 engine)
and the company's fiscal-year sheet across all its plants.

A site's monthly amounts come from the channels that measure its total (the
incomer, else the sum of the power channels: `co2sheet.metered_channels`) as
hourly means x 1 h, like the site's own CO2 sheet in the API; a bill of the site
(`[co2] bills_file`, or the manifest's `bills`) replaces the metered amount of its
energy and month, and its `production` rows give the intensity.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..analytics.co2.engine import Priced, to_date
from ..analytics.co2.inputcsv import read_energy_csv
from ..analytics.co2.sheet import PricedRow, Production, Sheet, build_sheet
from ..analytics.co2.targets import target_rows
from ..models import ChannelData
from .co2sheet import METERED, metered_channels

MS_PER_HOUR = 3_600_000


def monthly_amounts(ch: ChannelData, kind: str, calendar) -> dict[str, float]:
    """Month (site time, "YYYY-MM") -> amount of one channel: hourly means x 1 h for
    rates, differences of hourly maxima for counters (a reset counts nothing)."""
    t, v = ch.ok()
    good = np.isfinite(v)
    t, v = t[good].astype("datetime64[ms]").astype(np.int64), v[good]
    if not len(t):
        return {}
    hour = np.floor_divide(t, MS_PER_HOUR)
    hours, inv = np.unique(hour, return_inverse=True)
    if kind == "rate":
        amount = np.bincount(inv, weights=v) / np.bincount(inv)
    else:
        order = np.argsort(hour, kind="stable")
        starts = np.r_[0, np.flatnonzero(np.diff(hour[order])) + 1]
        mx = np.maximum.reduceat(v[order], starts)
        amount = np.r_[0.0, np.diff(mx)]
        amount[amount < 0] = 0.0
    lt = calendar.local((hours * MS_PER_HOUR).astype("datetime64[ms]"))
    month = lt.day.astype("datetime64[D]").astype("datetime64[M]")
    months, mi = np.unique(month, return_inverse=True)
    sums = np.bincount(mi, weights=amount)
    return {str(m): float(s) for m, s in zip(months, sums)}


def _month_shares(start: dt.datetime, end: dt.datetime) -> dict[str, float]:
    """Month (local) -> the share of that month's hours inside [start, end)."""
    out = {}
    m = dt.datetime(start.year, start.month, 1, tzinfo=start.tzinfo)
    while m < end:
        nxt = dt.datetime(m.year + (m.month == 12), m.month % 12 + 1, 1, tzinfo=m.tzinfo)
        inside = (min(end, nxt) - max(start, m)).total_seconds()
        out[f"{m.year}-{m.month:02d}"] = inside / (nxt - m).total_seconds()
        m = nxt
    return out


def _scaled(p: Priced, k: float) -> Priced:
    if k == 1.0:
        return p
    mul = lambda x: None if x is None else x * k
    return replace(p, amount=p.amount * k, t_co2=p.t_co2 * k, t_co2_location=p.t_co2_location * k,
                   t_co2_market=p.t_co2_market * k, cost_jpy=mul(p.cost_jpy), t_co2_heat_route=mul(p.t_co2_heat_route))


def site_rows(site_id: str, chans: dict[str, ChannelData], calendar, engine, bills: Path | None,
              period: tuple[dt.datetime, dt.datetime]) -> tuple[list[PricedRow], list[Production], dict]:
    """Priced rows (energy x month) of one site over `period`, its production rows,
    and the channels that were metered ({energy: [channel ids]}).  Bills and
    production are monthly: for a month the period covers in part, they count
    pro rata (the share of the month's hours inside the period)."""
    infos = {c: ch.info for c, ch in chans.items()}
    metered: dict[tuple[str, str], float] = {}
    used: dict[str, list[str]] = {}
    units: dict[str, str] = {}
    for energy, chs in metered_channels(infos).items():
        for cid, kind in chs:
            for month, amount in monthly_amounts(chans[cid], kind, calendar).items():
                metered[(energy, month)] = metered.get((energy, month), 0.0) + amount
        used[energy] = [c for c, _ in chs]
        units[energy] = METERED[infos[chs[0][0]].quantity][1]
    share = _month_shares(*period)
    key = lambda d: f"{d.year}-{d.month:02d}"
    bill_rows: list[PricedRow] = []
    production: list[Production] = []
    if bills is not None:
        b, prod = read_energy_csv(bills, engine)
        bill_rows = [PricedRow(r.period, _scaled(r.priced, share[key(r.period)]), r.line, site_id)
                     for r in b if key(r.period) in share]
        production = [Production(p.period, p.amount * share[key(p.period)], p.unit)
                      for p in prod if key(p.period) in share]
    billed = {(r.priced.energy, key(r.period)) for r in bill_rows}
    rows = [PricedRow(to_date(month), engine.price(energy, amount, units[energy], month), site=site_id)
            for (energy, month), amount in sorted(metered.items())
            if month in share and (energy, month) not in billed]
    return rows + bill_rows, production, used


def co2_figures(rows: list[PricedRow]) -> dict[str, float]:
    """Scope 1 / Scope 2 (headline, location-, market-based) and totals of priced rows."""
    s1 = sum(r.priced.t_co2 for r in rows if r.priced.scope == 1)
    s2 = sum(r.priced.t_co2 for r in rows if r.priced.scope == 2)
    s2_loc = sum(r.priced.t_co2_location for r in rows if r.priced.scope == 2)
    s2_mkt = sum(r.priced.t_co2_market for r in rows if r.priced.scope == 2)
    return {"co2_t": s1 + s2, "scope1_t": s1, "scope2_t": s2, "scope2_location_t": s2_loc,
            "scope2_market_t": s2_mkt, "co2_location_t": s1 + s2_loc, "co2_market_t": s1 + s2_mkt}


def company_sheet(rows: list[PricedRow], production: list[Production], factor_set: dict, company) -> Sheet | None:
    """The company's fiscal-year sheet over every plant's rows (by_site keeps the
    plants apart), with the SBT and Japan −46 % target rows where bases are known.
    Production enters the company intensity only when every plant counts in one unit."""
    if not rows:
        return None
    prod = production if len({p.unit for p in production}) == 1 else []
    try:
        sh = build_sheet(rows, factor_set, company.fiscal_year, prod)
    except ValueError:
        return None
    base_fy, base_t = company.base_fiscal_year, company.base_year_t_co2
    if base_fy is not None and base_t is None and base_fy in sh.by_fiscal_year:
        base_t = sh.by_fiscal_year[base_fy]
    sh.targets = target_rows(sh.total_t, sh.fiscal_year, base_fy, base_t, company.fy2013_t_co2)
    return sh
