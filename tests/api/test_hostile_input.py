"""Hostile request bodies: each a 4xx with the standard error body, never a 500.

Found by hand first (issue 13): 1,000-level nesting was a 500 with a logged traceback, a NUL
was stored in names and messages, a lone surrogate read "Input data was truncated".
"""

from __future__ import annotations

import logging

import pytest
from support.helpers import assert_error_body

JSON = {"content-type": "application/json"}


def nested(depth: int, inner: str = "1", kind: str = "list") -> str:
    if kind == "list":
        return "[" * depth + inner + "]" * depth
    return '{"a":' * depth + inner + "}" * depth


@pytest.fixture
def bot(client, admin) -> str:
    return client.post("/v1/chatbots", json={"name": "Target"}, headers=admin).json()["id"]


@pytest.mark.parametrize("depth", [1_000, 10_000])
@pytest.mark.parametrize("kind", ["list", "object"])
@pytest.mark.parametrize("route", ["chatbots", "chat"])
def test_deeply_nested_json_is_a_400_and_logs_no_traceback(client, admin, bot, caplog, depth, kind, route):
    if route == "chatbots":
        path, body = "/v1/chatbots", '{"name": "x", "leadCapture": ' + nested(depth, "1", kind) + "}"
    else:
        path, body = (
            f"/v1/chatbots/{bot}/chat",
            '{"message": "hi", "metadata": ' + nested(depth, "1", kind) + "}",
        )
    with caplog.at_level(logging.ERROR):
        resp = client.post(path, content=body.encode(), headers={**admin, **JSON})
    assert resp.status_code == 400, resp.text
    assert_error_body(resp.json(), "bad_request")
    assert "nested too deeply" in resp.json()["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_nesting_within_the_limit_is_accepted(client, admin, bot):
    resp = client.post(
        f"/v1/chatbots/{bot}/chat",
        content=('{"message": "hi", "metadata": {"a": ' + nested(20, "1", "object") + "}}").encode(),
        headers={**admin, **JSON},
    )
    assert resp.status_code != 400 or "nested" not in resp.text, resp.text


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chatbots", {"name": "Sup\x00port"}, "name"),
        ("/v1/chatbots", {"name": "ok", "instructions": "be \x00 nice"}, "instructions"),
        ("/v1/chatbots", {"name": "ok", "welcomeMessage": "\x00"}, "welcomeMessage"),
        ("CHAT", {"message": "hello\x00world"}, "message"),
        ("CHAT", {"message": "hi", "visitor": {"name": "A\x00B"}}, "visitor.name"),
        ("CHAT", {"message": "hi", "metadata": {"k\x00": "v"}}, "metadata"),
        ("/v1/api-keys", {"name": "k\x00", "role": "member"}, "name"),
    ],
)
def test_nul_characters_are_refused_with_the_field(client, admin, bot, path, body, field):
    path = f"/v1/chatbots/{bot}/chat" if path == "CHAT" else path
    resp = client.post(path, json=body, headers=admin)
    assert resp.status_code == 400, resp.text
    assert_error_body(resp.json(), "bad_request")
    assert resp.json()["details"][0]["field"] == field
    assert "NUL" in resp.json()["message"]
    assert all("\x00" not in b["name"] for b in client.get("/v1/chatbots", headers=admin).json()["data"])


@pytest.mark.parametrize("escape", [b"\\ud800", b"\\udfff", b"x\\ud83dy", b"\\ude00\\ud83d"])
def test_a_lone_surrogate_gets_a_message_that_says_so(client, admin, escape):
    resp = client.post("/v1/chatbots", content=b'{"name": "' + escape + b'"}', headers={**admin, **JSON})
    assert resp.status_code == 400
    assert_error_body(resp.json(), "bad_request")
    assert "surrogate" in resp.json()["message"] and "truncated" not in resp.json()["message"]


def test_a_surrogate_pair_is_a_character_and_accepted(client, admin):
    resp = client.post("/v1/chatbots", content=b'{"name": "smile \\ud83d\\ude00"}', headers={**admin, **JSON})
    assert resp.status_code == 201 and resp.json()["name"] == "smile \U0001f600"


# --- the corpus: one row per hostile request, each a 4xx with the standard body -------------

BIG = "x" * 10_000_000
CORPUS: list[tuple[str, str, str, bytes, str, int]] = [
    # (label, method, path, body, content type, status)
    ("malformed JSON", "POST", "/v1/chatbots", b'{"name": "a",', "application/json", 400),
    ("not JSON at all", "POST", "/v1/chatbots", b"name=a", "application/json", 400),
    ("JSON but an array", "POST", "/v1/chatbots", b'["name"]', "application/json", 400),
    ("wrong type", "POST", "/v1/chatbots", b'{"name": 42}', "application/json", 400),
    ("null name", "POST", "/v1/chatbots", b'{"name": null}', "application/json", 400),
    ("huge number", "PATCH", "/v1/chatbots/{bot}", b'{"temperature": 1e400}', "application/json", 400),
    (
        "huge integer",
        "PATCH",
        "/v1/chatbots/{bot}",
        b'{"maxTokens": 99999999999999999999999}',
        "application/json",
        400,
    ),
    ("NaN", "PATCH", "/v1/chatbots/{bot}", b'{"temperature": NaN}', "application/json", 400),
    ("unknown field", "POST", "/v1/chatbots", b'{"name": "a", "isAdmin": true}', "application/json", 400),
    ("10 MB string", "POST", "/v1/chatbots", b'{"name": "' + BIG.encode() + b'"}', "application/json", 413),
    ("invalid UTF-8", "POST", "/v1/chatbots", b'{"name": "\xff\xfe"}', "application/json", 400),
    ("overlong UTF-8 NUL", "POST", "/v1/chatbots", b'{"name": "\xc0\x80"}', "application/json", 400),
    ("NUL escape", "POST", "/v1/chatbots", b'{"name": "a\\u0000"}', "application/json", 400),
    ("form body", "POST", "/v1/chatbots", b"name=a", "application/x-www-form-urlencoded", 415),
    ("XML body", "POST", "/v1/chatbots", b"<name>a</name>", "application/xml", 415),
    ("no content type", "POST", "/v1/chatbots", b'{"name": "a"}', "", 415),
    ("multipart to JSON route", "POST", "/v1/chatbots", b"--x--", "multipart/form-data; boundary=x", 415),
    (
        "long message",
        "POST",
        "/v1/chatbots/{bot}/chat",
        b'{"message": "' + b"m" * 5000 + b'"}',
        "application/json",
        400,
    ),
    (
        "search k too large",
        "POST",
        "/v1/chatbots/{bot}/search",
        b'{"query": "a", "k": 100000}',
        "application/json",
        400,
    ),
    ("invalid cursor", "GET", "/v1/chatbots?cursor=%00%ff", b"", "", 400),
    ("cursor of garbage", "GET", "/v1/chatbots?cursor=" + "A" * 5000, b"", "", 400),
    ("limit 0", "GET", "/v1/chatbots?limit=0", b"", "", 400),
    ("limit huge", "GET", "/v1/chatbots?limit=99999999999999999999", b"", "", 400),
    ("invalid date", "GET", "/v1/chatbots/{bot}/conversations?from=yesterday", b"", "", 400),
    ("date out of range", "GET", "/v1/chatbots/{bot}/conversations?from=99999-01-01", b"", "", 400),
    ("bad status filter", "GET", "/v1/chatbots/{bot}/conversations?status=%00", b"", "", 400),
    ("path traversal id", "GET", "/v1/chatbots/..%2F..%2Fetc%2Fpasswd", b"", "", 404),
    ("traversal in source id", "GET", "/v1/sources/../../helpfaster.duckdb", b"", "", 404),
    ("unknown route", "GET", "/v1/../../etc/passwd", b"", "", 404),
    ("wrong method", "PUT", "/v1/chatbots", b"{}", "application/json", 405),
]


@pytest.mark.parametrize(
    ("label", "method", "path", "body", "ctype", "status"), CORPUS, ids=[row[0] for row in CORPUS]
)
def test_hostile_requests_are_4xx_with_the_standard_body(
    client, admin, bot, label, method, path, body, ctype, status
):
    headers = {**admin, **({"content-type": ctype} if ctype else {})}
    resp = client.request(method, path.format(bot=bot), content=body or None, headers=headers)
    assert resp.status_code == status, (label, resp.status_code, resp.text[:300])
    assert_error_body(
        resp.json(),
        {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
        }[status],
    )
    assert "Traceback" not in resp.text
    # healthy afterwards, and nothing half-written
    assert client.get("/v1/health").status_code == 200
    names = [b["name"] for b in client.get("/v1/chatbots?limit=100", headers=admin).json()["data"]]
    assert names == ["Target"], names


def test_path_traversal_in_an_upload_name_is_kept_as_a_name(client, admin, bot):
    resp = client.post(
        f"/v1/chatbots/{bot}/sources",
        files={"file": ("../../../../etc/cron.d/evil.md", b"# hi\n\ntext", "text/markdown")},
        headers=admin,
    )
    # Without models the knowledge engine is off (503); with it the file is stored by source id.
    assert resp.status_code in (202, 503), resp.text
    assert_error_body(resp.json(), "unavailable") if resp.status_code == 503 else None
