"""Every failure the API can produce has the same body: {"error", "message"} (+ details)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litestar import get
from litestar.testing import TestClient
from support.helpers import assert_error_body, cli_create_org, make_settings, wait_out_minute_boundary

from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.web.app import create_app

SECRET = "kaboom-internal-detail-7f3a"


@get("/test-crash", include_in_schema=False)
async def crash() -> None:
    raise RuntimeError(SECRET)


@dataclass
class Case:
    label: str
    status: int
    code: str
    call: Callable[[TestClient, dict[str, Any]], Any]
    details: bool = False  # a validation error carries a details list
    message_has: str = ""  # a word the message must contain (case-insensitive)
    headers: tuple[str, ...] = ()  # response headers that must be present
    check: Callable[[Any, dict[str, Any]], None] | None = field(default=None)


def _json(c: TestClient, method: str, path: str, key: str, body: bytes, ctype: str = "application/json"):
    return c.request(method, path, content=body, headers={"x-api-key": key, "content-type": ctype})


def _no_internals(resp: Any, ctx: dict[str, Any]) -> None:
    text = resp.text
    for leak in (SECRET, "Traceback", "RuntimeError", 'File "', ".py"):
        assert leak not in text, f"500 body leaks {leak!r}: {text}"


def _no_other_org_data(resp: Any, ctx: dict[str, Any]) -> None:
    assert "Secret bot of org B" not in resp.text
    assert ctx["b_bot"] not in resp.text


CASES = [
    Case(
        "malformed JSON",
        400,
        "bad_request",
        lambda c, x: _json(c, "POST", "/v1/chatbots", x["key"], b'{"name": "a",'),
        message_has="json",
    ),
    Case(
        "body is not an object",
        400,
        "bad_request",
        lambda c, x: _json(c, "POST", "/v1/chatbots", x["key"], b"[1, 2]"),
        details=True,
        message_has="body",
    ),
    Case(
        "validation: empty name",
        400,
        "bad_request",
        lambda c, x: c.post("/v1/chatbots", json={"name": ""}, headers=x["h"]),
        details=True,
        message_has="name",
    ),
    Case(
        "validation: wrong type",
        400,
        "bad_request",
        lambda c, x: c.post("/v1/chatbots", json={"name": "a", "temperature": "hot"}, headers=x["h"]),
        details=True,
        message_has="temperature",
    ),
    Case(
        "validation: missing required field",
        400,
        "bad_request",
        lambda c, x: c.post("/v1/chatbots", json={}, headers=x["h"]),
        details=True,
        message_has="name",
    ),
    Case(
        "unknown field",
        400,
        "bad_request",
        lambda c, x: c.post("/v1/chatbots", json={"name": "a", "colour": "red"}, headers=x["h"]),
        details=True,
        message_has="colour",
    ),
    Case(
        "bad cursor",
        400,
        "bad_request",
        lambda c, x: c.get("/v1/chatbots", params={"cursor": "not-a-cursor!"}, headers=x["h"]),
        details=True,
        message_has="cursor",
    ),
    Case(
        "limit=0",
        400,
        "bad_request",
        lambda c, x: c.get("/v1/chatbots", params={"limit": 0}, headers=x["h"]),
        details=True,
        message_has="limit",
    ),
    Case(
        "limit=101",
        400,
        "bad_request",
        lambda c, x: c.get("/v1/chatbots", params={"limit": 101}, headers=x["h"]),
        details=True,
        message_has="limit",
    ),
    Case(
        "limit not a number",
        400,
        "bad_request",
        lambda c, x: c.get("/v1/chatbots", params={"limit": "many"}, headers=x["h"]),
        details=True,
    ),
    Case("missing key", 401, "unauthorized", lambda c, x: c.get("/v1/chatbots"), message_has="key"),
    Case(
        "unknown key",
        401,
        "unauthorized",
        lambda c, x: c.get("/v1/chatbots", headers={"x-api-key": "hf_live_" + "x" * 32}),
    ),
    Case(
        "revoked key",
        401,
        "unauthorized",
        lambda c, x: c.get("/v1/chatbots", headers={"x-api-key": x["revoked"]}),
        message_has="revoked",
    ),
    Case(
        "member creates an API key",
        403,
        "forbidden",
        lambda c, x: c.post("/v1/api-keys", json={"role": "admin"}, headers={"x-api-key": x["member"]}),
    ),
    Case(
        "unknown route under /v1",
        404,
        "not_found",
        lambda c, x: c.get("/v1/nothing-here", headers=x["h"]),
    ),
    Case("unknown route at the root", 404, "not_found", lambda c, x: c.get("/no/such/page")),
    Case(
        "unknown chatbot",
        404,
        "not_found",
        lambda c, x: c.get("/v1/chatbots/bot_doesnotexist0000000", headers=x["h"]),
        message_has="chatbot",
    ),
    Case(
        "other org's chatbot",
        404,
        "not_found",
        lambda c, x: c.get(f"/v1/chatbots/{x['b_bot']}", headers=x["h"]),
        check=_no_other_org_data,
    ),
    Case(
        "wrong method",
        405,
        "method_not_allowed",
        lambda c, x: c.put("/v1/chatbots", json={"name": "a"}, headers=x["h"]),
    ),
    Case(
        "body over max_request_bytes",
        413,
        "payload_too_large",
        lambda c, x: c.post("/v1/chatbots", json={"name": "a", "instructions": "x" * 9000}, headers=x["h"]),
    ),
    Case(
        "text/plain body",
        415,
        "unsupported_media_type",
        lambda c, x: _json(c, "POST", "/v1/chatbots", x["key"], b"name=a", "text/plain"),
    ),
    Case(
        "rate limited",
        429,
        "rate_limited",
        lambda c, x: c.get("/v1/chatbots", headers={"x-api-key": x["exhausted"]}),
        headers=("retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"),
    ),
    Case(
        "unhandled exception",
        500,
        "server_error",
        lambda c, x: c.get("/test-crash"),
        check=_no_internals,
    ),
]


def test_error_shape(tmp_path, caplog):
    settings = make_settings(tmp_path / "data", max_request_bytes=4096)
    key = bootstrap(settings)
    org_b = cli_create_org(settings, "org-b")
    free = cli_create_org(settings, "free-org", plan="free")
    app = create_app(settings)
    app.register(crash)
    ctx: dict[str, Any] = {"key": key, "h": {"x-api-key": key}}

    with TestClient(app) as c:
        made = c.post("/v1/chatbots", json={"name": "Secret bot of org B"}, headers=org_b.admin)
        assert made.status_code == 201
        ctx["b_bot"] = made.json()["id"]
        member = c.post("/v1/api-keys", json={"role": "member"}, headers=ctx["h"]).json()
        ctx["member"] = member["key"]
        doomed = c.post("/v1/api-keys", json={"name": "doomed"}, headers=ctx["h"]).json()
        assert c.delete(f"/v1/api-keys/{doomed['id']}", headers=ctx["h"]).status_code == 204
        ctx["revoked"] = doomed["key"]
        # Use up the free org's 20 requests, far enough from a minute boundary that the
        # window is still exhausted when the 429 case runs a moment later.
        wait_out_minute_boundary(margin_s=8)
        for _ in range(21):
            if c.get("/v1/chatbots", headers=free.admin).status_code == 429:
                break
        ctx["exhausted"] = free.admin_key

        failures = []
        seen_statuses = set()
        for case in CASES:
            caplog.clear()
            with caplog.at_level(logging.ERROR):
                resp = case.call(c, ctx)
            seen_statuses.add(resp.status_code)
            try:
                assert resp.status_code == case.status, f"status {resp.status_code}: {resp.text[:300]}"
                assert resp.headers["content-type"].startswith("application/json")
                body = json.loads(resp.content)
                assert_error_body(body, case.code)
                assert ("details" in body) == case.details, body
                assert case.message_has.lower() in body["message"].lower(), body
                for name in case.headers:
                    assert name in resp.headers, f"missing header {name}"
                if case.check:
                    case.check(resp, ctx)
                if case.status == 500:
                    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
                    assert logged, "the 500 was not logged with its traceback"
                    exc = logged[0].exc_info[1]
                    assert isinstance(exc, RuntimeError) and SECRET in str(exc)
            except AssertionError as exc:
                failures.append(f"{case.label}: {exc}")

    assert not failures, "\n".join(failures)
    assert seen_statuses == {400, 401, 403, 404, 405, 413, 415, 429, 500}
