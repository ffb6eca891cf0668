"""Findings, savings plan, CO2 sheet, collector health, report and Excel
export; and the admin actions that change state."""
from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from starlette.concurrency import run_in_threadpool

from ..calendar import fiscal_year
from ..errors import ConfigError
from ..reports.excel import build_workbook
from ..reports.report import build_report
from ..service.co2sheet import co2_sheet
from ..service.collector_status import collector_health as health
from ..service.context import Context
from ..service.timefmt import iso
from ..site import load_site
from .auth import Auth, require_admin, require_read
from .errors import PROBLEM_RESPONSES, ApiError
from .paging import MAX_LIMIT, page
from .routes_data import ctx, fast_json
from .params import parse_param
from .schemas import Co2Sheet, CollectorHealth, Done, FindingPage, Plan

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
read = [Depends(require_read)]
admin = [Depends(require_admin)]

START = Query(None, description="ISO 8601 with offset (without: site time). Default: the last [api] findings_days days of data")
END = Query(None, description="ISO 8601, exclusive")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _view(request: Request, start: str | None, end: str | None):
    c = ctx(request)
    return c.analysis(parse_param("start", start, c.tz), parse_param("end", end, c.tz))


async def _view_async(request: Request, start: str | None, end: str | None):
    """A cached analysis straight from the event loop; a new one on the thread pool
    (it takes seconds, and other requests must not wait for it)."""
    c = ctx(request)
    t0, t1 = parse_param("start", start, c.tz), parse_param("end", end, c.tz)
    view = c.cached_analysis(t0, t1)
    if view is None:
        view = await run_in_threadpool(c.analysis, t0, t1)
    return view


@router.get("/findings", response_model=FindingPage, dependencies=read,
            summary="Findings over a range, ranked by yen (computed by the analysis pipeline, cached)")
async def findings(request: Request, start: str | None = START, end: str | None = END,
             kind: str | None = Query(None, description="standby, air_leak, baseline_gap, compressor_profile"),
             channel: str | None = None,
             limit: int = Query(100, ge=1, le=MAX_LIMIT), cursor: str | None = None):
    c = ctx(request)
    v = await _view_async(request, start, end)
    items = [f for f in v.findings if (kind is None or f["kind"] == kind) and (channel is None or f["channel"] == channel)]
    p = page(request, items, limit, cursor)
    p.update(start=iso(v.start, c.tz), end=iso(v.end, c.tz))
    return fast_json(p)


@router.get("/plan", response_model=Plan, dependencies=read,
            summary="Savings plan: measures ranked by yen per year, % of site CO2, payback years")
async def plan(request: Request, start: str | None = START, end: str | None = END):
    c = ctx(request)
    v = await _view_async(request, start, end)
    return fast_json({"start": iso(v.start, c.tz), "end": iso(v.end, c.tz), "measures": v.plan})


@router.get("/co2/{fy}", response_model=Co2Sheet, dependencies=read,
            summary="CO2 monthly sheet of a fiscal year (April-March), location- and market-based")
def co2(request: Request, fy: int = Path(ge=2000, le=2100, description="fiscal year, e.g. 2025 for 2025-04..2026-03")):
    return fast_json(co2_sheet(ctx(request), fy))


@router.get("/collector/health", response_model=CollectorHealth, dependencies=read,
            summary="The collector's health snapshot (per meter: last poll, errors, buffer)")
def collector_health(request: Request):
    return fast_json(health(ctx(request)))


@router.get("/report.html", response_class=HTMLResponse, dependencies=read,
            summary="The HTML report (CO2 sheet, load profiles, findings with charts, savings plan)")
def report(request: Request, start: str | None = START, end: str | None = END,
           fy: int | None = Query(None, ge=2000, le=2100, description="fiscal year of the CO2 sheet; default: that of the range's end")):
    c = ctx(request)
    v = _view(request, start, end)
    # the report is self-contained: no script, no fetch, inline styles and SVG only
    return HTMLResponse(build_report(c, v, fy), headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"})


@router.get("/export.xlsx", dependencies=read,
            responses={200: {"content": {XLSX: {}}, "description": "Excel workbook"}},
            summary="Excel workbook: the CO2 monthly sheet, the findings and the savings plan")
def export(request: Request, start: str | None = START, end: str | None = END,
           fy: int | None = Query(None, ge=2000, le=2100)):
    c = ctx(request)
    v = _view(request, start, end)
    data = build_workbook(c, v, fy)
    return Response(data, media_type=XLSX,
                    headers={"Content-Disposition": 'attachment; filename="mieruka.xlsx"'})


@router.post("/analysis/run", response_model=Done, dependencies=admin,
             summary="Re-run the analysis now (drops cached results)")
def run(request: Request, start: str | None = START, end: str | None = END):
    c = ctx(request)
    c.clear_cache()
    v = _view(request, start, end)
    return fast_json({"status": "done", "detail": f"{len(v.findings)} findings from {iso(v.start, c.tz)} to {iso(v.end, c.tz)}"})


@router.post("/reload", response_model=Done, dependencies=admin,
             summary="Reload the site config file (calendar, tariffs, tokens); the store stays open")
def reload(request: Request):
    path = request.app.state.config_path
    if path is None:
        raise ApiError(409, "this server was not started from a config file")
    try:
        cfg = load_site(path)
    except ConfigError as e:
        raise ApiError(422, str(e)) from None
    old = request.app.state.ctx
    request.app.state.ctx = Context(cfg, old.store, bills_path=old.bills_path)
    request.app.state.auth = Auth(cfg.api, tz=cfg.site.timezone)
    return fast_json({"status": "reloaded", "detail": str(path)})
