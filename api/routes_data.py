"""Sites, meters, channels (latest value, quality, status), readings and profiles."""
from __future__ import annotations

import datetime as dt

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ..calendar import fiscal_year
from ..service.profile import day_profile
from ..service.timefmt import iso
from .auth import require_read
from .errors import PROBLEM_RESPONSES, ApiError
from .paging import MAX_LIMIT, page
from .params import parse_param
from .schemas import ChannelPage, ChannelState, Meter, Profile, Readings, Site

# Routes here are `async`: each does one or two short store reads (about a
# millisecond for a day of 1-minute data), cheaper on the event loop than a hop
# to the thread pool and back.
router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_read)], responses=PROBLEM_RESPONSES)


_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def fast_json(content) -> Response:
    """JSON without FastAPI's generic encoder (model validation + jsonable_encoder):
    routes build plain types and numpy arrays, orjson writes them (a one-day
    readings answer is ~6,000 numbers: 0.3 ms instead of several)."""
    return Response(orjson.dumps(content, option=_JSON_OPTS), media_type="application/json")


def ctx(request: Request):
    return request.app.state.ctx


def site_id(request: Request) -> str:
    return request.app.state.site_id


def _site(request: Request) -> dict:
    c = ctx(request)
    rng = c.store.time_range()
    return {"id": site_id(request), "name": c.cfg.site.name, "timezone": c.cfg.site.timezone,
            "language": c.cfg.site.language,
            "current_fiscal_year": fiscal_year(dt.datetime.now(c.tz)),
            "calendar": c.calendar.describe(),
            "data_start": iso(rng[0], c.tz) if rng else None, "data_end": iso(rng[1], c.tz) if rng else None}


@router.get("/sites", response_model=list[Site], summary="The site this gateway meters (a list of one)")
async def sites(request: Request):
    return fast_json([_site(request)])


@router.get("/sites/{site_id}", response_model=Site, summary="One site")
async def site(request: Request, site_id: str):
    if site_id != request.app.state.site_id:
        raise ApiError(404, f"no site {site_id!r}")
    return fast_json(_site(request))


@router.get("/meters", response_model=list[Meter], summary="Meters of the site config and their channels")
async def meters(request: Request):
    c = ctx(request)
    out = [{"id": m.id, "name": m.name, "protocol": m.protocol, "model": m.model,
            "channels": [ch.id for ch in m.channels]} for m in c.cfg.meters]
    known = {ch.id for m in c.cfg.meters for ch in m.channels}
    extra = [i.id for i in c.store.channels() if i.id not in known]
    if extra:   # channels that came from a replayed recording have no meter in the config
        out.append({"id": "recording", "name": "channels from replayed recordings", "protocol": "recording",
                    "model": None, "channels": sorted(extra)})
    return fast_json(out)


@router.get("/channels", response_model=ChannelPage,
            summary="Channels with their latest value, quality and status (paginated)")
async def channels(request: Request, limit: int = Query(100, ge=1, le=MAX_LIMIT), cursor: str | None = None,
             quantity: str | None = Query(None, description="only channels of this quantity, e.g. power_kw")):
    c = ctx(request)
    infos = [i for i in c.infos().values() if quantity is None or i.quantity == quantity]
    p = page(request, infos, limit, cursor)
    p["items"] = [c.channel_state(i) for i in p["items"]]
    return fast_json(p)


@router.get("/channels/{channel_id:path}/readings", response_model=Readings,
            summary="Readings over a range, downsampled on the server (mean/min/max per interval)")
async def readings(request: Request, channel_id: str,
             start: str | None = Query(None, description="ISO 8601; without offset: site time. Default: end - 1 day"),
             end: str | None = Query(None, description="ISO 8601, exclusive. Default: just after the latest reading"),
             max_points: int | None = Query(None, ge=1, description="at most this many intervals (capped by [api] max_points)"),
             every_s: float | None = Query(None, gt=0, le=31_536_000, description="wish for an interval; widened if it would exceed max_points")):
    c = ctx(request)
    cap = c.cfg.api.max_points
    n = min(max_points or cap, cap)
    t0, t1 = parse_param("start", start, c.tz), parse_param("end", end, c.tz)
    if t0 and t1 and (t1 - t0) > dt.timedelta(days=3660):
        raise ApiError(422, "the range is at most 10 years")
    return fast_json(c.readings(channel_id, t0, t1, n, every_s))


@router.get("/channels/{channel_id:path}/profile", response_model=Profile,
            summary="A day's 15-minute profile against the median of the same day type over 4 weeks")
async def profile(request: Request, channel_id: str,
            date: dt.date | None = Query(None, description="site date; default: the day of the latest reading")):
    c = ctx(request)
    c.info(channel_id)
    if date is None:
        latest = c.store.latest(channel_id)
        date = (c.calendar.to_local_datetime(latest[0]).date() if latest else dt.datetime.now(c.tz).date())
    if not (dt.date(1971, 1, 1) <= date <= dt.date(2200, 1, 1)):
        raise ApiError(422, "query.date: out of range")
    return fast_json(day_profile(c, channel_id, date))


# Channel ids may hold "/" (mieruka.ids): `:path` routes, the plain one registered last so that
# `/channels/line1/press/readings` reaches the readings route with the id `line1/press`
@router.get("/channels/{channel_id:path}", response_model=ChannelState, summary="One channel's latest value")
async def channel(request: Request, channel_id: str):
    c = ctx(request)
    return fast_json(c.channel_state(c.info(channel_id)))
