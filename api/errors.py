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


MAX_BODY_BYTES = 64 * 1024       # no route takes more than a few bytes of body


class BodyLimit:
    """ASGI middleware: a request announcing a body over MAX_BODY_BYTES is answered 413
    (problem+json) before anything reads it, and a chunked body is cut off at the limit."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or ()).get(b"content-length")
        too_big = False
        if length is not None:
            try:
                too_big = int(length) > MAX_BODY_BYTES
            except ValueError:
                too_big = True
        if too_big:
            return await self._refuse(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > MAX_BODY_BYTES:
                    raise _BodyTooLarge()
            return msg
        try:
            return await self.app(scope, limited, send)
        except _BodyTooLarge:
            return await self._refuse(scope, receive, send)

    async def _refuse(self, scope, receive, send):
        from starlette.requests import Request
        resp = problem_response(Request(scope), 413, f"request body over {MAX_BODY_BYTES} bytes; this API takes "
                                                     "its parameters in the query string")
        await resp(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


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
        if detail is None and exc.status_code == 404:
            detail = "no such path; the API is under /api/v1 (list: /docs, /openapi.json), the dashboard at /dashboard"
        elif detail is None and exc.status_code == 405:
            allowed = (getattr(exc, "headers", None) or {}).get("allow") or (getattr(exc, "headers", None) or {}).get("Allow")
            detail = f"method {request.method} is not allowed here" + (f"; allowed: {allowed}" if allowed else "")
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
