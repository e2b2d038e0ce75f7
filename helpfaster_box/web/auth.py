"""API-key authentication and rate limiting, as one ASGI middleware.

Keys are looked up by SHA-256 hash (the plaintext is never stored) and the hash
is compared in constant time. Lookups are cached briefly; every key change made
through this process clears the cache, so a revocation takes effect on the
next request.

Three kinds of credential reach `/v1`: an API key in `x-api-key`; a publishable
widget key (`hf_pub_`) in `x-api-key`, held to the few widget routes and its
allowed origins by `web/publishable.py`; or the dashboard's `hf_session` cookie
(see `keys/sessions.py`), with which every write must carry `x-csrf-token`.
All three count against the organization's rate limit.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from helpfaster_box.errors import Forbidden, RateLimited, Unauthorized
from helpfaster_box.keys import queries as keys_q
from helpfaster_box.keys import service as keys_service
from helpfaster_box.keys.sessions import csrf_matches
from helpfaster_box.web import publishable
from helpfaster_box.web.errors import UnsupportedMediaType
from helpfaster_box.web.headers import RATE_LIMIT_STATE
from helpfaster_box.web.ratelimit import Decision

PUBLIC_PATHS = ("/v1/health", "/v1/openapi.json", "/v1/docs")
BODY_METHODS = (b"POST", b"PUT", b"PATCH")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SESSION_COOKIE = "hf_session"
SESSION_PATH = "/v1/dashboard/session"  # signs in and out itself (keys/routes.py)


@dataclass(frozen=True, slots=True)
class AuthContext:
    key_id: str
    org_id: str
    org_name: str
    role: str  # admin | member | publishable
    plan: str
    publishable_key_id: str | None = None  # a widget key: the one chatbot it may use
    chatbot_id: str | None = None
    session_id: str | None = None  # signed in to the dashboard with the cookie


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
        self._inflight: dict[str, asyncio.Future[dict[str, Any] | None]] = {}

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

    def looking_up(self, key_hash: str) -> bool:
        return key_hash in self._inflight

    async def lookup(
        self, key_hash: str, fetch: Callable[[], Awaitable[dict[str, Any] | None]] | None
    ) -> dict[str, Any] | None:
        """One database lookup per key at a time: concurrent requests wait for its answer."""
        pending = self._inflight.get(key_hash)
        if pending is not None:
            return await asyncio.shield(pending)
        assert fetch is not None
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._inflight[key_hash] = future
        try:
            row = await fetch()
            self.put(key_hash, row)
            future.set_result(row)
            return row
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            del self._inflight[key_hash]


async def authenticate(state: Any, raw_key: str | None, client: str = "") -> AuthContext:
    """The key's context. Each lookup of a key not known good takes a slot of the client
    address's `rate_limit_auth_failures` a minute (given back when the key is valid): past
    it, unknown keys are refused without a database lookup, while keys already in use from
    that address (cached) keep working."""
    if not raw_key:
        raise Unauthorized("Missing API key: send it in the x-api-key header.")
    key_hash = keys_q.hash_key(raw_key)
    cache: KeyCache = state.key_cache
    found, row = cache.get(key_hash)
    if not found and cache.looking_up(key_hash):  # the same key's first requests, at once
        found, row = True, await cache.lookup(key_hash, None)
    if row is None:  # not cached, or known to be unknown: a guess until proven otherwise
        limiter = state.auth_failures
        # Taken before the lookup's await, so a concurrent burst cannot overrun the limit.
        guessing = limiter.hit(client, state.settings.rate_limit_auth_failures)
        if not guessing.allowed:
            raise RateLimited(
                "Too many requests with unknown API keys from this address; retry later.",
                retry_after_s=guessing.retry_after,
            )
        if not found:
            row = await cache.lookup(key_hash, lambda: state.db.aread(keys_q.find_by_hash, key_hash))
        if row is not None and row["revoked_at"] is None:
            limiter.refund(client)
    if row is None or not hmac.compare_digest(row["key_hash"], key_hash):
        raise Unauthorized("Unknown API key.")
    if row["revoked_at"] is not None:
        raise Unauthorized("This API key has been revoked.")
    return AuthContext(row["id"], row["org_id"], row["org_name"], row["role"], row["plan"])


def cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


async def authenticate_session(
    state: Any, token: str, method: str, headers: dict[bytes, bytes]
) -> AuthContext:
    """The dashboard's cookie; a write must echo the session's CSRF token."""
    row = await keys_service.live_session(state.db, state.settings, token)
    if row is None:
        raise Unauthorized("The dashboard session has ended; sign in again.")
    if method not in SAFE_METHODS:
        sent = headers.get(b"x-csrf-token")
        if not csrf_matches(token, sent.decode("latin-1") if sent else None):
            raise Forbidden("Missing or wrong x-csrf-token: writes made with the session cookie need it.")
    return AuthContext(
        row["key_id"], row["org_id"], row["org_name"], row["role"], row["plan"], session_id=row["id"]
    )


def rate_limit(state: Any, bucket: str, limit: int, plan: str = "widget") -> Decision:
    """Count one request against `bucket`: the decision (for its X-RateLimit-* headers), or RateLimited."""
    decision: Decision = state.rate_limiter.hit(bucket, limit)
    if not decision.allowed:
        state.metrics.rate_limited.labels(plan).inc()
        retry = str(decision.retry_after)  # when the next slot frees (sliding window)
        raise RateLimited(
            f"Rate limit of {limit} requests per minute exceeded; retry in {retry} s.",
            retry_after_s=decision.retry_after,
            headers={**decision.headers(), "Retry-After": retry},
        )
    return decision


async def authenticate_publishable(
    scope: Scope, state: Any, raw_key: str, headers: dict[bytes, bytes]
) -> AuthContext:
    row = await publishable.authorize(scope, state, raw_key, headers)
    return AuthContext(
        row["id"],
        row["org_id"],
        row["org_name"],
        "publishable",
        row["plan"],
        publishable_key_id=row["id"],
        chatbot_id=row["chatbot_id"],
    )


def limits(scope: Scope, state: Any, auth: AuthContext) -> Decision:
    """The org's plan limit; for a widget key first a per-visitor one (key + client address).

    The address is the TCP peer's: behind a reverse proxy every visitor shares the
    proxy's address, so raise `widget_rate_limit` there.
    """
    visitor: Decision | None = None
    if auth.publishable_key_id is not None:
        client = (scope.get("client") or ("unknown", 0))[0]
        bucket = f"{auth.publishable_key_id}|{client}"
        visitor = rate_limit(state, bucket, state.settings.widget_rate_limit)
    org = rate_limit(state, auth.org_id, state.settings.rate_limit_for(auth.plan), auth.plan)
    if visitor is not None and visitor.remaining < org.remaining:
        return visitor
    return org


async def credentials(scope: Scope, state: Any, headers: dict[bytes, bytes], method: str) -> AuthContext:
    """x-api-key (an API key or a publishable key) wins over the session cookie."""
    raw = headers.get(b"x-api-key")
    token = cookie(headers, SESSION_COOKIE)
    if raw and raw.startswith(publishable.PREFIX.encode()):
        return await authenticate_publishable(scope, state, raw.decode("latin-1"), headers)
    if raw or not token:
        client = (scope.get("client") or ("", 0))[0]
        return await authenticate(state, raw.decode("latin-1") if raw else None, client)
    return await authenticate_session(state, token, method, headers)


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
        method = str(scope.get("method", "GET"))
        if method == "OPTIONS" and b"access-control-request-method" in headers:
            await publishable.preflight(scope, state, headers, send)
            return
        if path.rstrip("/") == SESSION_PATH:
            publishable.check_same_site(headers)
            check_content_type(scope, headers)
            await app(scope, receive, send)
            return
        auth = await credentials(scope, state, headers, method)
        decision = limits(scope, state, auth)
        try:
            check_content_type(scope, headers)
        except UnsupportedMediaType as exc:
            exc.headers.update(decision.headers())
            raise
        request_state = scope.setdefault("state", {})
        request_state["auth"] = auth
        # Added to the response by the outer middleware (web/observe.py, web/headers.py):
        # no send wrapper of our own.
        request_state[RATE_LIMIT_STATE] = decision.raw_headers()
        await app(scope, receive, send)

    return middleware
