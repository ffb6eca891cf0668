"""Demand views from the store: the same figures as `mieruka demand` / `mieruka bill`
on a recording, for the API, the report and Excel (analytics/demand_result.py does
the work; this module reads the store and turns input problems into mieruka errors)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from ..analytics import bill as bill_mod
from ..analytics import demand as dm
from ..analytics.demand_result import DemandComputation, DemandInputError, DemandSettings, compute_demand
from ..calendar import SiteCalendar
from ..errors import Invalid
from ..models import ChannelData, ChannelInfo
from ..quantities import QUANTITIES
from ..site import SiteConfig

PAD = dt.timedelta(hours=1)      # read this much around the range: counter steps at its edges are known
MAX_RANGE = dt.timedelta(days=3 * 366)   # a view lists every period: 3 years are 52,000 half hours
KINDS = ("power_kw", "energy_kwh", "reactive_energy_kvarh", "reactive_power_kvar")


def store_channels(store, infos: dict[str, ChannelInfo], start: dt.datetime, end: dt.datetime
                   ) -> dict[str, ChannelData]:
    """Power, energy and reactive channels over [start - 1 h, end + 1 h): counters
    continuous (wraps and resets undone by the store)."""
    out = {}
    for cid, info in infos.items():
        if info.quantity not in KINDS:
            continue
        if QUANTITIES[info.quantity].counter:
            t, v = store.read_continuous(cid, start - PAD, end + PAD)
        else:
            t, v = store.read(cid, start - PAD, end + PAD)
        if len(t):
            out[cid] = ChannelData(info, t, v)
    return out


def demand_for(cfg: SiteConfig, channels: dict[str, ChannelData], start: dt.datetime | None = None,
               end: dt.datetime | None = None, **overrides) -> DemandComputation:
    """The demand computation with the site's `[demand]` (overrides: channel, period_min,
    contract_kw, target_kw, top_peaks) and `[bill]`."""
    s = DemandSettings.from_site(cfg, start_ms=_ms(start), end_ms=_ms(end), **overrides)
    try:
        return compute_demand(channels, cfg.site.timezone, s, cfg.bill)
    except (DemandInputError, ValueError) as e:
        raise Invalid(str(e)) from None


def bills_for(cfg: SiteConfig, comp: DemandComputation, channels: dict[str, ChannelData],
              start: dt.datetime | None = None, end: dt.datetime | None = None) -> list[bill_mod.BillMonth]:
    """Monthly bill estimates of a demand computation (needs `[bill]`)."""
    if cfg.bill is None:
        raise Invalid("the site config has no [bill] section (basic_jpy_per_kw, energy_rates, ...)")
    reactive = None
    pf = cfg.bill.power_factor_channel
    if pf and pf in channels:
        c = channels[pf]
        src = {"counter" if c.info.quantity == "reactive_energy_kvarh" else "power":
               (c.time.astype("datetime64[ms]").astype("int64"), c.value)}
        reactive = dm.demand_periods(cfg.site.timezone, comp.periods.period_min, start_ms=_ms(start),
                                     end_ms=_ms(end), **src)
    years = range(int(str(comp.periods.start_ms.min().astype("datetime64[ms]"))[:4]) if len(comp.periods) else 2000,
                  int(str(comp.periods.start_ms.max().astype("datetime64[ms]"))[:4]) + 1 if len(comp.periods) else 2001)
    holidays = set(SiteCalendar.from_config(cfg)._holiday_set(years))
    return bill_mod.monthly_bills(comp.periods, comp.monthly, cfg.bill, configured_contract_kw=cfg.demand.contract_kw,
                                  holidays=holidays, reactive=reactive,
                                  fallback_jpy_per_kwh=cfg.tariffs.electricity_jpy_per_kwh)


def demand_view(ctx, start: dt.datetime, end: dt.datetime, **overrides) -> dict[str, Any]:
    """`/api/v1/demand`: the demand JSON of `mieruka demand` over [start, end) of the store."""
    if end <= start:
        raise Invalid("end must be after start")
    if end - start > MAX_RANGE:
        raise Invalid(f"the range is longer than {MAX_RANGE.days} days; ask for up to 3 years at a time")
    chans = store_channels(ctx.store, ctx.infos(), start, end)
    return demand_for(ctx.cfg, chans, start, end, **overrides).result


def report_demand(cfg: SiteConfig, store, infos: dict[str, ChannelInfo], start: dt.datetime, end: dt.datetime
                  ) -> dict[str, Any] | None:
    """The report's demand section (monthly maxima, top peaks with what ran, bills), or
    None when the site has no incomer to compute it from."""
    chans = store_channels(store, infos, start, end)
    try:
        comp = demand_for(cfg, chans, start, end)
    except Invalid:
        return None
    out = dict(comp.result)
    out["bills"] = [b.to_dict() for b in bills_for(cfg, comp, chans, start, end)] if cfg.bill is not None else []
    return out


def _ms(t: dt.datetime | None) -> int | None:
    return None if t is None else int(t.timestamp() * 1000)
