"""One error shape for the whole API: RFC 9457 problem details
(`application/problem+json`), for our own errors, FastAPI's validation errors,
unknown routes and wrong methods alike.

    {"type": "about:blank", "title": "Not Found", "status": 404,
     "detail": "no channel 'x'", "instance": "/api/v1/channels/x"}

Validation errors add `errors`: a list of {"loc": "query.start", "msg": ...}.
Nothing a client sent in a header is ever echoed back (tokens stay out).
"""
from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import Conflict, Invalid, MierukaError, NotFound

PROBLEM = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class ApiError(Exception):
    """Raise anywhere in a route: becomes a problem+json response."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None,
                 errors: list[dict[str, Any]] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers, self.errors = status, detail, headers, errors


def problem_response(request: Request, status: int, detail: str | None = None,
                     headers: dict[str, str] | None = None, errors: list | None = None) -> JSONResponse:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body["instance"] = request.url.path
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)


# OpenAPI: every documented route may answer these with a problem
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": HTTPStatus(code).phrase,
           "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for code in (401, 403, 404, 422, 429)
}


# The application's own errors (mieruka.errors) -> HTTP status; the one place
# where the service's errors meet HTTP.  Any other MierukaError (a bad config,
# a bad input file, a factor missing) is a request that cannot be served: 422.
APP_ERROR_STATUS: dict[type[MierukaError], int] = {NotFound: 404, Invalid: 422, Conflict: 409}


def app_error_status(exc: MierukaError) -> int:
    for cls in type(exc).__mro__:
        if cls in APP_ERROR_STATUS:
            return APP_ERROR_STATUS[cls]
    return 422


def install(app: FastAPI) -> None:
    @app.exception_handler(MierukaError)
    async def _app_error(request: Request, exc: MierukaError):
        return problem_response(request, app_error_status(exc), str(exc))

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return problem_response(request, exc.status, exc.detail, exc.headers, exc.errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != HTTPStatus(exc.status_code).phrase else None
        return problem_response(request, exc.status_code, detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()))
            errors.append({"loc": loc, "msg": str(e.get("msg", "")).removeprefix("Value error, ")})
        detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:3])
        return problem_response(request, 422, detail or "invalid request", errors=errors)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # logged by the server with its traceback; the client gets no internals
        logging.getLogger("mieruka.api").exception("unhandled error on %s", request.url.path)
        return problem_response(request, 500, "internal error (see the server log)")
