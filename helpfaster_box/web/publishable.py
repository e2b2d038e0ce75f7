"""What a publishable widget key (`hf_pub_`) may do, and CORS for exactly its origins.

A publishable key sits in a public web page, so anyone can copy it. It stays harmless
because it can do only what the widget needs, for its one chatbot, from a browser on
one of its allowed origins:

    POST /v1/chatbots/{its chatbot}/chat
    GET  /v1/chatbots/{its chatbot}            the public view (name, welcome message, ...)
    GET  /v1/conversations/{id}                conversations it started (others are 404)
    POST /v1/conversations/{id}/escalate       the same

Anything else is 403 `forbidden`, and so is a request whose `Origin` is not one of
the key's (a copied key used on another site, or from a script without `Origin`).
Server-side callers use an API key.

CORS: a preflight carries no key, so it is answered for the origins of the active
keys of the path's chatbot (of any chatbot, for the conversation routes) and only
for those four routes; the request itself is then held to its own key's origins.
Responses to an allowed origin, errors included, carry `Access-Control-Allow-Origin`
for that origin (web/headers.py reads the origin marked in the scope here).
"""

from __future__ import annotations

import re
from typing import Any

from litestar.types import HTTPResponseStartEvent, Scope, Send

from helpfaster_box.errors import Forbidden, Unauthorized
from helpfaster_box.keys import queries as keys_q

PREFIX = keys_q.PUBLISHABLE_PREFIX
WIDGET_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"^/v1/chatbots/(?P<bot>[^/]+)/chat/?$")),
    ("GET", re.compile(r"^/v1/chatbots/(?P<bot>[^/]+)/?$")),
    ("GET", re.compile(r"^/v1/conversations/[^/]+/?$")),
    ("POST", re.compile(r"^/v1/conversations/[^/]+/escalate/?$")),
)
ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "x-api-key, content-type"
PREFLIGHT_MAX_AGE_S = 600
CORS_STATE = "cors_origin"


def widget_route(method: str, path: str) -> tuple[bool, str | None]:
    """(is one of the widget's routes, the chatbot id in its path if any)."""
    for allowed, pattern in WIDGET_ROUTES:
        found = pattern.match(path)
        if found and method == allowed:
            return True, found.groupdict().get("bot")
    return False, None


def origin_of(headers: dict[bytes, bytes]) -> str | None:
    raw = headers.get(b"origin")
    origin = raw.decode("latin-1").strip().lower() if raw else ""
    return origin if origin and origin != "null" else None


def mark_cors(scope: Scope, origin: str) -> None:
    scope.setdefault("state", {})[CORS_STATE] = origin


async def find_key(state: Any, raw_key: str) -> dict[str, Any] | None:
    key_hash = keys_q.hash_key(raw_key)
    found, row = state.key_cache.get("pub:" + key_hash)
    if not found:
        row = await state.db.aread(keys_q.find_publishable_by_hash, key_hash)
        state.key_cache.put("pub:" + key_hash, row)
    return row


async def authorize(scope: Scope, state: Any, raw_key: str, headers: dict[bytes, bytes]) -> dict[str, Any]:
    """The key's row when this request is one it may make; Unauthorized or Forbidden otherwise."""
    row = await find_key(state, raw_key)
    if row is None:
        raise Unauthorized("Unknown publishable key.")
    origin = origin_of(headers)
    if origin is None or origin not in row["allowed_origins"]:
        shown = origin or "none"
        raise Forbidden(f"This publishable key may not be used from origin {shown}.")
    mark_cors(scope, origin)  # from here on the page may read the error bodies
    if row["revoked_at"] is not None:
        raise Unauthorized("This publishable key has been revoked.")
    allowed, bot = widget_route(str(scope.get("method", "")), scope["path"])
    if not allowed:
        raise Forbidden(
            "A publishable key may only chat with its chatbot and read the conversations it "
            "started; use an API key for anything else."
        )
    if bot is not None and bot != row["chatbot_id"]:
        raise Forbidden("This publishable key belongs to another chatbot.")
    return row


async def preflight(scope: Scope, state: Any, headers: dict[bytes, bytes], send: Send) -> None:
    """Answer a CORS preflight: 204 for an allowed origin on a widget route, else 403."""
    origin = origin_of(headers)
    method = headers.get(b"access-control-request-method", b"").decode("latin-1").strip().upper()
    allowed, bot = widget_route(method, scope["path"])
    if origin is not None and allowed:
        origins = await state.db.aread_cached(("cors-origins", bot), keys_q.allowed_origins, bot)
        allowed = origin in origins
    if origin is None or not allowed:
        raise Forbidden(
            "Cross-origin requests are answered only on the widget's routes, "
            "from the allowed origins of a publishable key."
        )
    mark_cors(scope, origin)
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 204,
        "headers": [
            (b"access-control-allow-methods", ALLOW_METHODS.encode()),
            (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
            (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def check_same_site(headers: dict[bytes, bytes]) -> None:
    """Dashboard sign-in is for the box's own pages: refuse what a browser says came from elsewhere.

    (Cross-site JSON would need a preflight, which is refused anyway; this also covers
    the simple requests a form can make.)
    """
    site = headers.get(b"sec-fetch-site", b"").lower()
    if site in (b"cross-site", b"same-site"):
        raise Forbidden("Sign in from the dashboard served by this box.")
