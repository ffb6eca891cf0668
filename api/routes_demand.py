"""Demand (デマンド) and the electricity bill over a range of the store: the same JSON as
`mieruka demand --json` and `mieruka bill --json`."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from ..errors import Invalid
from ..service.demand import MAX_RANGE, bills_for, demand_for, demand_view, store_channels
from ..service.demand_live import demand_now
from .auth import require_read
from .errors import PROBLEM_RESPONSES
from .params import parse_param
from .routes_data import ctx, fast_json

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
read = [Depends(require_read)]

START = Query(None, description="ISO 8601 with offset (without: site time). Default: the last [api] findings_days days")
END = Query(None, description="ISO 8601, exclusive")


def _range(request: Request, start: str | None, end: str | None):
    c = ctx(request)
    t0, t1 = parse_param("start", start, c.tz), parse_param("end", end, c.tz)
    return c, *c._range(t0, t1)


@router.get("/demand", dependencies=read,
            summary="30-minute demand: periods with coverage, monthly maxima, 契約電力 (12 months), top peaks")
async def demand(request: Request, start: str | None = START, end: str | None = END,
                 channel: str | None = Query(None, description="default: [demand] channel, else the site total"),
                 period_min: int | None = Query(None, ge=1, le=1440, description="default: [demand] period_min (30)"),
                 top: int | None = Query(None, ge=1, le=1000, description="peaks to list (default 10)")):
    c, t0, t1 = _range(request, start, end)
    res = await run_in_threadpool(demand_view, c, t0, t1, channel=channel, period_min=period_min, top_peaks=top)
    return fast_json(res)


@router.get("/demand/now", dependencies=read,
            summary="The current demand period as the collector keeps it: energy so far, present kW, "
                    "predicted end-of-period kW, stage against the target")
async def demand_live(request: Request):
    return fast_json(await run_in_threadpool(demand_now, ctx(request)))


@router.get("/bill", dependencies=read,
            summary="Monthly electricity bill estimate: 基本料金, 電力量料金, 燃料費調整額, 再エネ賦課金, tax")
async def bill(request: Request, start: str | None = START, end: str | None = END,
               channel: str | None = Query(None, description="default: [demand] channel, else the site total")):
    c, t0, t1 = _range(request, start, end)

    def run():
        if t1 <= t0 or t1 - t0 > MAX_RANGE:
            raise Invalid(f"start/end: end after start and at most {MAX_RANGE.days} days later")
        chans = store_channels(c.store, c.infos(), t0, t1)
        comp = demand_for(c.cfg, chans, t0, t1, channel=channel)
        out = {"channel": comp.channel, "timezone": c.cfg.site.timezone, "months": []}
        if c.cfg.bill is None:      # nothing to price with: say so (the demand itself is there)
            out["note"] = "the site config has no [bill] section (basic_jpy_per_kw, energy_rates, ...)"
        else:
            out["months"] = [b.to_dict() for b in bills_for(c.cfg, comp, chans, t0, t1)]
        return out
    return fast_json(await run_in_threadpool(run))
