"""The seam between the API and the analytics: run the analysis pipeline on
the store's data, build the fiscal-year CO2 sheet from metered energy through
the one CO2 engine, and read the collector's health snapshot."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np

from ..calendar import fiscal_year_months
from ..site import SiteConfig
from .errors import ApiError
from .timefmt import to_ms


# ------------------------------------------------------------------ factor set
def factor_set_info(cfg: SiteConfig) -> dict[str, Any]:
    """Which factor set priced the figures (id, title, source, revision)."""
    try:
        return _engine(cfg).describe()
    except Exception as e:  # a broken factor file must not hide the rest of a report
        return {"id": cfg.co2.factor_set, "error": str(e)}


_ENGINES: dict[int, Any] = {}


def _engine(cfg: SiteConfig):
    key = id(cfg)
    eng = _ENGINES.get(key)
    if eng is None:
        from ..analytics.co2 import CO2Engine
        eng = CO2Engine.from_site(cfg)
        if len(_ENGINES) > 8:
            _ENGINES.clear()
        _ENGINES[key] = eng
    return eng


# ------------------------------------------------------------------ CO2 sheet
METERED = {  # quantity -> (energy, unit, kind): rates integrate over the hour, counters difference
    "power_kw": ("electricity", "kWh", "rate"),
    "energy_kwh": ("electricity", "kWh", "counter"),
    "gas_flow_m3h": ("city_gas", "m3", "rate"),
    "gas_volume_m3": ("city_gas", "m3", "counter"),
}


def metered_channels(infos: dict) -> dict[str, list[tuple[str, str]]]:
    """energy -> [(channel, kind)] of the channels that measure the site's total.

    Electricity: the incomer's power (or its energy counter); without an incomer,
    the sum of every power channel (sub-meters taken as not overlapping).
    """
    out: dict[str, list[tuple[str, str]]] = {}
    incomer = [i for i in infos.values() if (i.equipment_kind or "").lower() in ("incomer", "main", "受電")]
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


def co2_sheet(ctx, fy: int) -> dict:
    """The fiscal year's monthly sheet (4月..3月): metered energy in the store (one
    row per energy and month) plus the bills CSV given to `serve`/`replay`
    (`--bills`, the `mieruka co2` format; a bill replaces the metered amount of
    its energy and month), priced and summed by the CO2 engine, location- and
    market-based side by side."""
    cached = ctx.memo(("co2", fy))
    if cached is not None:
        return cached
    from ..analytics.co2.engine import to_date
    from ..analytics.co2.sheet import PricedRow, build_sheet
    months = fiscal_year_months(fy)
    engine = _engine(ctx.cfg)
    infos = ctx.infos()
    rows: list = []
    bills: list = []
    production: list = []
    if ctx.bills_path is not None:
        from ..analytics.co2.inputcsv import read_energy_csv
        from ..errors import MierukaError
        try:
            bills, production = read_energy_csv(ctx.bills_path, engine)
        except MierukaError as e:
            raise ApiError(422, str(e)) from None
    billed = {(r.priced.energy, f"{r.period.year}-{r.period.month:02d}") for r in bills}
    channels_used: dict[str, list[str]] = {}
    for energy, chans in metered_channels(infos).items():
        per = [monthly_amounts(ctx, c, kind, months) for c, kind in chans]
        unit = METERED[infos[chans[0][0]].quantity][1]
        for i, month in enumerate(months):
            if all(p[i] is None for p in per) or (energy, month) in billed:
                continue
            amount = float(sum(p[i] or 0.0 for p in per))
            try:
                rows.append(PricedRow(to_date(month), engine.price(energy, amount, unit, month)))
            except ValueError as e:
                raise ApiError(422, f"CO2 engine: {e}") from None
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
        })
        desc = engine.describe()
        note = "; ".join(f"{f['energy']} {f.get('basis')}: {f['value']} {f['unit']} ({f.get('supplier') or f.get('title') or f.get('set')})"
                         for f in sh.factors)
        sheet["factor_note"] = f"{desc.get('id')}: {note}"
    out = {"fiscal_year": fy, "months": months, "source": source, "sheet": sheet}
    ctx.memo(("co2", fy), out)
    return out


# ------------------------------------------------------------------ findings
def plan_rows(plan: list[dict]) -> list[dict]:
    """The pipeline's savings plan normalised for the report and the workbook."""
    def pick(m, *keys):
        for k in keys:
            if m.get(k) is not None:
                return m[k]
        return None
    rows = []
    for m in plan:
        share = pick(m, "co2_share_pct", "reduction_contribution_pct", "share_of_site_co2_pct")
        if share is None and pick(m, "co2_share", "reduction_contribution") is not None:
            share = 100.0 * pick(m, "co2_share", "reduction_contribution")
        rows.append({"title": pick(m, "title", "measure", "name", "explanation") or "",
                     "kwh": pick(m, "energy_kwh_per_year", "saving_kwh_per_year", "kwh_per_year", "energy_kwh"),
                     "jpy": pick(m, "cost_jpy_per_year", "saving_jpy_per_year", "yen_per_year", "jpy_per_year", "cost_jpy"),
                     "co2_t": pick(m, "co2_t_per_year", "saving_co2_t_per_year", "co2_t"),
                     "share_pct": share,
                     "investment": pick(m, "investment_jpy", "capex_jpy"),
                     "payback": pick(m, "payback_years", "payback_y")})
    return rows


def run_analysis(ctx, start: dt.datetime, end: dt.datetime, channels: list[str] | None = None):
    """Run the analysis pipeline over [start, end) of the store's data."""
    from .service import AnalysisView
    try:
        from ..analytics import pipeline
    except ImportError:
        raise ApiError(503, "the analysis pipeline (mieruka.analytics.pipeline) is not installed") from None
    infos = ctx.infos()
    ids = [c for c in (channels or list(infos)) if c in infos]
    from ..errors import MierukaError
    try:
        result = pipeline.analyze_store(ctx.store, [infos[c] for c in ids], ctx.calendar, ctx.cfg, start, end)
    except MierukaError as e:        # a config or factor problem worded for people (not a bug)
        raise ApiError(422, str(e)) from None
    text = result.to_json()
    data = json.loads(text)           # the cleaned form: rounded floats, NaN -> null, ISO times
    findings = sorted(data.get("findings", []), key=lambda f: -(f.get("cost_jpy") or 0.0))
    view = AnalysisView(start, end, result, findings, data.get("plan", []), data.get("summary", {}), text)
    view.channels = ids
    return view


# ------------------------------------------------------------------ collector
def collector_health(ctx) -> dict:
    """The collector's last health snapshot (`<data_dir>/collector-status.json`,
    rewritten by `mieruka collect` every few seconds), with its age; times in
    the snapshot are epoch seconds, given here also as ISO 8601 in site time."""
    try:
        from ..collector.health import STATUS_FILE
    except ImportError:
        STATUS_FILE = "collector-status.json"
    path = ctx.cfg.data_dir / STATUS_FILE
    try:
        snap = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"available": False, "snapshot": None}
    if not isinstance(snap, dict):
        return {"available": False, "snapshot": None}
    t = snap.get("time")
    if isinstance(t, (int, float)):
        import time as _time
        snap["age_s"] = round(max(0.0, _time.time() - t), 1)
        snap["time_iso"] = dt.datetime.fromtimestamp(t, ctx.tz).isoformat()
    return {"available": True, "snapshot": snap}
