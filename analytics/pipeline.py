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
from typing import Any, Callable

import numpy as np

from mieruka.calendar import DAY_TYPES, SiteCalendar
from mieruka.models import ChannelData, ChannelInfo, Finding
from mieruka.roles import is_always_on, is_site_total

from . import baseline as base_mod
from . import bill as bill_mod
from . import demand as dm
from . import resample as rs
from . import savings as sav
from .air_system import DEFAULT_SPECIFIC_ENERGY_KWH_PER_M3, analyze_air_systems, is_compressor
from .findings import Collector, local_dt
from .series import CachedCalendar, Series, end_ms, prepare, role, select_channels
from .standby import standby_profile


@dataclass
class AnalysisParams:
    language: str = "ja"                         # explanation language: "ja" or "en" (both are in the JSON)
    tariff_jpy_per_kwh: float | None = None      # flat tariff; None: the engine's site tariffs
    max_gap_s: float | None = None               # None: 5 nominal steps, at least 2 min
    assumptions: sav.SavingsAssumptions = field(default_factory=sav.SavingsAssumptions)
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


# ------------------------------------------------------------------ preparing
# ------------------------------------------------------------------ analysis
def analyze(channels: dict[str, ChannelData], calendar: SiteCalendar, engine, params: AnalysisParams | None = None,
            progress: Callable[[str], None] | None = None) -> AnalysisResult:
    """Run the four detectors over the channels and price the findings (see module doc)."""
    params = params or AnalysisParams()
    tick = progress or (lambda _msg: None)
    calendar = CachedCalendar(calendar)
    series: dict[str, Series] = {}
    axes: dict = {}
    for cid in sorted(select_channels(channels)):
        ch = channels[cid]
        s = prepare(ch.info, ch.time, ch.value, ch.quality, calendar, params.max_gap_s, axes)
        if s is not None:
            series[cid] = s
        tick(f"prepare {cid}")
    power = {c: s for c, s in series.items() if role(s.info) == "power"}
    flows = {c: s for c, s in series.items() if role(s.info) == "flow"}
    pressures = {c: s for c, s in series.items() if role(s.info) == "pressure"}
    if not power and not flows:
        return AnalysisResult([], [], {"energy_kwh": {}, "baseline": {}, "period": None,
                                       "note": "no power or air-flow channel with data"}, [])
    t_first = min(int(s.t_ms[0]) for s in series.values())
    t_last = max(end_ms(s) for s in series.values())
    period_h = (t_last - t_first) / rs.MS_PER_HOUR
    per_year = 8760.0 / period_h if period_h > 0 else 0.0    # annualisation factor
    out = Collector(calendar.tz, params.language if params.language in ("en", "ja") else "en", params.assumptions)

    energy, baseline_fit, standby_waste, gap_excess = {}, {}, {}, {}
    for cid, s in power.items():
        energy[cid] = rs.wsum(s.rate, s.dur_s) / 3600.0
        if not is_compressor(s):          # compressors: see the air systems (night stop, leaks)
            w = _standby(cid, s, per_year, out)
            if w is not None:
                standby_waste[cid] = w
        tick(f"standby {cid}")
        baseline_fit[cid], excess = _baseline(cid, s, calendar, out)
        if excess:
            gap_excess[cid] = excess
        tick(f"baseline {cid}")
    air_summary = analyze_air_systems(power, flows, pressures, per_year, out)
    tick("air systems")

    # ---- site totals (a main/incomer channel, else the sum of the breakers)
    totals = [c for c, s in power.items() if is_site_total(s.info)]
    site_kwh = sum(energy[c] for c in (totals or power))
    sub = [c for c in power if c not in totals] if totals else list(power)
    sb_total = sum(v for c, v in standby_waste.items() if c in sub)
    if sb_total > 0:
        out.measure("standby_off", ",".join(sorted(c for c in standby_waste if c in sub)), sb_total * per_year,
                    "standby above allowance outside production, annualised")
    gap_total = sum(v for c, v in gap_excess.items() if c in sub)
    if gap_total > 0:
        out.measure("fix_baseline_gaps", ",".join(sorted(c for c in gap_excess if c in sub)), gap_total * per_year,
                    "excess over the day-type baseline, annualised at the observed rate")

    if params.bill is not None and len(totals) >= 1:
        # loads that must run around the clock cannot move out of a peak
        _peak_cut(series[totals[0]], {c: power[c] for c in sub if not is_always_on(power[c].info)},
                  calendar.timezone, params, out)
    findings = out.findings
    engine.price_findings(findings, tariff_jpy_per_kwh=params.tariff_jpy_per_kwh)
    start, end = local_dt(t_first, calendar.tz), local_dt(t_last, calendar.tz)
    site = Finding("site", "site", start, end, site_kwh * per_year, "site energy, annualised")
    engine.price_findings([site], tariff_jpy_per_kwh=params.tariff_jpy_per_kwh)
    plan = sav.price_measures(out.measures, engine, start, site.co2_t or 0.0, params.tariff_jpy_per_kwh)
    order = sorted(range(len(findings)), key=lambda i: (-(findings[i].cost_jpy or 0.0), -findings[i].energy_kwh,
                                                        findings[i].kind, findings[i].channel,
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
    }
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


def _peak_cut(total: Series, breakers: dict[str, Series], tz: str, params: AnalysisParams, out: Collector) -> None:
    """Peak cut / shift: the 基本料金 saved by moving what ran in the highest periods."""
    d = _demand_periods(total, tz, params.demand_period_min)
    per = {c: _demand_periods(s, tz, params.demand_period_min, d.start_ms) for c, s in breakers.items()}
    kwh = {c: np.where(p.complete, p.kwh, np.nan) for c, p in per.items()}
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


def _standby(cid: str, s: Series, per_year: float, out: Collector) -> float | None:
    """The standby finding of one power channel; returns its waste kWh (None: not reported)."""
    ax = s.axis
    allowance = s.info.standby_allowance_kw or 0.0
    sb = standby_profile(s.rate, s.dur_s, s.production, s.local_day, allowance, day_runs=ax.day_runs, w_out=ax.w_out)
    # off at night and over days off (only on during breaks, e.g. lights at lunch): not standby
    nb = standby_profile(s.rate, s.dur_s, s.production, s.local_day, idle=s.idle, day_runs=ax.day_runs,
                         w_out=ax.w_idle)
    if sb is None or not sb.reportable or (nb is not None and nb.is_off):
        return None
    m = {"mean_kw": sb.mean_kw, "mean_kw_all": sb.mean_kw_all, "hours": sb.hours, "allowance_kw": allowance,
         "energy_outside_production_kwh": sb.energy_kwh, "share_of_channel_energy": sb.share_of_channel_energy,
         "days": sb.days, "mean_kw_excluding_breaks": nb.mean_kw if nb is not None else None}
    total = is_site_total(s.info)
    out.finding("standby", cid, int(s.t_ms[0]), end_ms(s), sb.waste_kwh, m, sb.waste_kwh * per_year,
                template="standby_total" if total else None)
    return sb.waste_kwh


def _baseline(cid: str, s: Series, calendar, out: Collector) -> tuple[dict, float]:
    """Fit metrics and gap-day findings of one power channel; returns (metrics, excess kWh)."""
    sat_works = bool(calendar.shifts.get("sat"))
    dm, prod_h = base_mod.day_matrix_from_hourly(*s.axis.hourly_mean(s.rate), calendar)
    prof, sig, _ = base_mod.fit_profiles(dm.kw, dm.day_type, np.arange(dm.kw.shape[0]), sat_works)
    fit = base_mod.fit_metrics(dm.kw, dm.day_type, sat_works)
    gaps = base_mod.find_gap_days(dm.kw, dm.day_type, prof, sig, prod_h)
    excl = fit
    if gaps:
        # ASHRAE G14 allows non-routine events to be excluded: the same metrics without
        # the days found as gaps, in training and in scoring
        normal = dm.kw.copy()
        normal[[g.row for g in gaps]] = np.nan
        excl = base_mod.fit_metrics(normal, dm.day_type, sat_works)
    fit = fit | {"cv_rmse_excluding_gap_days": excl["cv_rmse"], "nmbe_excluding_gap_days": excl["nmbe"],
                 "gap_days": len(gaps)}
    tz = calendar.tz
    for g in gaps:
        date = calendar.day_to_date(dm.first_day + g.row)
        m = {"date": date.isoformat(), "day_type": DAY_TYPES[int(dm.day_type[g.row])], "excess_kwh": g.excess_kwh,
             "hours": g.hours, "actual_kwh": g.actual_kwh, "baseline_kwh": g.baseline_kwh, "pattern": g.pattern}
        f = out.finding("baseline_gap", cid, 0, 0, g.excess_kwh, m)
        f.start = dt.datetime.combine(date, dt.time(g.first_hour), tz)
        f.end = dt.datetime.combine(date, dt.time(g.last_hour), tz) + dt.timedelta(hours=1)
    return fit, sum(g.excess_kwh for g in gaps)


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
                  params: AnalysisParams | None = None, engine=None, progress=None) -> AnalysisResult:
    """Read [start, end) of each channel from a store and analyse it."""
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
    return analyze(chans, calendar, engine, params, progress)
