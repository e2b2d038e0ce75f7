"""Security and CORS headers on every response (a `before_send` hook, so error
responses rendered by the exception handler get them too).

- Dashboard (`/`, `/static/...`): a strict Content-Security-Policy. Every script is
  a same-origin ES module and every style a same-origin stylesheet, so no inline
  script or style is allowed; images only from the box or `data:` (the favicon);
  `fetch` only to the box; no framing (`frame-ancestors 'none'` + X-Frame-Options).
- API (`/v1`): JSON is never a document: `default-src 'none'`, no framing.
  The Swagger UI under `/v1/docs` keeps its own scripts, so there only framing is
  denied.
- `/widget.js` is embedded as a script by other sites, not framed: it gets
  `Cross-Origin-Resource-Policy: cross-origin` (a host page with COEP may load it).
- Everything: `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`.
- CORS: `Access-Control-Allow-Origin` only for the origin `web/publishable.py`
  accepted for this request; every `/v1` answer varies on `Origin`.
"""

from __future__ import annotations

from litestar.types import Message, Scope

from helpfaster_box.web.publishable import CORS_STATE

DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = "frame-ancestors 'none'"
EXPOSE_HEADERS = "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After"
COMMON = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def security_headers(path: str) -> dict[str, str]:
    if path == "/widget.js":
        return {**COMMON, "Cross-Origin-Resource-Policy": "cross-origin"}
    if path.startswith("/v1/docs"):
        csp = DOCS_CSP
    elif path.startswith("/v1"):
        csp = API_CSP
    else:
        csp = DASHBOARD_CSP
    return {**COMMON, "Content-Security-Policy": csp, "X-Frame-Options": "DENY"}


def cors_headers(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSE_HEADERS}


def _encoded(headers: dict[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((k.lower().encode(), v.encode()) for k, v in headers.items())


# Every response passes here: the few header sets are encoded once, and raw header
# tuples are appended instead of parsing the whole list (measured: the parsed
# MutableScopeHeaders route cost ~4 % of the CPU of a small JSON answer).
_WIDGET = _encoded(security_headers("/widget.js"))
_DOCS = _encoded(security_headers("/v1/docs"))
_API = _encoded(security_headers("/v1/chatbots"))
_DASHBOARD = _encoded(security_headers("/"))
_VARY = (b"vary", b"Origin")


def _security_for(path: str) -> tuple[tuple[bytes, bytes], ...]:
    if path == "/widget.js":
        return _WIDGET
    if path.startswith("/v1/docs"):
        return _DOCS
    return _API if path.startswith("/v1") else _DASHBOARD


async def add_response_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    path = scope.get("path", "")
    headers = list(message.get("headers") or ())
    present = {name.lower() for name, _ in headers}
    headers += [h for h in _security_for(path) if h[0] not in present]
    if path.startswith("/v1"):
        headers.append(_VARY)
        origin = (scope.get("state") or {}).get(CORS_STATE)
        if origin:
            cors = _encoded(cors_headers(origin))
            names = {name for name, _ in cors}
            headers = [h for h in headers if h[0].lower() not in names] + list(cors)
    message["headers"] = headers
