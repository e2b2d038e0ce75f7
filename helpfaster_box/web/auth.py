"""API-key authentication and rate limiting, as one ASGI middleware.

Keys are looked up by SHA-256 hash (the plaintext is never stored) and the hash
is compared in constant time. Lookups are cached briefly; every key change made
through this process clears the cache, so a revocation takes effect on the
next request.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from helpfaster_box.errors import Forbidden, RateLimited, Unauthorized
from helpfaster_box.keys import queries as keys_q
from helpfaster_box.web.errors import UnsupportedMediaType

PUBLIC_PATHS = ("/v1/health", "/v1/openapi.json", "/v1/docs")
BODY_METHODS = (b"POST", b"PUT", b"PATCH")


@dataclass(frozen=True, slots=True)
class AuthContext:
    key_id: str
    org_id: str
    org_name: str
    role: str
    plan: str


def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the route needs an admin key (declared with `guards=[admin_only]`)."""
    auth = connection.scope.get("state", {}).get("auth")
    if auth is None or auth.role != "admin":
        raise Forbidden("This action needs an admin API key.")


class KeyCache:
    """hash -> key row, for a few seconds; cleared on any key change."""

    def __init__(self, ttl_s: float = 30.0) -> None:
        self.ttl_s = ttl_s
        self._rows: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def get(self, key_hash: str) -> tuple[bool, dict[str, Any] | None]:
        hit = self._rows.get(key_hash)
        if hit is None or time.monotonic() - hit[0] > self.ttl_s:
            return False, None
        return True, hit[1]

    def put(self, key_hash: str, row: dict[str, Any] | None) -> None:
        if len(self._rows) > 10_000:
            self._rows.clear()
        self._rows[key_hash] = (time.monotonic(), row)

    def clear(self) -> None:
        self._rows.clear()


async def authenticate(state: Any, raw_key: str | None) -> AuthContext:
    if not raw_key:
        raise Unauthorized("Missing API key: send it in the x-api-key header.")
    key_hash = keys_q.hash_key(raw_key)
    cache: KeyCache = state.key_cache
    found, row = cache.get(key_hash)
    if not found:
        row = await state.db.aread(keys_q.find_by_hash, key_hash)
        cache.put(key_hash, row)
    if row is None or not hmac.compare_digest(row["key_hash"], key_hash):
        raise Unauthorized("Unknown API key.")
    if row["revoked_at"] is not None:
        raise Unauthorized("This API key has been revoked.")
    return AuthContext(row["id"], row["org_id"], row["org_name"], row["role"], row["plan"])


def check_content_type(scope: Scope, headers: dict[bytes, bytes]) -> None:
    """Bodies are JSON, except document uploads which may be multipart."""
    if str(scope.get("method", "")).encode() not in BODY_METHODS:
        return
    if headers.get(b"content-length", b"0") == b"0" and b"transfer-encoding" not in headers:
        return
    ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if ctype == b"application/json" or ctype.endswith(b"+json"):
        return
    if ctype == b"multipart/form-data" and scope["path"].endswith("/sources"):
        return
    shown = ctype.decode("latin-1") or "none"
    raise UnsupportedMediaType(f"Content-Type {shown} is not supported here; send application/json.")


def auth_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(PUBLIC_PATHS):
            await app(scope, receive, send)
            return
        state = scope["app"].state
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"x-api-key")
        auth = await authenticate(state, raw.decode("latin-1") if raw else None)
        limit = state.settings.rate_limit_for(auth.plan)
        decision = state.rate_limiter.hit(auth.org_id, limit)
        rl_headers = decision.headers()
        if not decision.allowed:
            state.metrics.rate_limited.labels(auth.plan).inc()
            retry = rl_headers["X-RateLimit-Reset"]
            raise RateLimited(
                f"Rate limit of {limit} requests per minute exceeded; retry in {retry} s.",
                retry_after_s=int(retry),
                headers={**rl_headers, "Retry-After": retry},
            )
        try:
            check_content_type(scope, headers)
        except UnsupportedMediaType as exc:
            exc.headers.update(rl_headers)
            raise
        scope.setdefault("state", {})["auth"] = auth

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableScopeHeaders.from_message(message)
                for name, value in rl_headers.items():
                    out[name] = value
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware
