"""The analysis pipeline: channel arrays + calendar -> priced findings and a savings plan.

    result = analyze(channels, calendar, engine, params)
    result.to_json()          # {"findings": [...], "plan": [...], "summary": {...}}, byte-identical for the same input

`channels` maps a channel id to `(ChannelInfo, times datetime64[ms] UTC, values)`
(optionally a 4th element: quality codes; only OK values are used).  The
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

from mieruka.calendar import DAY_TYPES, SATURDAY, SiteCalendar
from mieruka.models import ChannelInfo, Finding, Quality

from . import air_leak as leak_mod
from . import baseline as base_mod
from . import compressor as comp_mod
from . import resample as rs
from . import savings as sav
from .standby import standby_profile
from .texts import MEASURE_NAMES, explain

COMPRESSOR_KINDS = {"compressor", "air_compressor", "コンプレッサ", "コンプレッサー"}
TOTAL_KINDS = {"main", "incomer", "total", "site", "受電", "主幹"}
DEFAULT_SPECIFIC_ENERGY_KWH_PER_M3 = 0.12    # 7.2 kW per m3/min: middle of the 5.5-8 range (field notes)


@dataclass
class AnalysisParams:
    language: str = "ja"                         # explanation language: "ja" or "en" (both are in the JSON)
    tariff_jpy_per_kwh: float | None = None      # flat tariff; None: the engine's site tariffs
    max_gap_s: float | None = None               # None: 5 nominal steps, at least 2 min
    assumptions: sav.SavingsAssumptions = field(default_factory=sav.SavingsAssumptions)


class Axis:
    """Everything that depends only on sample times, shared by the channels polled
    together: durations, calendar classes, day and hour runs, masked weights."""

    def __init__(self, t_ms: np.ndarray, max_gap_s: float | None, calendar: "_CachedCalendar") -> None:
        self.t_ms = t_ms
        self.step_s = rs.nominal_step_s(t_ms)
        self.dur_s = rs.durations_s(t_ms, self.step_s, max_gap_s)
        lt, _, self.production, self.idle = calendar.classify_idle(t_ms)
        self.local_day = lt.day
        self._cache: dict[str, Any] = {}

    def _get(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def day_runs(self) -> tuple[np.ndarray, np.ndarray]:
        return self._get("day_runs", lambda: rs.runs(self.local_day))

    @property
    def w_out(self) -> np.ndarray:
        """Seconds per sample outside production (0 inside)."""
        return self._get("w_out", lambda: self.dur_s * ~self.production)

    @property
    def w_idle(self) -> np.ndarray:
        """Seconds per sample outside production and breaks (0 elsewhere)."""
        return self._get("w_idle", lambda: self.dur_s * self.idle)

    @property
    def w_prod(self) -> np.ndarray:
        return self._get("w_prod", lambda: self.dur_s * self.production)

    @property
    def hours(self) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
        """(first UTC hour ms, number of hours, run starts, hour index per run, covered s per hour)."""
        def make():
            h0 = int(self.t_ms[0]) // rs.MS_PER_HOUR * rs.MS_PER_HOUR
            n = int(self.t_ms[-1] - h0) // rs.MS_PER_HOUR + 1
            starts, keys = rs.runs((self.t_ms - h0) // rs.MS_PER_HOUR)
            covered = np.zeros(n)
            covered[keys] = rs.run_sums(self.dur_s, starts)
            return h0, n, starts, keys, covered
        return self._get("hours", make)

    def hourly_mean(self, rate: np.ndarray, min_coverage: float = 0.5) -> tuple[np.ndarray, int]:
        """(mean rate per UTC hour, NaN where under half measured; first hour ms)."""
        h0, n, starts, keys, covered = self.hours
        integral = np.zeros(n)
        integral[keys] = rs.run_sums(rate * self.dur_s, starts)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = integral / covered
        mean[covered < min_coverage * 3600.0] = np.nan
        return mean, h0


@dataclass
class Series:
    """One prepared channel: rate per sample on a (shared) time axis."""

    info: ChannelInfo
    axis: Axis
    rate: np.ndarray

    @property
    def t_ms(self) -> np.ndarray:
        return self.axis.t_ms

    @property
    def dur_s(self) -> np.ndarray:
        return self.axis.dur_s

    @property
    def local_day(self) -> np.ndarray:
        return self.axis.local_day

    @property
    def production(self) -> np.ndarray:
        return self.axis.production

    @property
    def idle(self) -> np.ndarray:
        return self.axis.idle


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
def _stem(cid: str) -> str:
    for sep in (".", "_", "-", "/"):
        if sep in cid:
            return cid.rsplit(sep, 1)[0]
    return cid


def prepare(info: ChannelInfo, times: np.ndarray, values: np.ndarray, quality: np.ndarray | None,
            calendar: SiteCalendar, max_gap_s: float | None, axes: dict | None = None) -> Series | None:
    """Clean one channel and turn it into a rate (kW, m3/min or MPa) on a time axis
    (`axes`: a dict shared between calls, so channels with equal times share one)."""
    t = rs.to_ms(times)
    v = np.asarray(values, dtype=np.float64)
    if quality is not None:
        ok = np.asarray(quality) == Quality.OK
        if not ok.all():
            t, v = t[ok], v[ok]
    t, v = rs.clean_series(t, v)
    if t.size < 2:
        return None
    if info.quantity in ("energy_kwh", "air_volume_m3"):
        t, v = rs.counter_to_rate(t, v, 3600.0 if info.quantity == "energy_kwh" else 60.0, max_gap_s)
        if t.size < 2:
            return None
    if not isinstance(calendar, _CachedCalendar):
        calendar = _CachedCalendar(calendar)
    axes = {} if axes is None else axes
    key = (t.size, int(t[0]), int(t[-1]))
    ax = axes.get(key)
    if ax is None or not (ax.t_ms is t or np.array_equal(ax.t_ms, t)):
        ax = Axis(t, max_gap_s, calendar)
        axes[key] = ax
    return Series(info, ax, v)


def _role(info: ChannelInfo) -> str | None:
    q = info.quantity
    if q in ("power_kw", "energy_kwh"):
        return "power"
    if q in ("air_flow_m3min", "air_volume_m3"):
        return "flow"
    if q == "pressure_mpa":
        return "pressure"
    return None


def _select(channels: dict[str, tuple]) -> dict[str, tuple]:
    """Drop a counter channel when a rate channel of the same meter (id stem or
    equipment) is there: the rate has the time detail, the counter would double count."""
    rate_stems = {}
    for cid, tup in channels.items():
        info = tup[0]
        if info.quantity in ("power_kw", "air_flow_m3min"):
            rate_stems.setdefault(info.quantity, set()).update({_stem(cid), info.equipment or cid})
    out = {}
    for cid, tup in channels.items():
        info = tup[0]
        rate_q = {"energy_kwh": "power_kw", "air_volume_m3": "air_flow_m3min"}.get(info.quantity)
        if rate_q and ({_stem(cid), info.equipment or "\0"} & rate_stems.get(rate_q, set())):
            continue
        if _role(info):
            out[cid] = tup
    return out


class _CachedCalendar:
    """A SiteCalendar that remembers its answers for identical time axes: meters polled
    together share timestamps, so 50 channels cost one classification, not 50."""

    def __init__(self, cal: SiteCalendar) -> None:
        self._cal = cal
        self._classified: dict[tuple, tuple] = {}
        self._types: dict[tuple[int, int], np.ndarray] = {}

    def __getattr__(self, name: str):
        return getattr(self._cal, name)

    def classify(self, times_utc: np.ndarray):
        t = np.asarray(times_utc)
        key = (t.size, t[0].item() if t.size else None, t[-1].item() if t.size else None)
        hit = self._classified.get(key)
        if hit is not None and np.array_equal(hit[0], t):
            return hit[1]
        out = self._cal.classify(t)
        self._classified[key] = (t, out)
        return out

    def classify_idle(self, t_ms: np.ndarray):
        """classify() plus the idle mask (outside production, breaks excluded), cached too."""
        key = ("idle", t_ms.size, int(t_ms[0]), int(t_ms[-1]))
        hit = self._classified.get(key)
        if hit is not None and np.array_equal(hit[0], t_ms):
            return hit[1]
        lt, day_type, prod = self.classify(t_ms.astype("datetime64[ms]"))
        out = (lt, day_type, prod, rs.idle_mask(self._cal, lt.minute, lt.weekday, day_type, prod))
        self._classified[key] = (t_ms, out)
        return out

    def day_types(self, first_day: int, last_day: int) -> np.ndarray:
        key = (first_day, last_day)
        if key not in self._types:
            self._types[key] = self._cal.day_types(first_day, last_day)
        return self._types[key]


# ------------------------------------------------------------------ helpers
def _dt(ms: int, tz) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000.0, dt.timezone.utc).astimezone(tz)


def _finding(kind: str, channel: str, start_ms: int, end_ms: int, energy_kwh: float, metrics: dict,
             tz, texts: list, lang: str, annual: float | None = None, **extra) -> Finding:
    tx = {lg: explain(kind, channel, metrics, energy_kwh, lg, **extra) for lg in ("en", "ja")}
    texts.append(tx)
    return Finding(kind, channel, _dt(start_ms, tz), _dt(end_ms, tz), float(energy_kwh), tx[lang], metrics,
                   annual_energy_kwh=annual)


def _mean_rate(s: Series, mask: np.ndarray | None = None) -> float:
    w = s.dur_s if mask is None else (s.axis.w_prod if mask is s.production else s.dur_s * mask)
    tot = float(w.sum())
    return rs.wsum(s.rate, w) / tot if tot > 0 else 0.0


# ------------------------------------------------------------------ analysis
def analyze(channels: dict[str, tuple], calendar: SiteCalendar, engine, params: AnalysisParams | None = None,
            progress: Callable[[str], None] | None = None) -> AnalysisResult:
    """Run the four detectors over the channels and price the findings (see module doc)."""
    params = params or AnalysisParams()
    tick = progress or (lambda _msg: None)
    calendar = _CachedCalendar(calendar)
    tz = calendar.tz
    series: dict[str, Series] = {}
    axes: dict = {}
    for cid in sorted(_select(channels)):
        tup = channels[cid]
        s = prepare(tup[0], tup[1], tup[2], tup[3] if len(tup) > 3 else None, calendar, params.max_gap_s, axes)
        if s is not None:
            series[cid] = s
        tick(f"prepare {cid}")
    power = {c: s for c, s in series.items() if _role(s.info) == "power"}
    flows = {c: s for c, s in series.items() if _role(s.info) == "flow"}
    pressures = {c: s for c, s in series.items() if _role(s.info) == "pressure"}
    findings: list[Finding] = []
    texts: list[dict] = []
    if not power and not flows:
        return AnalysisResult([], [], {"energy_kwh": {}, "baseline": {}, "period": None,
                                       "note": "no power or air-flow channel with data"}, [])
    t_first = min(int(s.t_ms[0]) for s in series.values())
    t_last = max(int(s.t_ms[-1] + s.dur_s[-1] * 1000) for s in series.values())
    period_h = (t_last - t_first) / rs.MS_PER_HOUR
    per_year = 8760.0 / period_h if period_h > 0 else 0.0    # annualisation factor
    lang = params.language if params.language in ("en", "ja") else "en"

    # ---- energy, standby and baseline per power channel
    energy = {}
    baseline_fit = {}
    standby_waste: dict[str, float] = {}
    gap_excess: dict[str, float] = {}
    sat_works = bool(calendar.shifts.get("sat"))
    for cid, s in power.items():
        e = rs.wsum(s.rate, s.dur_s) / 3600.0
        energy[cid] = e
        is_comp = (s.info.equipment_kind or "").lower() in COMPRESSOR_KINDS
        if not is_comp:
            ax = s.axis
            sb = standby_profile(s.rate, s.dur_s, s.production, s.local_day, s.info.standby_allowance_kw or 0.0,
                                 day_runs=ax.day_runs, w_out=ax.w_out)
            # off at night and over days off (only on during breaks, e.g. lights at lunch): not standby
            nb = standby_profile(s.rate, s.dur_s, s.production, s.local_day, idle=s.idle,
                                 day_runs=ax.day_runs, w_out=ax.w_idle)
            if sb is not None and sb.reportable and not (nb is not None and nb.is_off):
                m = {"mean_kw": sb.mean_kw, "mean_kw_all": sb.mean_kw_all, "hours": sb.hours,
                     "allowance_kw": s.info.standby_allowance_kw or 0.0,
                     "energy_outside_production_kwh": sb.energy_kwh,
                     "share_of_channel_energy": sb.share_of_channel_energy, "days": sb.days,
                     "mean_kw_excluding_breaks": nb.mean_kw if nb is not None else None}
                findings.append(_finding("standby", cid, int(s.t_ms[0]), _end_ms(s), sb.waste_kwh, m, tz,
                                         texts, lang, sb.waste_kwh * per_year))
                standby_waste[cid] = sb.waste_kwh
        tick(f"standby {cid}")
        dm, prod_h = base_mod.day_matrix_from_hourly(*s.axis.hourly_mean(s.rate), calendar)
        prof, sig, _ = base_mod.fit_profiles(dm.kw, dm.day_type, np.arange(dm.kw.shape[0]), sat_works)
        baseline_fit[cid] = base_mod.fit_metrics(dm.kw, dm.day_type, sat_works)
        gaps = base_mod.find_gap_days(dm.kw, dm.day_type, prof, sig, prod_h)
        if gaps:
            # ASHRAE G14 allows non-routine events to be excluded: the same metrics without
            # the days found as gaps, in training and in scoring
            normal = dm.kw.copy()
            normal[[g.row for g in gaps]] = np.nan
            excl = base_mod.fit_metrics(normal, dm.day_type, sat_works)
        else:
            excl = baseline_fit[cid]
        baseline_fit[cid] = baseline_fit[cid] | {
            "cv_rmse_excluding_gap_days": excl["cv_rmse"], "nmbe_excluding_gap_days": excl["nmbe"],
            "gap_days": len(gaps)}
        for g in gaps:
            day = dm.first_day + g.row
            date = calendar.day_to_date(day)
            start = dt.datetime.combine(date, dt.time(g.first_hour), tz)
            end = dt.datetime.combine(date, dt.time(g.last_hour), tz) + dt.timedelta(hours=1)
            m = {"date": date.isoformat(), "day_type": DAY_TYPES[int(dm.day_type[g.row])],
                 "excess_kwh": g.excess_kwh, "hours": g.hours, "actual_kwh": g.actual_kwh,
                 "baseline_kwh": g.baseline_kwh, "pattern": g.pattern}
            f = _finding("baseline_gap", cid, 0, 0, g.excess_kwh, m, tz, texts, lang)
            f.start, f.end = start, end
            findings.append(f)
            gap_excess[cid] = gap_excess.get(cid, 0.0) + g.excess_kwh
        tick(f"baseline {cid}")

    # ---- compressed-air systems: compressors, flow meters, pressure by `system`
    systems: dict[str, dict[str, list[str]]] = {}
    for cid, s in power.items():
        if (s.info.equipment_kind or "").lower() in COMPRESSOR_KINDS:
            systems.setdefault(s.info.system or cid, {"comp": [], "flow": [], "pres": []})["comp"].append(cid)
    for cid, s in flows.items():
        systems.setdefault(s.info.system or cid, {"comp": [], "flow": [], "pres": []})["flow"].append(cid)
    for cid, s in pressures.items():
        if s.info.system in systems:
            systems[s.info.system]["pres"].append(cid)
    measures: list[sav.Measure] = []
    a = params.assumptions
    air_summary = {}
    for sysid in sorted(systems):
        grp = systems[sysid]
        flow_mean = sum(_mean_rate(flows[c]) for c in grp["flow"])
        prod_flow = sum(_mean_rate(flows[c], flows[c].production) for c in grp["flow"])
        pres = None
        if grp["pres"]:
            ps = pressures[grp["pres"][0]]
            k = max(1, ps.rate.size // 100_000)
            run_p = ps.rate[::k][ps.production[::k]] if ps.production[::k].any() else ps.rate[::k]
            pres = (float(np.percentile(run_p, 5)), float(np.percentile(run_p, 95)), float(np.median(run_p)))
        comp_kw = 0.0
        profiles = {}
        for cid in grp["comp"]:
            s = power[cid]
            prof_c, state, loaded = comp_mod.compressor_profile(s.rate, s.dur_s, s.production, s.info.rated_power_kw,
                                                                 idle=s.idle)
            profiles[cid] = (prof_c, state, loaded)
            comp_kw += prof_c.energy_kwh / prof_c.hours if prof_c.hours else 0.0
        # system specific energy: metered air if there is a flow meter, else loaded time x capacity
        cap_total = sum(power[c].info.capacity_m3_per_min or 0.0 for c in grp["comp"]) or None
        if flow_mean > 0 and comp_kw > 0:
            sec = comp_kw / (flow_mean * 60.0)
        elif cap_total and profiles:
            air = sum(p.mean_loaded_fraction * (power[c].info.capacity_m3_per_min or 0.0)
                      for c, (p, _, _) in profiles.items())
            sec = comp_kw / (air * 60.0) if air > 0 else None
        else:
            sec = None
        sec_used = sec if sec else DEFAULT_SPECIFIC_ENERGY_KWH_PER_M3
        off_share = float(np.mean([p.off_share for p, _, _ in profiles.values()])) if profiles else 0.0
        for cid in grp["comp"]:
            s = power[cid]
            p, state, loaded = profiles[cid]
            cap = s.info.capacity_m3_per_min
            if not cap and flow_mean > 0 and p.mean_loaded_fraction > 0 and len(grp["comp"]) == 1:
                cap = flow_mean / p.mean_loaded_fraction      # mass balance: delivered air = loaded time x capacity
            m = {"control": p.control, "load_share": p.load_share, "unload_share": p.unload_share,
                 "off_share": p.off_share, "cycles_per_hour": p.cycles_per_hour, "full_load_kw": p.full_load_kw,
                 "unload_power_kw": p.unload_power_kw, "loaded_power_kw": p.loaded_power_kw,
                 "loaded_specific_power_kw_per_m3min": (p.loaded_power_kw / cap) if cap else None,
                 "system_specific_energy_kwh_per_m3": sec, "capacity_m3_per_min": cap,
                 "capacity_estimated": bool(cap and not s.info.capacity_m3_per_min),
                 "mean_loaded_fraction": p.mean_loaded_fraction, "energy_kwh": p.energy_kwh,
                 "energy_outside_production_kwh": p.energy_outside_production_kwh,
                 "unload_energy_kwh": p.unload_share * p.hours * p.unload_power_kw,
                 "pressure_p5_mpa": pres[0] if pres else None, "pressure_p95_mpa": pres[1] if pres else None,
                 "pressure_median_mpa": pres[2] if pres else None, **p.speed_band_shares}
            findings.append(_finding("compressor_profile", cid, int(s.t_ms[0]), _end_ms(s),
                                     m["unload_energy_kwh"], m, tz, texts, lang, m["unload_energy_kwh"] * per_year))
            # measures of this compressor
            w_prod = s.axis.w_prod
            prod_e = rs.wsum(s.rate, w_prod) / 3600.0 * per_year
            night_e = p.energy_outside_production_kwh * per_year
            if night_e > 0 and p.running_hours_outside_production >= 1.0:
                measures.append(_measure("compressor_night_stop", cid, night_e,
                                         f"compressor energy outside production ({p.running_hours_outside_production:,.0f} h "
                                         f"running in the period)", a, lang))
            kwh, basis = sav.pressure_setpoint_kwh(prod_e, pres[2] if pres else None, a)
            if kwh > 0:
                measures.append(_measure("pressure_setpoint", cid, kwh, basis, a, lang))
            if p.control == "load_unload":
                w_run = w_prod * (state != comp_mod.OFF)
                run_h = float(w_run.sum())
                f_load = rs.wsum(loaded, w_run) / run_h if run_h > 0 else 0.0
                run_e = rs.wsum(s.rate, w_run) / 3600.0 * per_year
                kwh, basis = sav.vsd_kwh(run_e, f_load, p.full_load_kw, p.unload_power_kw, a)
                if kwh > 0:
                    measures.append(_measure("vsd_compressor", cid, kwh, basis, a, lang,
                                             investment=a.vsd_investment_jpy_per_kw * p.full_load_kw,
                                             kind="equipment"))
        # leaks: flow meters first, else the leak load method on each compressor with a capacity
        leaks: list[tuple[str, leak_mod.LeakResult, float | None]] = []
        for cid in grp["flow"]:
            fs = flows[cid]
            r = leak_mod.leak_from_flow(fs.rate, fs.dur_s, fs.production, fs.local_day, fs.idle)
            if r is not None:
                leaks.append((cid, r, cap_total))
        if not leaks:
            for cid in grp["comp"]:
                s = power[cid]
                p, state, loaded = profiles[cid]
                if s.info.capacity_m3_per_min:
                    r = leak_mod.leak_from_load(loaded, s.dur_s, s.idle, s.local_day,
                                                s.info.capacity_m3_per_min)
                    if r is not None:
                        w_prod = s.axis.w_prod
                        r.extra["production_flow_m3min"] = s.info.capacity_m3_per_min * (
                            rs.wsum(loaded, w_prod) / float(w_prod.sum()) if w_prod.sum() > 0 else 0.0)
                        leaks.append((cid, r, s.info.capacity_m3_per_min))
        pressurised_h_year = 8760.0 * (1.0 - off_share)
        night_stop = any(mm.id == "compressor_night_stop" and mm.target in grp["comp"] for mm in measures)
        for cid, r, cap in leaks:
            ch = series[cid]
            pflow = r.extra.get("production_flow_m3min") or 0.0
            period_pressurised_h = ch.dur_s.sum() / 3600.0 * (1.0 - off_share)
            e_period = r.leak_flow_m3min * 60.0 * period_pressurised_h * sec_used
            m = {"system": sysid, "method": r.method, "leak_flow_m3min": r.leak_flow_m3min,
                 "leak_share": r.leak_flow_m3min / pflow if pflow > 0 else None,
                 "leak_share_of_capacity": r.leak_flow_m3min / cap if cap else None,
                 "production_flow_m3min": pflow, "specific_energy_kwh_per_m3": sec_used,
                 "specific_energy_assumed": sec is None, "hours_outside_production": r.hours_outside_production,
                 "days": r.days, "annual_energy_kwh": r.leak_flow_m3min * 60.0 * pressurised_h_year * sec_used}
            if r.trend is not None:
                m.update({"trend_m3min_per_week": r.trend.slope_m3min_per_week, "trend_r2": r.trend.r2,
                          "weekly_m3min": r.trend.weekly_m3min, "growing": r.trend.growing})
            findings.append(_finding("air_leak", cid, int(ch.t_ms[0]), _end_ms(ch), e_period, m, tz, texts,
                                     lang, m["annual_energy_kwh"]))
            if r.trend is not None and r.trend.growing:
                tr = r.trend
                gm = {"system": sysid, "slope_m3min_per_week": tr.slope_m3min_per_week,
                      "growth_relative": tr.growth_relative, "weeks": len(tr.weekly_m3min), "trend_r2": tr.r2,
                      "weekly_m3min": tr.weekly_m3min, "first_week_m3min": tr.weekly_m3min[0],
                      "last_week_m3min": tr.weekly_m3min[-1]}
                # the energy of the growth: the added flow over the last week vs the first, over the span
                added = max(tr.weekly_m3min[-1] - tr.weekly_m3min[0], 0.0)
                e_g = 0.5 * added * 60.0 * period_pressurised_h * sec_used
                findings.append(_finding("air_leak_growth", cid, int(ch.t_ms[0]), _end_ms(ch), e_g, gm, tz,
                                         texts, lang, added * 60.0 * pressurised_h_year * sec_used))
            hours = 8760.0 * _production_share(ch) if night_stop else pressurised_h_year
            kwh, basis = sav.leak_repair_kwh(r.leak_flow_m3min, cap, hours, sec_used, a)
            if kwh > 0:
                measures.append(_measure("leak_repair", sysid, kwh, basis, a, lang))
        if grp["comp"]:
            prod_air = (prod_flow if prod_flow > 0 else sum(
                p.mean_loaded_fraction * (power[c].info.capacity_m3_per_min or 0.0) for c, (p, _, _) in profiles.items()))
            prod_air_year = prod_air * 60.0 * 8760.0 * np.mean([_production_share(power[c]) for c in grp["comp"]])
            kwh, basis = sav.pulse_blow_kwh(prod_air_year, sec_used, a)
            if kwh > 0:
                measures.append(_measure("pulse_blow", sysid, kwh, basis, a, lang, kind="retrofit"))
        air_summary[sysid] = {"compressors": grp["comp"], "flow_meters": grp["flow"], "pressure": grp["pres"],
                              "specific_energy_kwh_per_m3": sec, "flow_mean_m3min": flow_mean}
        tick(f"air system {sysid}")

    # ---- site totals (a main/incomer channel, else the sum of the breakers)
    totals = [c for c, s in power.items() if (s.info.equipment_kind or "").lower() in TOTAL_KINDS]
    site_kwh = sum(energy[c] for c in (totals or power))
    sub = [c for c in power if c not in totals] if totals else list(power)
    sb_total = sum(v for c, v in standby_waste.items() if c in sub)
    if sb_total > 0:
        measures.append(_measure("standby_off", ",".join(sorted(c for c in standby_waste if c in sub)),
                                 sb_total * per_year, "standby above allowance outside production, annualised", a, lang))
    gap_total = sum(v for c, v in gap_excess.items() if c in sub)
    if gap_total > 0:
        measures.append(_measure("fix_baseline_gaps", ",".join(sorted(c for c in gap_excess if c in sub)),
                                 gap_total * per_year, "excess over the day-type baseline, annualised at the "
                                 "observed rate", a, lang))

    engine.price_findings(findings, tariff_jpy_per_kwh=params.tariff_jpy_per_kwh)
    start = _dt(t_first, tz)
    site = Finding("site", "site", start, _dt(t_last, tz), site_kwh * per_year, "site energy, annualised")
    engine.price_findings([site], tariff_jpy_per_kwh=params.tariff_jpy_per_kwh)
    plan = sav.price_measures(measures, engine, start, site.co2_t or 0.0, params.tariff_jpy_per_kwh)
    order = sorted(range(len(findings)), key=lambda i: (-(findings[i].cost_jpy or 0.0), -findings[i].energy_kwh,
                                                        findings[i].kind, findings[i].channel,
                                                        findings[i].start.isoformat()))
    findings = [findings[i] for i in order]
    texts = [texts[i] for i in order]
    summary = {
        "period": {"start": start.isoformat(), "end": _dt(t_last, tz).isoformat(), "hours": period_h},
        "energy_kwh": energy,
        "site": {"energy_kwh": site_kwh, "channels": totals or sorted(power),
                 "energy_kwh_per_year": site.energy_kwh, "co2_t_per_year": site.co2_t,
                 "cost_jpy_per_year": site.cost_jpy},
        "baseline": baseline_fit,
        "air_systems": air_summary,
        "plan_total": sav.plan_totals(plan, site.energy_kwh, site.cost_jpy),
        "assumptions": a.describe() | {"default_specific_energy_kwh_per_m3": DEFAULT_SPECIFIC_ENERGY_KWH_PER_M3,
                                       "annualisation_factor": per_year},
        "calendar": calendar._cal.describe(),
        "factor_set": engine.describe(),
        "counts": {k: sum(1 for f in findings if f.kind == k) for k in sorted({f.kind for f in findings})},
    }
    return AnalysisResult(findings, plan, summary, texts)


def _production_share(s: Series) -> float:
    tot = float(s.dur_s.sum())
    return float(s.axis.w_prod.sum()) / tot if tot > 0 else 0.0


def _measure(mid: str, target: str, kwh: float, basis: str, a: sav.SavingsAssumptions, lang: str,
             investment: float | None = None, kind: str = "operation") -> sav.Measure:
    en, ja = MEASURE_NAMES[mid]
    inv = a.investment_jpy.get(mid) if investment is None else investment
    return sav.Measure(mid, ja if lang == "ja" else en, en, ja, target, float(kwh), basis, inv, kind=kind)


# ------------------------------------------------------------------ stores and recordings
def from_recording(rec) -> dict[str, tuple]:
    """Channel arrays of a `mieruka.recording.Recording` (non-OK readings dropped)."""
    return {cid: (c.info, c.time, c.value, c.quality) for cid, c in rec.channels.items()}


def analyze_store(store, infos: list[ChannelInfo], calendar: SiteCalendar, cfg, start, end,
                  params: AnalysisParams | None = None, engine=None, progress=None) -> AnalysisResult:
    """Read [start, end) of each channel from a store and analyse it."""
    if engine is None:
        from .co2 import CO2Engine
        engine = CO2Engine.from_site(cfg)
    if params is None:
        params = AnalysisParams(language=getattr(cfg.site, "language", "ja"))
    from mieruka.quantities import QUANTITIES
    chans = {}
    for info in infos:
        q = QUANTITIES.get(info.quantity)
        if q is not None and q.counter and hasattr(store, "read_continuous"):
            t, v = store.read_continuous(info.id, start, end)     # wraps and resets undone by the store
        else:
            t, v = store.read(info.id, start, end)
        chans[info.id] = (info, t, v)
    return analyze(chans, calendar, engine, params, progress)


def _end_ms(s: Series) -> int:
    """End of the last sample's interval."""
    return int(s.t_ms[-1] + s.dur_s[-1] * 1000.0)
