"""The analysis pipeline: channel arrays + calendar -> priced findings and a savings plan.

    result = analyze(channels, calendar, engine, params)
    result.to_json()          # {"findings": [...], "plan": [...], "summary": {...}}, byte-identical for the same input

`channels` maps a channel id to a `mieruka.models.ChannelData` (info, times
datetime64[ms] UTC, values, quality codes or None; only OK values are used).  The
pipeline prepares each channel once (clean, counters -> rates, durations that
never bridge a gap, calendar classes), runs the four detectors, prices every
finding and measure through the one CO2 engine and builds the summary.
Pure: no store, no network; `analyze_store` reads the store first.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from typing import Any, Callable

import numpy as np

from mieruka.calendar import DAY_TYPES, SiteCalendar
from mieruka.models import ChannelData, ChannelInfo, Finding
from mieruka.roles import is_always_on, is_site_total
from mieruka.roles import is_compressor as is_compressor_info

from . import baseline as base_mod
from . import bill as bill_mod
from . import demand as dm
from . import resample as rs
from . import savings as sav
from . import base_load as bl
from . import baseline_model as bm
from . import shifts as shifts_mod
from . import weather as wx
from .air_system import DEFAULT_SPECIFIC_ENERGY_KWH_PER_M3, analyze_air_systems, is_compressor
from .findings import Collector, local_dt
from .series import CachedCalendar, Series, end_ms, mean_rate, prepare, role, select_channels
from .standby import standby_profile

INFORMATIONAL = {"base_load"}           # to review, never a saving by itself: ranked after the others
FOLDABLE = {"standby", "baseline_gap", "base_load"}    # kinds a materiality threshold may fold
EXTRAPOLATED_UNDER_DAYS = 330.0         # a finding's annual figure from fewer days says it is extrapolated

@dataclass
class AnalysisParams:
    language: str = "ja"                         # explanation language: "ja" or "en" (both are in the JSON)
    tariff_jpy_per_kwh: float | None = None      # flat tariff; None: the engine's site tariffs
    max_gap_s: float | None = None               # None: 5 nominal steps, at least 2 min
    assumptions: sav.SavingsAssumptions = field(default_factory=sav.SavingsAssumptions)
    # findings under either threshold are summarised (summary.folded), not listed:
    adaptive_baseline: bool = True               # False: the plain day-type model only (no drift, weather, days off)
    materiality_kwh: float = 10.0                # kWh over the period
    materiality_share: float = 0.002             # share of the channel's energy over the period
    bill: Any = None                             # [bill] section: prices the peak cut through 基本料金
    demand_period_min: int = 30
    demand_keep_peaks: int = 10                  # peak cut: down to the level of the N-th highest period


@dataclass
class AnalysisResult:
    findings: list[Finding]
    plan: list[sav.Measure]
    summary: dict[str, Any]
    texts: list[dict[str, str]] = field(default_factory=list)   # both languages, per finding

    def to_dict(self) -> dict[str, Any]:
        out = []
        for f, tx in zip(self.findings, self.texts):
            d = f.to_dict()
            d["explanation_en"], d["explanation_ja"] = tx["en"], tx["ja"]
            out.append(d)
        return {"findings": out, "plan": [m.to_dict() for m in self.plan], "summary": self.summary}

    def to_json(self, indent: int | None = None) -> str:
        """Deterministic JSON: sorted keys, floats rounded to 6 decimals, NaN -> null."""
        return json.dumps(_clean(self.to_dict()), sort_keys=True, ensure_ascii=False, indent=indent,
                          separators=(",", ":") if indent is None else None)


def _clean(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        x = float(o)
        return None if not math.isfinite(x) else round(x, 6) + 0.0
    if isinstance(o, (dt.datetime, dt.date)):
        return o.isoformat()
    return o


# ------------------------------------------------------------------ the site in parts
# `analyze` is a map/reduce over a site's channels, so that a large site can run as
# several tasks (mieruka.service.fleet) with the very result of one:
#   prepare_series  -> site_context (incomers, outdoor temperature, idle days, demand grid)
#   -> channel_part per power channel (needs only that channel and the context)
#   -> combine (the incomers, air systems, plan, pricing, summary).
# A split run gives channel_part's channels to other tasks and combine their parts.

@dataclass
class SiteContext:
    """What the detectors of one power channel need from the site as a whole: the
    site-total channels, the daily outdoor temperature, the days the whole site idled
    and the incomer's demand-period grid (peak cut).  Small: per-day and per-period
    arrays, shipped to every channel-group task of a split site."""

    totals: list[str]
    temp_day: tuple[int, np.ndarray] | None
    days_off: set[int]
    demand_grid: np.ndarray | None = None
    shifts_note: dict | None = None         # production hours read off the load (calendar_for_site)


@dataclass
class ChannelPart:
    """One power channel's share of a site's analysis: its energy, its standby or
    base-load finding, its baseline fit and gap findings, and its kWh per demand
    period on the incomer's grid.  Annual figures wait for `combine` (the
    annualisation factor spans every channel of the site): the findings carry the
    period's kWh in `annual_energy_kwh`, which `combine` multiplies by the factor."""

    cid: str
    t_first_ms: int
    t_end_ms: int
    energy_kwh: float
    standby_kwh: float | None
    base_kw: float | None
    baseline: dict
    gap_excess_kwh: float
    findings: list[Finding]
    texts: list[dict[str, str]]
    demand_kwh: np.ndarray | None = None


def prepare_series(channels: dict[str, ChannelData], calendar: CachedCalendar, params: AnalysisParams,
                   tick: Callable[[str], None] = lambda _m: None) -> dict[str, Series]:
    """The channels the detectors use (select_channels), cleaned and as rates, by id in order."""
    series = SeriesMap()
    axes: dict = {}
    for cid in sorted(select_channels(channels)):
        ch = channels[cid]
        s = prepare(ch.info, ch.time, ch.value, ch.quality, calendar, params.max_gap_s, axes)
        if s is not None:
            series[cid] = s
        tick(f"prepare {cid}")
    # generation is no consumption: left out of every detector, listed in the summary
    for cid, kwh in _generation(_by_role(series, "power")).items():
        series.generation[cid] = kwh
        del series[cid]
    return series


class SeriesMap(dict):
    """The prepared series by channel id, and `generation`: the power channels left out
    as generation (kWh generated; see _generation)."""

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.generation: dict[str, float] = {}


def calendar_for_site(channels: dict[str, ChannelData], calendar: CachedCalendar, params: AnalysisParams,
                      series: dict[str, Series]) -> tuple[CachedCalendar, dict[str, Series], dict | None]:
    """(calendar, series, note): when nobody stated the shifts, the production hours read
    off the site's load (analytics/shifts.py) and the series prepared again with them."""
    power = _by_role(series, "power")
    if getattr(calendar, "shifts_configured", True) or not power:
        return calendar, series, None
    inferred, why = _shifts_from_load(power, calendar)
    note = {"inferred": inferred is not None, "basis": why, "shifts": inferred,
            "spec": shifts_mod.spec(inferred) if inferred else None}
    if inferred is None:
        return calendar, series, note
    cal = with_shifts(calendar, inferred)
    return cal, prepare_series(channels, cal, params), note


def with_shifts(calendar, shifts: dict) -> CachedCalendar:
    """A calendar like `calendar` with `shifts` stated."""
    base = calendar._cal if isinstance(calendar, CachedCalendar) else calendar
    return CachedCalendar(dc_replace(base, shifts=shifts, shifts_configured=True))


def _by_role(series: dict[str, Series], r: str) -> dict[str, Series]:
    return {c: s for c, s in series.items() if role(s.info) == r}


def _day_matrix(s: Series, calendar):
    return base_mod.day_matrix_from_hourly(*s.axis.hourly_mean(s.rate), calendar)


def site_context(series: dict[str, Series], calendar: CachedCalendar, params: AnalysisParams,
                 mats: dict | None = None) -> SiteContext:
    """The SiteContext from the site's series: its site-total power channels, its
    outdoor-air channels and (without an incomer) every non-compressor power channel.
    `mats`: a cache of day matrices, filled and reused by channel_part."""
    power = _by_role(series, "power")
    totals = [c for c, s in power.items() if is_site_total(s.info)] or _only_meter(power)
    temp_day = _outdoor_temperature(_by_role(series, "temperature"), calendar) if params.adaptive_baseline else None
    days_off: set[int] = set()
    if params.adaptive_baseline:
        site_ch = totals or [c for c in power if not is_compressor(power[c])]
        mats = {} if mats is None else mats
        for c in site_ch:
            if c not in mats:
                mats[c] = _day_matrix(power[c], calendar)
        days_off = _days_off(mats, site_ch)
    grid = None
    if params.bill is not None and totals:
        grid = _demand_periods(power[totals[0]], calendar.timezone, params.demand_period_min).start_ms
    return SiteContext(totals, temp_day, days_off, grid)


def channel_part(cid: str, s: Series, calendar: CachedCalendar, ctx: SiteContext, params: AnalysisParams,
                 mat=None, extra_allowance_kw: float = 0.0, tick: Callable[[str], None] = lambda _m: None
                 ) -> ChannelPart:
    """Energy, standby / base load, baseline gaps and demand-period kWh of one power channel."""
    out = Collector(calendar.tz, params.language if params.language in ("en", "ja") else "en", params.assumptions)
    energy = rs.wsum(s.rate, s.dur_s) / 3600.0
    standby = base = None
    if not is_compressor(s):          # compressors: see the air systems (night stop, leaks)
        standby, base = _standby_or_base_load(cid, s, 1.0, out, extra_allowance_kw, site_total=cid in ctx.totals)
    tick(f"standby {cid}")
    fit, excess = _baseline(cid, s, mat if mat is not None else _day_matrix(s, calendar), calendar, out,
                            ctx.temp_day, ctx.days_off, params.adaptive_baseline)
    tick(f"baseline {cid}")
    demand = None
    if ctx.demand_grid is not None and cid not in ctx.totals and not is_always_on(s.info):
        # loads that must run around the clock cannot move out of a peak
        p = _demand_periods(s, calendar.timezone, params.demand_period_min, ctx.demand_grid)
        demand = np.where(p.complete, p.kwh, np.nan)
    return ChannelPart(cid, int(s.t_ms[0]), end_ms(s), energy, standby, base, fit, excess, out.findings, out.texts,
                       demand)


def channel_groups(infos: dict[str, ChannelInfo], n_groups: int) -> tuple[list[str], list[list[str]]] | None:
    """How a site splits: (its site channels, groups of breaker channels), or None when
    it cannot be split.  A breaker is a power channel that is neither a site total nor
    a compressor: its detectors need only itself and the SiteContext.  The site
    channels (incomers, compressors with their air meters and pressure, the outdoor
    temperature) stay together for site_context and combine.  Both lists hold only
    channels the detectors use (select_channels over the whole site: a counter behind
    a rate in another group is left out as it is in one run).  Without a site-total
    channel the site's idle days come from the sum of all breakers, so such a site is
    not split; nor is one with fewer than two breakers."""
    holders = {c: ChannelData(i, np.empty(0, "datetime64[ms]"), np.empty(0)) for c, i in infos.items()}
    selected = select_channels(holders)
    power = [c for c in sorted(selected) if role(infos[c]) == "power"]
    if n_groups < 2 or not any(is_site_total(infos[c]) for c in power):
        return None
    breakers = [c for c in power if not is_site_total(infos[c]) and not is_compressor_info(infos[c])]
    n = min(n_groups, len(breakers))
    if n < 2:
        return None
    groups = [breakers[i::n] for i in range(n)]          # round robin: groups of equal size
    taken = set(breakers)
    return [c for c in sorted(selected) if c not in taken], groups


def _empty_result() -> AnalysisResult:
    return AnalysisResult([], [], {"energy_kwh": {}, "baseline": {}, "period": None,
                                   "note": "no power or air-flow channel with data"}, [])


# ------------------------------------------------------------------ analysis
def analyze(channels: dict[str, ChannelData], calendar: SiteCalendar, engine, params: AnalysisParams | None = None,
            progress: Callable[[str], None] | None = None) -> AnalysisResult:
    """Run the four detectors over the channels and price the findings (see module doc)."""
    params = params or AnalysisParams()
    tick = progress or (lambda _msg: None)
    calendar = CachedCalendar(calendar)
    series = prepare_series(channels, calendar, params, tick)
    calendar, series, shifts_note = calendar_for_site(channels, calendar, params, series)
    power = _by_role(series, "power")
    if not power and not _by_role(series, "flow"):
        return _empty_result()
    mats: dict = {}
    ctx = site_context(series, calendar, params, mats)
    ctx.shifts_note = shifts_note
    parts = {cid: channel_part(cid, s, calendar, ctx, params, mats.get(cid), tick=tick)
             for cid, s in power.items() if cid not in ctx.totals}
    return combine(series, parts, calendar, engine, params, ctx, mats, tick)


def combine(series: dict[str, Series], parts: dict[str, ChannelPart], calendar: CachedCalendar, engine,
            params: AnalysisParams, ctx: SiteContext, mats: dict | None = None,
            progress: Callable[[str], None] | None = None) -> AnalysisResult:
    """The site's result from its series and the ChannelParts of power channels that
    are not among them (a split site's channel groups).  Parts missing for a power
    series are made here; the site-total channels always are (their standby leaves
    out the always-on loads of the channels below them)."""
    tick = progress or (lambda _msg: None)
    mats = {} if mats is None else mats
    power = _by_role(series, "power")
    flows, pressures = _by_role(series, "flow"), _by_role(series, "pressure")
    totals = ctx.totals
    parts = dict(parts)
    for cid, s in power.items():
        if cid not in totals and cid not in parts:
            parts[cid] = channel_part(cid, s, calendar, ctx, params, mats.get(cid), tick=tick)
    ids = sorted(set(power) | set(parts))           # every power channel of the site
    if not ids and not flows:
        return _empty_result()
    t_first = min([int(s.t_ms[0]) for s in series.values()] + [p.t_first_ms for p in parts.values()])
    t_last = max([end_ms(s) for s in series.values()] + [p.t_end_ms for p in parts.values()])
    period_h = (t_last - t_first) / rs.MS_PER_HOUR
    per_year = 8760.0 / period_h if period_h > 0 else 0.0    # annualisation factor
    out = Collector(calendar.tz, params.language if params.language in ("en", "ja") else "en", params.assumptions)

    energy, baseline_fit, standby_waste, gap_excess, base_kw = {}, {}, {}, {}, {}
    # sub-meters before the incomer: the incomer's standby leaves out the always-on loads under it
    for cid in sorted(ids, key=lambda c: (c in totals, c)):
        if cid in totals:
            part = channel_part(cid, power[cid], calendar, ctx, params, mats.get(cid), sum(base_kw.values()), tick)
        else:
            part = parts[cid]
        energy[cid] = part.energy_kwh
        if part.standby_kwh is not None:
            standby_waste[cid] = part.standby_kwh
        if part.base_kw is not None:
            base_kw[cid] = part.base_kw
        for f, tx in zip(part.findings, part.texts):
            if f.annual_energy_kwh is not None:      # the period's kWh (see ChannelPart)
                f.annual_energy_kwh = f.annual_energy_kwh * per_year
            out.findings.append(f)
            out.texts.append(tx)
        baseline_fit[cid] = part.baseline
        if part.gap_excess_kwh:
            gap_excess[cid] = part.gap_excess_kwh
    air_summary = analyze_air_systems(power, flows, pressures, per_year, out)
    tick("air systems")

    # ---- site totals (a main/incomer channel, else the sum of the breakers)
    site_kwh = sum(energy[c] for c in (totals or ids))
    sub = [c for c in ids if c not in totals] if totals else list(ids)
    _plan_measures(out, sub, totals, standby_waste, gap_excess, base_kw, energy, per_year, period_h)

    if params.bill is not None and len(totals) >= 1:
        _peak_cut(power[totals[0]], {c: parts[c].demand_kwh for c in sub if parts[c].demand_kwh is not None},
                  calendar.timezone, params, out)
    findings = out.findings
    engine.price_findings(findings, tariff_jpy_per_kwh=params.tariff_jpy_per_kwh)
    start, end = local_dt(t_first, calendar.tz), local_dt(t_last, calendar.tz)
    site = Finding("site", "site", start, end, site_kwh * per_year, "site energy, annualised")
    engine.price_findings([site], tariff_jpy_per_kwh=params.tariff_jpy_per_kwh)
    plan = sav.price_measures(out.measures, engine, start, site.co2_t or 0.0, params.tariff_jpy_per_kwh)
    days = period_h / 24.0
    sav.assign_confidence(plan, days)
    _note_extrapolation(findings, out.texts, days, out.lang)
    material = _material(findings, energy, params)
    folded = [i for i in range(len(findings)) if not material[i]]
    # what to act on first, by yen; base loads (to review, not to switch off) after them
    order = sorted((i for i in range(len(findings)) if material[i]),
                   key=lambda i: (findings[i].kind in INFORMATIONAL, -(findings[i].cost_jpy or 0.0),
                                  -findings[i].energy_kwh, findings[i].kind, findings[i].channel,
                                  findings[i].start.isoformat()))
    summary = {
        "period": {"start": start.isoformat(), "end": end.isoformat(), "hours": period_h},
        "energy_kwh": energy,
        "site": {"energy_kwh": site_kwh, "channels": totals or sorted(power),
                 "energy_kwh_per_year": site.energy_kwh, "co2_t_per_year": site.co2_t,
                 "cost_jpy_per_year": site.cost_jpy},
        "baseline": baseline_fit,
        "air_systems": air_summary,
        "plan_total": sav.plan_totals(plan, site.energy_kwh, site.cost_jpy),
        "assumptions": params.assumptions.describe() | {
            "default_specific_energy_kwh_per_m3": DEFAULT_SPECIFIC_ENERGY_KWH_PER_M3,
            "annualisation_factor": per_year,
            "tariff_jpy_per_kwh": params.tariff_jpy_per_kwh},
        "calendar": calendar.describe(),
        "factor_set": engine.describe(),
        "counts": {k: sum(1 for f in findings if f.kind == k) for k in sorted({f.kind for f in findings})},
        "folded": {"count": len(folded), "energy_kwh": sum(findings[i].energy_kwh for i in folded),
                   "cost_jpy": sum(findings[i].cost_jpy or 0.0 for i in folded),
                   "co2_t": sum(findings[i].co2_t or 0.0 for i in folded),
                   "by_kind": {k: sum(1 for i in folded if findings[i].kind == k)
                               for k in sorted({findings[i].kind for i in folded})},
                   "threshold": {"energy_kwh": params.materiality_kwh, "share_of_channel": params.materiality_share}},
        "days_analysed": days,
        "outdoor_temperature": ctx.temp_day is not None,
    }
    if ctx.shifts_note is not None:
        summary["shifts_from_load"] = ctx.shifts_note
    generation = getattr(series, "generation", None)
    if generation:
        summary["generation_kwh"] = dict(generation)
    return AnalysisResult([findings[i] for i in order], plan, summary, [out.texts[i] for i in order])


def _demand_periods(s: Series, tz: str, period_min: int, grid: np.ndarray | None = None) -> dm.DemandPeriods:
    """Demand periods of a prepared channel (its rates and durations, so counters and
    power are treated as everywhere in the pipeline)."""
    dur_ms = np.round(s.dur_s * 1000.0).astype(np.int64)
    iv = dm.Intervals(s.t_ms, dur_ms, s.rate * dur_ms, 1.0 / 3_600_000.0)
    g, kwh, sec = dm.period_sums(iv, tz, period_min, grid=grid)
    cov = np.minimum(sec / (period_min * 60.0), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        kw = np.where(cov > 0, kwh * 60.0 / period_min, np.nan)
    return dm.DemandPeriods(g, kw, kwh, cov, period_min, tz)


def _peak_cut(total: Series, kwh: dict[str, np.ndarray], tz: str, params: AnalysisParams, out: Collector) -> None:
    """Peak cut / shift: the 基本料金 saved by moving what ran in the highest periods
    (`kwh`: each movable breaker's kWh per period on the incomer's grid, NaN where incomplete)."""
    d = _demand_periods(total, tz, params.demand_period_min)
    cut = dm.peak_cut(d, params.demand_keep_peaks, kwh)
    if cut is None or cut.cut_kw <= 0:
        return
    b = params.bill
    jpy = bill_mod.new_peak_cost_jpy_12m(cut.from_kw, cut.to_kw, b.basic_jpy_per_kw, b.power_factor_pct,
                                         b.consumption_tax_rate)
    movable = ", ".join(f"{c} {kw:.0f} kW" for c, kw in list(cut.movable.items())[:3])
    m = out.measure("peak_cut", ",".join(list(cut.movable)[:3]) or "site", 0.0,
                    f"move load out of the {cut.periods} highest {params.demand_period_min}-min periods "
                    f"({movable}): peak {cut.from_kw:.1f} -> {cut.to_kw:.1f} kW, 基本料金 "
                    f"{b.basic_jpy_per_kw:,.0f} JPY/kW x (185 - {b.power_factor_pct:g})/100 x 12 months incl. tax")
    m.demand_cost_jpy_per_year = float(jpy)


def _generation(power: dict[str, Series]) -> dict[str, float]:
    """Channels that deliver more energy than they take over the period (PV, a
    generator, a meter counting export as negative): kWh generated per channel.  They
    are no consumption: summed with the loads they made a site's energy negative and
    its savings over 100 %, and standby or baseline findings on them mean nothing."""
    out = {}
    for cid, s in power.items():
        e = rs.wsum(s.rate, s.dur_s) / 3600.0
        if e < 0:
            out[cid] = -e
    return out


def _shifts_from_load(power: dict[str, Series], calendar) -> tuple[dict | None, str]:
    """Production hours read off the site's hourly load (analytics/shifts.py): the
    site-total channels, else every power channel that is not a compressor."""
    from mieruka.calendar import SATURDAY, WORKDAY
    use = [c for c, s in power.items() if is_site_total(s.info)] or _only_meter(power) or \
        [c for c, s in power.items() if not is_compressor(s)] or list(power)
    prof = np.zeros((2, 24))
    seen = np.zeros((2, 24), bool)
    days = [0, 0]
    for cid in use:
        s = power[cid]
        lt, day_type, _, _ = calendar.classify_idle(s.t_ms)
        p = shifts_mod.hourly_profile((lt.minute // 60).astype(np.int64), day_type, s.rate, (WORKDAY, SATURDAY))
        seen |= np.isfinite(p)
        prof += np.nan_to_num(p)
        for i, t in enumerate((WORKDAY, SATURDAY)):
            days[i] = max(days[i], int(np.unique(lt.day[day_type == t]).size))
    prof[~seen] = np.nan
    return shifts_mod.infer_shifts(prof, (days[0], days[1]))


def _only_meter(power: dict[str, Series]) -> list[str]:
    """Without an incomer, a recording's one power meter (no equipment kind, not a
    compressor) is the site's meter: a logger on the main breaker, a utility's interval
    data.  Its night load holds everything that must run, so its standby is a pointer
    to track down on the breakers (as an incomer's), not a saving: claimed, it made half
    of a steel plant's energy "switch-off" waste."""
    if len(power) != 1:
        return []
    cid, s = next(iter(power.items()))
    if s.info.equipment_kind or is_compressor(s) or is_always_on(s.info):
        return []
    return [cid]


def _standby_or_base_load(cid: str, s: Series, per_year: float, out: Collector, extra_allowance_kw: float = 0.0,
                          site_total: bool = False) -> tuple[float | None, float | None]:
    """The standby finding of one power channel, or its base_load finding when the load
    must run (configured, an always-on kind) or does not follow production.
    Returns (standby waste kWh or None, base kW or None)."""
    ax = s.axis
    allowance = (s.info.standby_allowance_kw or 0.0) + extra_allowance_kw
    sb = standby_profile(s.rate, s.dur_s, s.production, s.local_day, allowance, day_runs=ax.day_runs, w_out=ax.w_out)
    # off at night and over days off (only on during breaks, e.g. lights at lunch): not standby
    nb = standby_profile(s.rate, s.dur_s, s.production, s.local_day, idle=s.idle, day_runs=ax.day_runs,
                         w_out=ax.w_idle)
    reason = bl.always_on_reason(s.info.always_on, s.info.equipment_kind)
    prod_kw = mean_rate(s, s.production)
    prod_h = float(ax.w_prod.sum()) / 3600.0
    if reason is None and sb is not None and not sb.is_off and s.info.always_on is None \
            and prod_h >= bl.MIN_HOURS_EACH and sb.hours >= bl.MIN_HOURS_EACH \
            and not bl.follows_production(sb.mean_kw, prod_kw):
        reason = "does_not_follow_production"
    if reason is not None:
        if (sb is None and reason != "configured") or (sb is not None and sb.is_off):
            return None, None       # nothing runs outside production: no base load to review
        base = sb.mean_kw if sb is not None else mean_rate(s)
        hours = float(s.dur_s.sum()) / 3600.0
        m = {"base_kw": base, "hours": hours, "reason": reason, "action": "review",
             "off_hours_mean_kw": sb.mean_kw if sb is not None else None, "production_mean_kw": prod_kw,
             "off_to_production_ratio": (sb.mean_kw / prod_kw) if sb is not None and prod_kw > 0 else None,
             "energy_outside_production_kwh": sb.energy_kwh if sb is not None else None}
        out.finding("base_load", cid, int(s.t_ms[0]), end_ms(s), base * hours, m, base * hours * per_year)
        return None, base
    if sb is None or not sb.reportable or (nb is not None and nb.is_off):
        return None, None
    m = {"mean_kw": sb.mean_kw, "mean_kw_all": sb.mean_kw_all, "hours": sb.hours, "allowance_kw": allowance,
         "energy_outside_production_kwh": sb.energy_kwh, "share_of_channel_energy": sb.share_of_channel_energy,
         "days": sb.days, "mean_kw_excluding_breaks": nb.mean_kw if nb is not None else None}
    if extra_allowance_kw:
        m["always_on_loads_kw"] = extra_allowance_kw
    total = site_total or is_site_total(s.info)
    if total:
        m["site_total"] = True          # a pointer to the breakers, not a saving (fleet waste, plan)
    out.finding("standby", cid, int(s.t_ms[0]), end_ms(s), sb.waste_kwh, m, sb.waste_kwh * per_year,
                template="standby_total" if total else None)
    return sb.waste_kwh, None


def _outdoor_temperature(temps: dict[str, Series], calendar) -> tuple[int, np.ndarray] | None:
    """(first local day, daily mean outdoor temperature) from the outdoor-air channels
    (the first by id when there are several), or None."""
    for cid in sorted(temps):
        s = temps[cid]
        dm, _ = base_mod.day_matrix_from_hourly(*s.axis.hourly_mean(s.rate), calendar)
        t = wx.daily_mean_temperature(dm.kw)
        if np.isfinite(t).any():
            return dm.first_day, t
    return None


def _on_days(by_day: tuple[int, np.ndarray] | None, first_day: int, n_days: int) -> np.ndarray | None:
    """A per-day series re-indexed to the days [first_day, first_day + n_days) (NaN outside)."""
    if by_day is None:
        return None
    d0, v = by_day
    out = np.full(n_days, np.nan)
    lo, hi = max(first_day, d0), min(first_day + n_days, d0 + v.size)
    if hi > lo:
        out[lo - first_day:hi - first_day] = v[lo - d0:hi - d0]
    return out


def _days_off(mats: dict, site_channels: list[str]) -> set[int]:
    """Local day numbers on which the whole site idled on a working day (see
    baseline_model.infer_days_off): the sum of the site channels' daily energy."""
    mats = {c: mats[c] for c in site_channels if c in mats}
    if not mats:
        return set()
    d0 = min(dm.first_day for dm, _ in mats.values())
    d1 = max(dm.first_day + dm.kw.shape[0] for dm, _ in mats.values())
    e = np.zeros(d1 - d0)
    cnt = np.zeros(d1 - d0)
    types = np.full(d1 - d0, -1)
    for dm, _ in mats.values():
        ed = bm.daily_energy(dm.kw)
        sl = slice(dm.first_day - d0, dm.first_day - d0 + ed.size)
        e[sl] += np.nan_to_num(ed)
        cnt[sl] += np.isfinite(ed)
        types[sl] = dm.day_type
    e[cnt < len(mats)] = np.nan
    off = bm.infer_days_off(e, types)
    return {d0 + int(i) for i in np.nonzero(off)[0]}


def _baseline(cid: str, s: Series, mat, calendar, out: Collector, temp_by_day=None, days_off: set[int] | None = None,
              adaptive: bool = True) -> tuple[dict, float]:
    """Fit metrics and gap findings (one per episode of consecutive days) of one power
    channel; returns (metrics, excess kWh)."""
    sat_works = bool(calendar.shifts.get("sat"))
    dm, prod_h = mat
    n = dm.kw.shape[0]
    day_type = dm.day_type
    off = np.zeros(n, bool)
    if days_off:
        off = np.isin(dm.first_day + np.arange(n), sorted(days_off))
        day_type = bm.off_days_as_company_holidays(day_type, off)
        prod_h = prod_h & ~off[:, None]
    kw = dm.kw
    temp_day = _on_days(temp_by_day, dm.first_day, n)
    fit = base_mod.fit_metrics(kw, day_type, sat_works)
    choice = bm.choose_model(kw, day_type, sat_works, temp_day, fit.get("cv_rmse")) if adaptive else \
        bm.Choice(bm.SPECS[0], {"day_type": fit.get("cv_rmse")}, False, "adaptive baselines switched off")
    models: dict = {}
    if choice.spec.name == "day_type":
        prof, sig, _ = base_mod.fit_profiles(kw, day_type, np.arange(n), sat_works)
        gaps = base_mod.find_gap_days(kw, day_type, prof, sig, prod_h)
    else:
        # two passes: the days found on the first are left out of the baseline of the second
        gaps, excl = [], None
        for _ in range(2):
            # the first pass learns from every day: the models choose_model fitted on them
            base, sig, models = bm.detection_baseline(kw, day_type, choice.spec, sat_works, temp_day, excl,
                                                      choice.all_day_models if excl is None else None, choice.shapes)
            pooled = base_mod._nanmedian(sig, axis=1)
            work = base_mod._nanmean(base[day_type == 0]) if (day_type == 0).any() else np.full(24, np.nan)
            gaps = base_mod.gap_days(kw, day_type, base, sig, pooled, work, prod_h)
            excl = np.zeros(n, bool)
            excl[[g.row for g in gaps]] = True
        fit = fit | base_mod.metrics_from_predictions(kw, choice.predictions, choice.n_params,
                                                      f"hourly, {choice.spec.name}, 4-fold by week, out of sample")
        if choice.weather_adjusted and temp_day is not None:
            gaps, excused = _weather_excused(gaps, temp_day)
            if excused:
                fit["gap_days_weather_excused"] = [calendar.day_to_date(dm.first_day + r).isoformat()
                                                   for r in excused]
    excl_fit = fit
    if gaps:
        # ASHRAE G14 allows non-routine events to be excluded: the same metrics without
        # the days found as gaps, in training and in scoring
        normal = kw.copy()
        normal[[g.row for g in gaps]] = np.nan
        if choice.spec.name == "day_type":
            excl_fit = base_mod.fit_metrics(normal, day_type, sat_works)
        else:
            # the folds' temperature models as chosen (daily fits; refitting them here would
            # double the cost for a secondary metric)
            p = bm.out_of_sample(normal, day_type, choice.spec, sat_works, temp_day, fold_models=choice.fold_models)
            cv, nmbe = bm.cv_rmse(normal, p, choice.n_params)
            excl_fit = {"cv_rmse": cv, "nmbe": nmbe}
    fit = fit | {"cv_rmse_excluding_gap_days": excl_fit["cv_rmse"], "nmbe_excluding_gap_days": excl_fit["nmbe"],
                 "gap_days": len(gaps), "model": choice.spec.name, "weather_adjusted": choice.weather_adjusted,
                 "weather_reason": choice.weather_reason, "drift_adjusted": choice.spec.tau_days is not None,
                 "drift_tau_days": choice.spec.tau_days, "cv_rmse_by_model": choice.cv_rmse,
                 "days_off_inferred": [calendar.day_to_date(dm.first_day + int(i)).isoformat()
                                       for i in np.nonzero(off & (dm.day_type != day_type))[0]]}
    if models:
        fit["temperature_models"] = {DAY_TYPES[t]: m.describe() for t, m in sorted(models.items())}
    tz = calendar.tz
    for ep in _episodes(gaps):
        first, last = ep[0], ep[-1]
        d_first = calendar.day_to_date(dm.first_day + first.row)
        d_last = calendar.day_to_date(dm.first_day + last.row)
        types = sorted({DAY_TYPES[int(day_type[g.row])] for g in ep})
        patterns = [g.pattern for g in ep]
        excess = sum(g.excess_kwh for g in ep)
        m = {"date": d_first.isoformat(), "last_date": d_last.isoformat(), "days": len(ep),
             "dates": [calendar.day_to_date(dm.first_day + g.row).isoformat() for g in ep],
             "day_type": types[0] if len(types) == 1 else "+".join(types), "excess_kwh": excess,
             "hours": sum(g.hours for g in ep), "actual_kwh": sum(g.actual_kwh for g in ep),
             "baseline_kwh": sum(g.baseline_kwh for g in ep),
             "pattern": max(set(patterns), key=lambda p: (patterns.count(p), p)),
             "excess_kwh_by_day": [g.excess_kwh for g in ep], "baseline_model": choice.spec.name}
        f = out.finding("baseline_gap", cid, 0, 0, excess, m,
                        template="baseline_gap_episode" if len(ep) > 1 else None)
        f.start = dt.datetime.combine(d_first, dt.time(first.first_hour), tz)
        f.end = dt.datetime.combine(d_last, dt.time(last.last_hour), tz) + dt.timedelta(hours=1)
    return fit, sum(g.excess_kwh for g in gaps)


EXTREME_WEATHER_PCT = 10.0      # days beyond this percentile of the period's temperatures, each side


def _weather_excused(gaps: list, temp_day: np.ndarray) -> tuple[list, list[int]]:
    """Gap days of a weather-driven channel that its weather explains: on the period's
    hottest or coldest days (beyond the 10th/90th percentile of daily mean temperature)
    a load that runs high all day or at night is the cooling or heating a straight-line
    temperature model under-predicts (degree-hours grow faster than the daily mean), not
    waste.  Equipment left on and holiday runs stay findings whatever the weather.
    Returns (gaps kept, rows excused)."""
    t = temp_day[np.isfinite(temp_day)]
    if t.size < 20:
        return gaps, []
    lo, hi = np.percentile(t, [EXTREME_WEATHER_PCT, 100.0 - EXTREME_WEATHER_PCT])
    keep, excused = [], []
    for g in gaps:
        x = temp_day[g.row]
        if g.pattern in ("high_day", "night_high") and np.isfinite(x) and (x >= hi or x <= lo):
            excused.append(g.row)
        else:
            keep.append(g)
    return keep, excused


def _episodes(gaps: list) -> list[list]:
    """Gap days grouped into runs of consecutive days."""
    eps: list[list] = []
    for g in sorted(gaps, key=lambda g: g.row):
        if eps and g.row == eps[-1][-1].row + 1:
            eps[-1].append(g)
        else:
            eps.append([g])
    return eps


def _plan_measures(out: Collector, sub: list[str], totals: list[str], standby_waste: dict, gap_excess: dict,
                   base_kw: dict, energy: dict, per_year: float, period_h: float) -> None:
    """Standby, gap and base-load measures, each kWh counted once.  Standby is claimed on
    the sub-meters only: an incomer's night load holds theirs, the air systems' (leaks,
    compressors at night) and loads that must run, so it is a pointer ("track it down on
    the breakers"), not a saving.  Gap excess comes from the sub-meters, or from the
    incomer when there are none (the same events seen twice are not added)."""
    a = out.assumptions
    sb_total = sum(v for c, v in standby_waste.items() if c in sub) * per_year
    if sb_total > 0:
        out.measure("standby_off", ",".join(sorted(c for c in standby_waste if c in sub)), sb_total,
                    "standby above allowance outside production, annualised")
    src = sub if any(c in gap_excess for c in sub) or not totals else totals
    gap_total = sum(v for c, v in gap_excess.items() if c in src)
    if gap_total > 0:
        out.measure("fix_baseline_gaps", ",".join(sorted(c for c in gap_excess if c in src)), gap_total * per_year,
                    f"excess over the baseline, annualised at the rate observed over {period_h / 24:.0f} days")
    share = a.base_load_reduction_share
    src = sub if any(c in base_kw for c in sub) or not totals else totals
    bl_kwh = sum(base_kw[c] * 8760.0 for c in base_kw if c in src)
    if share > 0 and bl_kwh > 0:
        out.measure("review_base_load", ",".join(sorted(c for c in base_kw if c in src)), share * bl_kwh,
                    f"{share:.0%} of the always-on base load (site assumption)")


def _material(findings: list[Finding], energy: dict, params: AnalysisParams) -> list[bool]:
    """Which findings are listed: every finding of a kind that cannot be folded, and
    the others when their kWh reaches both the absolute and the share threshold."""
    out = []
    for f in findings:
        if f.kind not in FOLDABLE:
            out.append(True)
            continue
        ch = energy.get(f.channel) or 0.0
        share = f.energy_kwh / ch if ch > 0 else 1.0
        out.append(f.energy_kwh >= params.materiality_kwh and share >= params.materiality_share)
    return out


def _note_extrapolation(findings: list[Finding], texts: list[dict], days: float, lang: str) -> None:
    """Findings with an annual figure from a short window say so (days analysed)."""
    for f, tx in zip(findings, texts):
        f.metrics["days_analysed"] = days
        if f.annual_energy_kwh is None:
            continue
        f.metrics["extrapolated"] = days < EXTRAPOLATED_UNDER_DAYS
        if days < EXTRAPOLATED_UNDER_DAYS:
            tx["en"] += f" Annual figure extrapolated from {days:.0f} days."
            tx["ja"] += f"（年間値は {days:.0f} 日間からの推定）"
            f.explanation = tx[lang]


# ------------------------------------------------------------------ stores and recordings
def params_for_site(cfg, **overrides) -> AnalysisParams:
    """Analysis parameters of a site: its language and its `[savings]` assumptions
    (keys left out keep the defaults); `overrides` set AnalysisParams fields."""
    a = sav.SavingsAssumptions()
    if cfg is not None:
        given = cfg.savings.model_dump(exclude_none=True)
        a.investment_jpy = {**a.investment_jpy, **given.pop("investment_jpy", {})}
        for k, v in given.items():
            setattr(a, k, v)
        overrides.setdefault("language", getattr(cfg.site, "language", "ja"))
        overrides.setdefault("bill", cfg.bill)
        overrides.setdefault("demand_period_min", cfg.demand.period_min)
        overrides.setdefault("demand_keep_peaks", cfg.demand.top_peaks)
    return AnalysisParams(assumptions=a, **{k: v for k, v in overrides.items() if v is not None})


def from_recording(rec) -> dict[str, ChannelData]:
    """Channels of a `mieruka.recording.Recording` (the pipeline drops non-OK readings)."""
    return dict(rec.channels)


def analyze_store(store, infos: list[ChannelInfo], calendar: SiteCalendar, cfg, start, end,
                  params: AnalysisParams | None = None, engine=None, progress=None,
                  extra_channels: dict | None = None) -> AnalysisResult:
    """Read [start, end) of each channel from a store and analyse it (with
    `extra_channels`, e.g. an outdoor temperature from a file, added)."""
    if engine is None:
        from .co2 import CO2Engine
        engine = CO2Engine.from_site(cfg)
    if params is None:
        params = params_for_site(cfg)
    from mieruka.quantities import QUANTITIES
    chans = {}
    for info in infos:
        q = QUANTITIES.get(info.quantity)
        if q is not None and q.counter:
            t, v = store.read_continuous(info.id, start, end)     # wraps and resets undone by the store
        else:
            t, v = store.read(info.id, start, end)
        chans[info.id] = ChannelData(info, t, v)
    for cid, data in (extra_channels or {}).items():
        chans.setdefault(cid, data)
    return analyze(chans, calendar, engine, params, progress)
