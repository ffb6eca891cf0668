"""The FastAPI application: `create_app(cfg)`.

Routes: `/healthz` (no auth), `/openapi.json`, `/docs`, `/dashboard` (a static
page; it asks for data with the token it keeps in the browser tab), and under
`/api/v1` everything else (bearer token, read or admin role).  All errors are
RFC 9457 problem+json (see `errors.py`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..errors import ConfigError
from ..service.context import Context
from ..site import SiteConfig, load_site
from ..store.base import Store, open_store
from ..store.embedded import DB_NAME
from . import errors, routes_analysis, routes_data, routes_demand
from .auth import Auth
from .schemas import Health

STATIC = Path(__file__).parent / "static"


def site_slug(cfg: SiteConfig) -> str:
    if cfg.source is not None:
        s = re.sub(r"[^A-Za-z0-9_-]+", "-", cfg.source.stem).strip("-")
        if s:
            return s
    return "site"


def _open_for_api(cfg: SiteConfig) -> Store:
    """The API only reads: an embedded store that is there is opened as a reader, so the
    collector's writes (or a lock another writer holds) never hold it up and a read-only
    data directory still serves; a writer only creates a store not there yet (the API
    started before the collector on a fresh gateway)."""
    if cfg.storage.backend == "influxdb":
        return open_store(cfg)
    if not (cfg.data_dir / DB_NAME).exists():
        open_store(cfg).close()          # created (schema and all), then read like any other
    try:
        return open_store(cfg, readonly=True)
    except ConfigError as e:
        if "not initialised yet" not in str(e):
            raise
    return open_store(cfg)


def create_app(cfg: SiteConfig, store: Store | None = None, env: dict[str, str] | None = None,
               bills_path: Path | None = None) -> FastAPI:
    """The API over the site's store (opened from the config unless given).
    `bills_path`: a CSV of bills (the `mieruka co2` format) added to the CO2 sheet;
    default: the config's `[co2] bills_file` (see Context)."""
    if store is None:
        store = _open_for_api(cfg)
    app = FastAPI(title="mieruka API", version=__version__,
                  description="Meter readings, findings (kWh, yen, t-CO2), the CO2 sheet and the savings plan "
                              "of one factory. Bearer tokens; errors are RFC 9457 problem+json.",
                  docs_url="/docs", redoc_url=None)
    app.state.ctx = Context(cfg, store, bills_path=bills_path)
    try:
        app.state.auth = Auth(cfg.api, env, tz=cfg.site.timezone)
    except ValueError as e:
        raise ConfigError(f"{cfg.source or '<config>'}: api.rate_limit: {e}") from None
    app.state.site_id = site_slug(cfg)
    app.state.config_path = cfg.source
    errors.install(app)
    app.add_middleware(errors.BodyLimit)

    @app.get("/healthz", response_model=Health, summary="Liveness (no token needed)", tags=["meta"])
    def healthz():
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/dashboard", include_in_schema=False)
    def dashboard():
        return FileResponse(STATIC / "dashboard.html", headers=_page_headers())

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.include_router(routes_data.router, tags=["data"])
    app.include_router(routes_analysis.router, tags=["analysis"])
    app.include_router(routes_demand.router, tags=["demand"])
    return app


def _page_headers() -> dict[str, str]:
    # everything the page needs is served here: forbid any other origin
    return {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                                       "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
            "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def app_from_env() -> FastAPI:
    """Factory for `mieruka serve --workers N`: each uvicorn worker process builds its
    own app (own store connection, analysis cache and rate buckets) from the config
    named in MIERUKA_SERVE_CONFIG (and bills in MIERUKA_SERVE_BILLS)."""
    bills = os.environ.get("MIERUKA_SERVE_BILLS")
    return create_app(load_site(os.environ["MIERUKA_SERVE_CONFIG"]), bills_path=Path(bills) if bills else None)
