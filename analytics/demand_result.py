"""The demand result of a site: which channel, its periods, monthly maxima, top peaks
with what ran, the summary and the bill impact, as one JSON-ready dict.  Shared
by `mieruka demand`, the API and the report, so they always agree.

    result = demand_result(channels, "Asia/Tokyo", DemandSettings(contract_kw=300))

`channels` maps a channel id to mieruka.recording.ChannelData-like objects (info,
time, value, quality) or tuples (info, time, value[, quality]).  Pure.
"""
from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mieruka.models import ChannelInfo, Quality
from mieruka.roles import is_always_on, is_site_total

from . import bill as bill_mod
from . import demand as dm

POWER, ENERGY = "power_kw", "energy_kwh"


@dataclass
class DemandSettings:
    channel: str | None = None            # --channel, else [demand] channel, else the site total
    period_min: int = 30
    contract_kw: float | None = None
    target_kw: float | None = None
    alarm_stages: list[float] = field(default_factory=lambda: [0.8, 0.9, 1.0])
    top_peaks: int = 10
    start_ms: int | None = None
    end_ms: int | None = None

    @classmethod
    def from_site(cls, cfg, **overrides) -> "DemandSettings":
        s = cls()
        if cfg is not None:
            d = cfg.demand
            s = cls(d.channel, d.period_min, d.contract_kw, d.target_kw, list(d.alarm_stages), d.top_peaks)
        for k, v in overrides.items():
            if v is not None:
                setattr(s, k, v)
        return s


class DemandInputError(ValueError):
    """No usable channel: the message says what to pass."""


def _parts(x) -> tuple[ChannelInfo, np.ndarray, np.ndarray]:
    if isinstance(x, tuple):
        info, t, v = x[0], x[1], x[2]
        q = x[3] if len(x) > 3 else None
    else:
        info, t, v, q = x.info, x.time, x.value, x.quality
    t = np.asarray(t)
    if np.issubdtype(t.dtype, np.datetime64):
        t = t.astype("datetime64[ms]").astype(np.int64)
    v = np.asarray(v, np.float64)
    if q is not None:
        ok = np.asarray(q) == Quality.OK
        if not ok.all():
            t, v = t[ok], v[ok]
    return info, t, v


def _stem(cid: str) -> str:
    for sep in (".", "_", "-", "/", ":"):
        if sep in cid:
            return cid.rsplit(sep, 1)[0]
    return cid


def choose_channel(infos: dict[str, ChannelInfo], settings: DemandSettings) -> str:
    """--channel / [demand] channel when given, else the site-total channel (power
    first: its counter partner is found anyway)."""
    if settings.channel:
        if settings.channel not in infos:
            raise DemandInputError(f"channel {settings.channel!r} is not in the data "
                                   f"(channels: {', '.join(sorted(infos)[:12])})")
        if infos[settings.channel].quantity not in (POWER, ENERGY):
            raise DemandInputError(f"channel {settings.channel!r} is {infos[settings.channel].quantity}; "
                                   "demand needs power_kw or energy_kwh")
        return settings.channel
    totals = sorted(c for c, i in infos.items() if i.quantity in (POWER, ENERGY) and is_site_total(i))
    if not totals:
        # a recording of one meter without an equipment kind (a logger on the main breaker,
        # a utility's interval data) is the site's meter, as in the analysis
        for q in (POWER, ENERGY):
            only = [c for c, i in infos.items() if i.quantity == q]
            if len(only) == 1 and not infos[only[0]].equipment_kind:
                return only[0]
            if only:
                break
        meters = sorted(c for c, i in infos.items() if i.quantity in (POWER, ENERGY))
        raise DemandInputError("no site-total channel (equipment_kind incomer/main/受電/主幹); "
                               "name the incomer with --channel or [demand] channel"
                               + (f" (power/energy channels: {', '.join(meters[:12])})" if meters else ""))
    power = [c for c in totals if infos[c].quantity == POWER]
    return (power or totals)[0]


def partner(infos: dict[str, ChannelInfo], cid: str) -> str | None:
    """The other quantity of the same meter (power <-> energy counter): same meter id,
    else same id stem or equipment, else the only site-total channel of that quantity."""
    me = infos[cid]
    want = ENERGY if me.quantity == POWER else POWER
    cands = [c for c, i in infos.items() if i.quantity == want and c != cid]
    for key in (lambda i, c: i.meter and i.meter == me.meter,
                lambda i, c: _stem(c) == _stem(cid) and _stem(cid) != cid,
                lambda i, c: i.equipment and i.equipment == me.equipment):
        hits = [c for c in cands if key(infos[c], c)]
        if len(hits) == 1:
            return hits[0]
    if is_site_total(me):
        tot = [c for c in cands if is_site_total(infos[c])]
        if len(tot) == 1:
            return tot[0]
    return None


def _breakers(infos: dict[str, ChannelInfo], exclude: set[str]) -> dict[str, tuple[str | None, str | None]]:
    """Breaker loads below the incomer: name -> (counter id, power id)."""
    out: dict[str, tuple[str | None, str | None]] = {}
    used: set[str] = set(exclude)
    for c in sorted(infos):
        i = infos[c]
        if c in used or i.quantity != POWER or is_site_total(i):
            continue
        p = partner(infos, c)
        p = p if p not in used else None
        out[c] = (p, c)
        used.update({c, p} - {None})
    for c in sorted(infos):
        i = infos[c]
        if c in used or i.quantity != ENERGY or is_site_total(i):
            continue
        out[c] = (c, None)
        used.add(c)
    return out


def _periods(data: dict, counter: str | None, power: str | None, tz: str, s: DemandSettings) -> dm.DemandPeriods:
    kw = {}
    if counter is not None:
        _, t, v = data[counter]
        kw["counter"] = (t, v)
    if power is not None:
        _, t, v = data[power]
        kw["power"] = (t, v)
    return dm.demand_periods(tz, s.period_min, start_ms=s.start_ms, end_ms=s.end_ms, **kw)


def iso(t_ms: int | None, tz: zoneinfo.ZoneInfo) -> str | None:
    if t_ms is None:
        return None
    return dt.datetime.fromtimestamp(t_ms / 1000, dt.timezone.utc).astimezone(tz).isoformat()


def _r(x: float | None, nd: int = 3) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), nd) + 0.0


def _cov(c: float) -> float:
    """Coverage to 4 decimals, rounded down: a period shows 1.0 only when it is complete."""
    return 1.0 if c >= dm.COMPLETE else math.floor(float(c) * 1e4) / 1e4


@dataclass
class DemandComputation:
    """Everything behind the JSON, for callers that want arrays (report charts, bill)."""

    channel: str
    periods: dm.DemandPeriods
    monthly: list[dm.MonthMax]
    peaks: list[dm.Peak]
    breakers: dict[str, np.ndarray]
    cut: dm.PeakCut | None
    result: dict[str, Any]


def compute_demand(channels: dict[str, Any], tz: str, settings: DemandSettings | None = None, bill=None
                   ) -> DemandComputation:
    """Demand of the chosen channel with monthly maxima, peaks and their breaker
    shares, the summary and (with a `[bill]` section) what a new peak would cost."""
    s = settings or DemandSettings()
    data = {c: _parts(x) for c, x in channels.items()}
    infos = {c: d[0] for c, d in data.items()}
    chosen = choose_channel(infos, s)
    other = partner(infos, chosen)
    counter = chosen if infos[chosen].quantity == ENERGY else other
    power = chosen if infos[chosen].quantity == POWER else other
    d = _periods(data, counter, power, tz, s)
    if len(d) == 0:
        raise DemandInputError(f"channel {chosen!r} has no readings in the range")
    excl = {chosen} | ({other} if other else set()) | {c for c, i in infos.items() if is_site_total(i)}
    breakers = {}
    for name, (bc, bp) in _breakers(infos, excl).items():
        bd = _periods(data, bc, bp, tz, _breaker_settings(s, d))
        e = np.full(len(d), np.nan)
        pos = np.searchsorted(d.start_ms, bd.start_ms)
        hit = (pos < len(d)) & (d.start_ms[np.minimum(pos, len(d) - 1)] == bd.start_ms) & bd.complete
        e[pos[hit]] = bd.kwh[hit]
        breakers[name] = e
    monthly = dm.monthly_maxima(d)
    peaks = dm.top_peaks(d, s.top_peaks, breakers)
    # what could move: breakers that need not run around the clock
    cut = dm.peak_cut(d, s.top_peaks, {c: e for c, e in breakers.items() if not is_always_on(infos[c])})
    z = zoneinfo.ZoneInfo(tz)
    complete = d.complete & np.isfinite(d.kw)
    if complete.any():
        j = int(np.flatnonzero(complete)[np.argmax(d.kw[complete])])
        max_kw, at = float(d.kw[j]), int(d.start_ms[j])
    else:
        max_kw, at = None, None
    contract = s.contract_kw if s.contract_kw is not None else (monthly[-1].contract_kw_12m if monthly else None)
    starts = _iso_many(d.start_ms, z)
    summary: dict[str, Any] = {
        "max_kw": _r(max_kw), "at": iso(at, z), "contract_kw": _r(contract), "target_kw": _r(s.target_kw),
        "periods_over_target": dm.periods_over(d, s.target_kw),
        "periods_over_contract": dm.periods_over(d, contract),
        "periods": len(d), "complete_periods": int(complete.sum()), "source": d.source,
        "contract_kw_from_data": _r(monthly[-1].contract_kw_12m) if monthly else None,
    }
    if bill is not None and contract is not None:
        summary["new_peak"] = _new_peak(max_kw, contract, bill)
    if cut is not None:
        summary["peak_cut"] = {"from_kw": _r(cut.from_kw), "to_kw": _r(cut.to_kw), "cut_kw": _r(cut.cut_kw),
                               "periods": cut.periods, "movable_kw": {k: _r(v) for k, v in cut.movable.items()}}
        if bill is not None:
            summary["peak_cut"]["jpy_per_year"] = bill_mod.new_peak_cost_jpy_12m(
                cut.from_kw, cut.to_kw, bill.basic_jpy_per_kw, bill.power_factor_pct, bill.consumption_tax_rate)
    result = {
        "channel": chosen, "period_min": s.period_min, "timezone": tz,
        "periods": [{"start": st, "kw": _r(k), "coverage": _cov(c)} for st, k, c in zip(starts, d.kw, d.coverage)],
        "monthly": [{"month": m.month, "max_kw": _r(m.max_kw), "at": iso(m.at_ms, z),
                     "contract_kw_12m": _r(m.contract_kw_12m)} for m in monthly],
        "peaks": [{"start": iso(p.start_ms, z), "kw": _r(p.kw), "shares": {k: _r(v, 4) for k, v in p.shares.items()}}
                  for p in peaks],
        "summary": summary,
    }
    return DemandComputation(chosen, d, monthly, peaks, breakers, cut, result)


def _breaker_settings(s: DemandSettings, d: dm.DemandPeriods) -> DemandSettings:
    """The settings for a breaker: the incomer's grid range."""
    p = s.period_min * dm.MS_PER_MIN
    return DemandSettings(period_min=s.period_min, start_ms=int(d.start_ms[0]), end_ms=int(d.start_ms[-1]) + p)


def _new_peak(max_kw: float | None, contract: float, bill) -> dict[str, Any]:
    """A new peak: the data's highest demand when it is above the contract (what it
    really costs), else 5 % above the contract (what to avoid)."""
    new = max_kw if max_kw is not None and max_kw > contract else round(contract * 1.05, 1)
    jpy = bill_mod.new_peak_cost_jpy_12m(new, contract, bill.basic_jpy_per_kw, bill.power_factor_pct,
                                         bill.consumption_tax_rate)
    return {"kw": _r(new), "above_contract_kw": _r(new - contract), "jpy_12m": jpy,
            "text_en": f"a new peak of {new:,.1f} kW would cost {jpy:,} JPY over 12 months",
            "text_ja": f"{new:,.1f} kW の新しいピークは 12 か月で {jpy:,} 円 の負担増になります"}


def _iso_many(t_ms: np.ndarray, tz: zoneinfo.ZoneInfo) -> list[str]:
    from mieruka.recording import format_times
    if t_ms.size == 0:
        return []
    return [str(x) for x in format_times(t_ms.astype("datetime64[ms]"), str(tz))]


def demand_result(channels: dict[str, Any], tz: str, settings: DemandSettings | None = None, bill=None
                  ) -> dict[str, Any]:
    """The JSON of `mieruka demand --json` (see module doc)."""
    return compute_demand(channels, tz, settings, bill).result
