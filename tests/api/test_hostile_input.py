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
