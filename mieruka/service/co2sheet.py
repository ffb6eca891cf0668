"""The fiscal-year CO2 sheet from metered data: which channels measure the
site's total, their monthly amounts from the store, and the sheet priced by the
one CO2 engine (bills, when given, replace metered months)."""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from ..analytics.co2.engine import to_date
from ..analytics.co2.inputcsv import read_energy_csv
from ..analytics.co2.sheet import PricedRow, build_sheet
from ..calendar import fiscal_year_months
from ..errors import Invalid, MierukaError
from ..roles import is_site_total
from .analysis import engine_for
from .timefmt import to_ms


METERED = {  # quantity -> (energy, unit, kind): rates integrate over the hour, counters difference
    "power_kw": ("electricity", "kWh", "rate"),
    "energy_kwh": ("electricity", "kWh", "counter"),
    "gas_flow_m3h": ("city_gas", "m3", "rate"),
    "gas_volume_m3": ("city_gas", "m3", "counter"),
}


def metered_channels(infos: dict) -> dict[str, list[tuple[str, str]]]:
    """energy -> [(channel, kind)] of the channels that measure the site's total.

    Electricity: the incomer's power (or its energy counter), i.e. a channel whose
    equipment kind is a site total (mieruka.roles: incomer, main, 受電, 主幹, ...);
    without one, the sum of every power channel (sub-meters taken as not overlapping).
    The breakers below an incomer are never added to it: that would count their
    energy twice.
    """
    out: dict[str, list[tuple[str, str]]] = {}
    incomer = [i for i in infos.values() if is_site_total(i)]
    for energy in ("electricity", "city_gas"):
        cands = [i for i in infos.values() if METERED.get(i.quantity, ("",))[0] == energy]
        if energy == "electricity" and any(i in cands for i in incomer):
            cands = [i for i in cands if i in incomer]
        rates = [i for i in cands if METERED[i.quantity][2] == "rate"]
        use = rates or [i for i in cands if METERED[i.quantity][2] == "counter"]
        if use:
            out[energy] = [(i.id, METERED[i.quantity][2]) for i in use]
    return out


def monthly_amounts(ctx, channel: str, kind: str, months: list[str]) -> list[float | None]:
    """Amount per month (site time) of one channel: hourly means x 1 h for rates,
    differences of hourly maxima for counters.  None for months without data."""
    tz = ctx.tz
    y, m = map(int, months[0].split("-"))
    start = dt.datetime(y, m, 1, tzinfo=tz)
    y2, m2 = map(int, months[-1].split("-"))
    end = dt.datetime(y2 + (m2 == 12), m2 % 12 + 1, 1, tzinfo=tz)
    agg = ctx.store.aggregate(channel, to_ms(start), to_ms(end), 3600.0)
    if len(agg.time) == 0:
        return [None] * len(months)
    if kind == "rate":
        amount = np.nan_to_num(agg.mean)
    else:
        mx = agg.max
        amount = np.r_[0.0, np.diff(mx)]
        amount[amount < 0] = 0.0             # meter reset or rollover: no amount
    lt = ctx.calendar.local(agg.time)
    month_idx = (lt.day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
                 - np.datetime64(months[0], "M").astype(np.int64))
    ok = (month_idx >= 0) & (month_idx < len(months))
    sums = np.bincount(month_idx[ok], weights=amount[ok], minlength=len(months))
    seen = np.bincount(month_idx[ok], minlength=len(months)) > 0
    return [float(s) if h else None for s, h in zip(sums, seen)]


def _coverage(ctx, months: list[str], channels_used: dict[str, list[str]], billed_months: set[str],
              month_has_data: list[bool]) -> dict:
    """The days of the fiscal year the sheet's figures cover (site dates): from the
    first to the last metered reading of the channels used, widened to whole months
    for billed months; and how many of the 12 months have any data.  A headline
    total over part of a year must say so."""
    tz = ctx.tz
    fy_first = dt.date.fromisoformat(months[0] + "-01")
    y, m = map(int, months[-1].split("-"))
    fy_last = dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)
    firsts, lasts = [], []
    for chans in channels_used.values():
        for c in chans:
            rng = ctx.store.time_range(c)
            if rng is None:
                continue
            a, b = (dt.datetime.fromtimestamp(int(x.astype("datetime64[ms]").astype(np.int64)) / 1000, tz).date()
                    for x in rng)
            firsts.append(max(a, fy_first))
            lasts.append(min(b, fy_last))
    for month in billed_months & set(months):
        y, m = map(int, month.split("-"))
        firsts.append(dt.date(y, m, 1))
        lasts.append(dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1))
    first, last = (min(firsts), max(lasts)) if firsts else (None, None)
    n = sum(month_has_data)
    return {"first_day": first.isoformat() if first else None, "last_day": last.isoformat() if last else None,
            "days": (last - first).days + 1 if first else 0, "months_with_data": n, "months": len(months),
            "whole_year": bool(first == fy_first and last == fy_last and n == len(months))}


def co2_sheet(ctx, fy: int) -> dict:
    """The fiscal year's monthly sheet (4月..3月): metered energy in the store (one
    row per energy and month) plus the bills CSV given to `serve`/`replay`
    (`--bills`, the `mieruka co2` format; a bill replaces the metered amount of
    its energy and month), priced and summed by the CO2 engine, location- and
    market-based side by side."""
    cached = ctx.memo(("co2", fy))
    if cached is not None:
        return cached
    months = fiscal_year_months(fy)
    engine = engine_for(ctx.cfg)
    infos = ctx.infos()
    rows: list = []
    bills: list = []
    production: list = []
    if ctx.bills_path is not None:
        try:
            bills, production = read_energy_csv(ctx.bills_path, engine)
        except MierukaError as e:
            raise Invalid(str(e)) from None
    billed = {(r.priced.energy, f"{r.period.year}-{r.period.month:02d}") for r in bills}
    channels_used: dict[str, list[str]] = {}
    for energy, chans in metered_channels(infos).items():
        per = [monthly_amounts(ctx, c, kind, months) for c, kind in chans]
        # generation (PV, export counted negative) is no consumption, as in the analysis
        keep = [k for k, p in enumerate(per) if sum(x or 0.0 for x in p) >= 0.0]
        chans, per = [chans[k] for k in keep], [per[k] for k in keep]
        if not chans:
            continue
        unit = METERED[infos[chans[0][0]].quantity][1]
        for i, month in enumerate(months):
            if all(p[i] is None for p in per) or (energy, month) in billed:
                continue
            amount = max(float(sum(p[i] or 0.0 for p in per)), 0.0)     # a month of net export buys nothing
            try:
                rows.append(PricedRow(to_date(month), engine.price(energy, amount, unit, month)))
            except ValueError as e:
                raise Invalid(f"CO2 engine: {e}") from None
            channels_used[energy] = [c for c, _ in chans]
    rows += bills
    source = "+".join(x for x, used in (("metered", bool(channels_used)), ("bills", bool(bills))) if used) or "none"
    sheet: dict[str, Any] = {"factor_set": engine.describe(), "metered_channels": channels_used}
    try:
        sh = build_sheet(rows, engine.describe(), fy, production) if rows else None
    except ValueError:      # no rows in this fiscal year
        sh = None
    if sh is not None:
        per_e = lambda arr: {e: [float(x) for x in arr[k]] for k, e in enumerate(sh.energies)}
        sheet.update({
            "energies": sh.energies, "units": dict(zip(sh.energies, sh.units)),
            "amount": per_e(sh.amount), "t_co2": per_e(sh.t_co2),
            "location_t_co2": per_e(sh.t_co2_location), "market_t_co2": per_e(sh.t_co2_market),
            "cost_jpy": {e: [float(x) if known else None for x, known in zip(sh.cost_jpy[k], sh.cost_known[k])]
                         for k, e in enumerate(sh.energies)},
            "total_t_co2": sh.total_t, "scope1_t_co2": sh.scope1_t, "scope2_t_co2": sh.scope2_t,
            "total_location_t_co2": float(sh.t_co2_location.sum()), "total_market_t_co2": float(sh.t_co2_market.sum()),
            "by_energy": sh.by_energy, "by_month": sh.by_month, "shares": sh.shares,
            "factors": sh.factors, "unverified": bool(sh.unverified), "intensity": sh.intensity(),
            # which energy x month cells have data: a month without any is "no data", not 0 t
            "present": {e: [bool(x) for x in sh.present[k]] for k, e in enumerate(sh.energies)},
        })
        sheet["coverage"] = _coverage(ctx, months, channels_used, {m for _, m in billed},
                                      [any(col) for col in zip(*sheet["present"].values())])
        desc = engine.describe()
        note = "; ".join(f"{f['energy']} {f.get('basis')}: {f['value']} {f['unit']} ({f.get('supplier') or f.get('title') or f.get('set')})"
                         for f in sh.factors)
        sheet["factor_note"] = f"{desc.get('id')}: {note}"
    out = {"fiscal_year": fy, "months": months, "source": source, "sheet": sheet}
    ctx.memo(("co2", fy), out)
    return out


