"""Bearer tokens with roles, and rate limiting.

Tokens live in the config only as sha256 hex (`[[api.tokens]] name, role,
sha256`); the presented token is hashed and compared to every stored hash with
`hmac.compare_digest`, so neither timing nor logs reveal a token.  The
environment variable `MIERUKA_API_TOKEN` adds one read-only token for quick
starts.  Roles: `read` (energy managers: every GET) and `admin` (also what
changes state: re-running the analysis, reloading the config).

Rate limiting uses the `limits` library (sliding-window counters in memory,
O(1) per request): per token name when the token is valid, per client address
otherwise, so guessing tokens is throttled as well.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from ..site import ApiSection
from .errors import ApiError

ROLES = {"read": 0, "admin": 1}
ENV_TOKEN = "MIERUKA_API_TOKEN"


def hash_token(token: str) -> str:
    """The sha256 hex a config stores for a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    import secrets
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    def may(self, role: str) -> bool:
        return ROLES[self.role] >= ROLES[role]


class Auth:
    def __init__(self, section: ApiSection, env: dict[str, str] | None = None):
        env = os.environ if env is None else env
        self._tokens: list[tuple[bytes, Principal]] = [
            (bytes.fromhex(t.sha256.lower()), Principal(t.name, t.role)) for t in section.tokens]
        if env.get(ENV_TOKEN):
            self._tokens.append((hashlib.sha256(env[ENV_TOKEN].encode()).digest(), Principal("env", "read")))
        self._limits = parse_many(section.rate_limit)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

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
        for item in self._limits:
            if not self._limiter.hit(item, key):
                reset, _ = self._limiter.get_window_stats(item, key)
                import time
                retry = max(1, int(reset - time.time() + 0.999))
                raise ApiError(429, f"rate limit {item} exceeded; retry in {retry} s",
                               headers={"Retry-After": str(retry)})

    def check(self, request: Request, role: str) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        principal = self.identify(token.strip()) if scheme.lower() == "bearer" else None
        client = request.client.host if request.client else "unknown"
        self.throttle(f"token:{principal.name}" if principal else f"ip:{client}")
        if principal is None:
            detail = "missing bearer token" if not header else "invalid token"
            raise ApiError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="mieruka"'})
        if not principal.may(role):
            raise ApiError(403, f"this needs the {role!r} role; token {principal.name!r} has {principal.role!r}")
        return principal


# declares the scheme in OpenAPI; the header itself is checked by Auth.check
_bearer = HTTPBearer(auto_error=False, description="a token from [[api.tokens]] or MIERUKA_API_TOKEN")


def require(role: str):
    """A FastAPI dependency: the request must carry a token with `role`."""
    def dependency(request: Request, _: HTTPAuthorizationCredentials | None = Security(_bearer)) -> Principal:
        return request.app.state.auth.check(request, role)
    dependency.__name__ = f"require_{role}"
    return dependency


require_read = require("read")
require_admin = require("admin")
