"""Security, CORS and rate-limit headers on every response, added by the one outer ASGI
middleware (`web/observe.py`), so error responses rendered by the exception handler,
404s of unknown paths and CORS preflights get them too.

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
- `X-RateLimit-*`: the auth middleware (`web/auth.py`) leaves the raw header tuples of
  the request's rate-limit decision in the scope state; they are added here instead of
  in a send wrapper of its own (one wrapper per request instead of three; with the
  before_send hook gone and dependencies resolved without a task group, bench_http app
  CPU went from ~513-544 to ~330-490 us a request, see tests/bench/README.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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


RATE_LIMIT_STATE = "rate_limit_headers"  # raw (name, value) tuples, set by web/auth.py


def response_headers(
    headers: Iterable[tuple[bytes, bytes]], path: str, state: dict[str, Any]
) -> list[tuple[bytes, bytes]]:
    """`headers` (the response's own, raw) with the security, CORS and rate-limit ones added.

    The response's own security headers win (a route may set its own policy); the
    rate-limit and CORS headers replace any of the same name.
    """
    out = list(headers)
    present = {name.lower() for name, _ in out}
    out += [h for h in _security_for(path) if h[0] not in present]
    limits = state.get(RATE_LIMIT_STATE)
    if limits:
        out = _replaced(out, limits, present)
    if path.startswith("/v1"):
        out.append(_VARY)
        origin = state.get(CORS_STATE)
        if origin:
            out = _replaced(out, _encoded(cors_headers(origin)), present)
    return out


def _replaced(
    headers: list[tuple[bytes, bytes]], extra: tuple[tuple[bytes, bytes], ...], present: set[bytes]
) -> list[tuple[bytes, bytes]]:
    names = {name for name, _ in extra}
    if names & present:  # rare: only then is the list filtered
        headers = [h for h in headers if h[0].lower() not in names]
    return headers + list(extra)
