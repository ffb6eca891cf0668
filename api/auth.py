"""Bearer tokens with roles, and rate limiting.

Tokens live in the config only as sha256 hex (`[[api.tokens]] name, role,
sha256`); the presented token is hashed and compared to every stored hash with
`hmac.compare_digest`, so neither timing nor logs reveal a token.  The
environment variable `MIERUKA_API_TOKEN` adds one read-only token for quick
starts.  Roles: `read` (energy managers: every GET) and `admin` (also what
changes state: re-running the analysis, reloading the config).

Rate limiting: token buckets in memory, one per limit in `[api] rate_limit`
("50/second;2000/minute": a bucket of 50 refilled at 50/s and one of 2000
refilled at 2000/min), per token name when the token is valid, per client
address otherwise, so guessing tokens is throttled as well.  (The `limits`
library was tried first: its memory storage starts a timer thread for expiry,
which cost more than the rest of a request.)
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from dataclasses import dataclass

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
import re
import secrets
import threading
import time

from ..site import ApiSection
from .errors import ApiError

ROLES = {"read": 0, "admin": 1}
ENV_TOKEN = "MIERUKA_API_TOKEN"


def hash_token(token: str) -> str:
    """The sha256 hex a config stores for a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


_PERIODS_S = {"second": 1.0, "s": 1.0, "minute": 60.0, "min": 60.0, "m": 60.0, "hour": 3600.0, "h": 3600.0,
              "day": 86400.0, "d": 86400.0}


def parse_rate_limit(text: str) -> list[tuple[float, float, str]]:
    """'50/second;2000/minute' -> [(capacity, refill per second, text), ...]."""
    out = []
    for part in filter(None, (p.strip() for p in re.split(r"[;,]", text))):
        m = re.fullmatch(r"(\d+)\s*(?:/|per)\s*(\d*)\s*([a-z]+?)s?", part.lower())
        if not m or m.group(3) not in _PERIODS_S:
            raise ValueError(f"rate limit {part!r}: write N/second, N/minute, N/hour or N/day")
        n, k = int(m.group(1)), int(m.group(2) or 1)
        out.append((float(n), n / (k * _PERIODS_S[m.group(3)]), part))
    return out


class TokenBuckets:
    """One token bucket per (key, limit): full at start, refilled continuously."""

    def __init__(self, limits: list[tuple[float, float, str]], max_keys: int = 10_000):
        self.limits = limits
        self.max_keys = max_keys
        self._state: dict[str, list[list[float]]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> tuple[float, str | None]:
        """Take one token from each of the key's buckets: (0, None) when allowed,
        else (seconds until a token is back, the limit that refused)."""
        now = time.monotonic()
        with self._lock:
            st = self._state.get(key)
            if st is None:
                if len(self._state) >= self.max_keys:      # many addresses: forget the idle ones
                    self._state.clear()
                st = self._state[key] = [[cap, now] for cap, _, _ in self.limits]
            fill = [min(cap, b[0] + (now - b[1]) * rate) for b, (cap, rate, _) in zip(st, self.limits)]
            for level, (cap, rate, text) in zip(fill, self.limits):
                if level < 1.0:
                    for b, f in zip(st, fill):
                        b[0], b[1] = f, now
                    return (1.0 - level) / rate, text
            for b, f in zip(st, fill):
                b[0], b[1] = f - 1.0, now
            return 0.0, None


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    expires_utc: dt.datetime | None = None      # None: never

    def may(self, role: str) -> bool:
        return ROLES[self.role] >= ROLES[role]


class Auth:
    def __init__(self, section: ApiSection, env: dict[str, str] | None = None, tz: str = "Asia/Tokyo"):
        env = os.environ if env is None else env
        self._tokens: list[tuple[bytes, Principal]] = [
            (bytes.fromhex(t.sha256.lower()), Principal(t.name, t.role, _expiry_utc(t.expires, tz)))
            for t in section.tokens]
        if env.get(ENV_TOKEN):
            self._tokens.append((hashlib.sha256(env[ENV_TOKEN].encode()).digest(), Principal("env", "read")))
        self._buckets = TokenBuckets(parse_rate_limit(section.rate_limit))

    @property
    def configured(self) -> bool:
        return bool(self._tokens)

    def identify(self, token: str | None) -> Principal | None:
        if not token:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found = None
        for stored, principal in self._tokens:     # no early exit: constant work per request
            if hmac.compare_digest(stored, digest):
                found = principal
        return found

    def throttle(self, key: str) -> None:
        wait_s, limit = self._buckets.take(key)
        if wait_s > 0:
            retry = max(1, int(wait_s + 0.999))
            raise ApiError(429, f"rate limit {limit} exceeded; retry in {retry} s", headers={"Retry-After": str(retry)})

    def check(self, request: Request, role: str) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        principal = self.identify(token.strip()) if scheme.lower() == "bearer" else None
        client = request.client.host if request.client else "unknown"
        self.throttle(f"token:{principal.name}" if principal else f"ip:{client}")
        if principal is None:
            detail = "missing bearer token" if not header else "invalid token"
            raise ApiError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="mieruka"'})
        if principal.expires_utc is not None and dt.datetime.now(dt.timezone.utc) > principal.expires_utc:
            raise ApiError(401, f"token {principal.name!r} expired at {principal.expires_utc.isoformat()}; "
                                "issue a new one (mieruka serve --hash-token)",
                           headers={"WWW-Authenticate": 'Bearer realm="mieruka", error="invalid_token"'})
        if not principal.may(role):
            raise ApiError(403, f"this needs the {role!r} role; token {principal.name!r} has {principal.role!r}")
        return principal


def _expiry_utc(expires: dt.datetime | dt.date | None, tz: str) -> dt.datetime | None:
    """A token's `expires` as the UTC instant after which it is refused: a date is
    valid through the end of that day in the site's zone."""
    if expires is None:
        return None
    if not isinstance(expires, dt.datetime):
        import zoneinfo
        expires = dt.datetime.combine(expires + dt.timedelta(days=1), dt.time(), zoneinfo.ZoneInfo(tz))
    return expires.astimezone(dt.timezone.utc)


# declares the scheme in OpenAPI; the header itself is checked by Auth.check
_bearer = HTTPBearer(auto_error=False, description="a token from [[api.tokens]] or MIERUKA_API_TOKEN")


def require(role: str):
    """A FastAPI dependency: the request must carry a token with `role`."""
    # async: pure CPU work of microseconds, so no hop to the thread pool
    async def dependency(request: Request, _: HTTPAuthorizationCredentials | None = Security(_bearer)) -> Principal:
        return request.app.state.auth.check(request, role)
    dependency.__name__ = f"require_{role}"
    return dependency


require_read = require("read")
require_admin = require("admin")
