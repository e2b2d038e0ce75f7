"""The outermost layer of every HTTP request: request id, access line, request metrics,
and the security, CORS and rate-limit response headers (`web/headers.py`).

It wraps Litestar's own ASGI handler (routing + the exception handler), so it sees
every response the box sends — 404s of unknown paths, 401s from the auth middleware,
crashes rendered as 500 — with its final status, and after routing it can read the
route *template* Litestar put in the scope (`/v1/chatbots/{bot_id}`, never the raw
path with its ids: label values must stay few).

- `X-Request-Id`: taken from the client when it is a plausible id (1-128 characters of
  `A-Za-z0-9._:-`; anything else could forge log lines), generated otherwise; returned
  on every response and put in the access line and in every record logged meanwhile.
- One access line per request on the `helpfaster_box.access` logger: time, request id,
  method, route, status, latency_ms, org_id (once the API key is known), client.
- With `trusted_proxies` set, uvicorn's `ProxyHeadersMiddleware` runs first and replaces
  the client address and scheme with those of `X-Forwarded-For`/`-Proto` — only when the
  peer is one of those proxies — so logs and the loopback check see the real client.
  It runs here, not as a uvicorn option, so every ASGI server and the test client get
  the same behaviour.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from helpfaster_box.observability import logs
from helpfaster_box.observability.metrics import Metrics
from helpfaster_box.web.headers import response_headers

access_log = logging.getLogger("helpfaster_box.access")

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UNMATCHED = "<unmatched>"  # the route label of requests no route matched (404/405)


def request_id_of(headers: Any) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return os.urandom(16).hex()  # what uuid4().hex carries, without building a UUID


def client_host(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def observe(app: ASGIApp, metrics: Metrics, trusted_proxies: list[str]) -> ASGIApp:
    async def observed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id_of(scope["headers"])
        header = (b"x-request-id", rid.encode())
        token = logs.request_id.set(rid)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        path = scope["path"]
        status = 500  # a handler that dies before answering is a 500 to the client

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = response_headers(message.get("headers") or (), path, state)
                headers.append(header)
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"]  # type: ignore[typeddict-item]
            route = scope.get("path_template") if "route_handler" in scope else None
            route = route or UNMATCHED
            metrics.http_request(method, route, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                auth = state.get("auth")
                access_log.info(
                    "%s %s %d %.1f ms",
                    method,
                    route,
                    status,
                    elapsed * 1000,
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "latency_ms": round(elapsed * 1000, 2),
                        "org_id": auth.org_id if auth is not None else None,
                        "client": client_host(scope),
                    },
                )
            logs.request_id.reset(token)

    if trusted_proxies:
        return ProxyHeadersMiddleware(observed, trusted_hosts=trusted_proxies)  # type: ignore[arg-type,return-value]
    return observed
