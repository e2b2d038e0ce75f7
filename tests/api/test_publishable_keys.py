"""Publishable widget keys (`hf_pub_`): created per chatbot with allowed origins, and
then able to do only what the widget needs, from those origins only, with CORS
answered for exactly those origins. The chat turns use the real tiny models.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from support.helpers import Org, assert_error_body, cli_create_org, make_settings
from support.knowledge import models_settings

from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.web.app import create_app

SITE = "http://127.0.0.2:8000"
OTHER_SITE = "http://127.0.0.3:8000"
QUESTION = "What are the opening hours of the Oslo office?"


def create_key(c: TestClient, admin: dict[str, str], bot: str, origins: list[str] | None = None) -> Any:
    r = c.post(
        f"/v1/chatbots/{bot}/publishable-keys",
        json={"name": "intranet", "allowedOrigins": origins or [SITE]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return r.json()


def widget(key: str, origin: str | None = SITE) -> dict[str, str]:
    return {"x-api-key": key, **({"origin": origin} if origin else {})}


def preflight(c: TestClient, path: str, origin: str, method: str = "POST") -> Any:
    return c.options(
        path,
        headers={
            "origin": origin,
            "access-control-request-method": method,
            "access-control-request-headers": "x-api-key, content-type",
        },
    )


@pytest.fixture
def bot(client: TestClient, admin: dict[str, str]) -> str:
    r = client.post(
        "/v1/chatbots", json={"name": "Widget bot", "instructions": "SECRET PROMPT"}, headers=admin
    )
    return str(r.json()["id"])


# --- managing keys --------------------------------------------------------------------


def test_a_key_is_shown_once_and_listed_with_its_origins(
    client: TestClient, admin: dict[str, str], bot: str
) -> None:
    made = create_key(client, admin, bot, ["HTTPS://Intranet.Example.com:443/", "http://127.0.0.2:8000"])
    assert made["key"].startswith("hf_pub_") and len(made["key"]) == 39
    assert made["allowedOrigins"] == ["https://intranet.example.com", "http://127.0.0.2:8000"]
    listed = client.get(f"/v1/chatbots/{bot}/publishable-keys", headers=admin).json()
    assert listed["hasMore"] is False
    (item,) = listed["data"]
    assert set(item) == {
        "id",
        "chatbotId",
        "name",
        "allowedOrigins",
        "prefix",
        "createdAt",
        "revokedAt",
        "key",
    }
    assert item["key"] is None and made["key"].startswith(item["prefix"])


@pytest.mark.parametrize(
    "origin",
    [
        "intranet.example.com",
        "ftp://example.com",
        "https://example.com/help",
        "https://*.example.com",
        "https://user@example.com",
        "https://example.com?x=1",
        "https://example.com:99999",
        "*",
    ],
)
def test_origins_must_be_scheme_host_and_port(
    client: TestClient, admin: dict[str, str], bot: str, origin: str
) -> None:
    r = client.post(
        f"/v1/chatbots/{bot}/publishable-keys", json={"allowedOrigins": [SITE, origin]}, headers=admin
    )
    assert r.status_code == 400, r.text
    assert_error_body(r.json(), "bad_request")
    assert r.json()["details"][0]["field"] == "allowedOrigins[1]"


def test_only_admins_manage_keys_and_only_for_their_own_chatbots(
    client: TestClient, admin: dict[str, str], org_b: Org, bot: str
) -> None:
    path = f"/v1/chatbots/{bot}/publishable-keys"
    member = client.post("/v1/api-keys", json={"role": "member"}, headers=admin).json()["key"]
    assert client.get(path, headers={"x-api-key": member}).status_code == 403
    other = client.post(path, json={"allowedOrigins": [SITE]}, headers=org_b.admin)
    assert other.status_code == 404
    assert_error_body(other.json(), "not_found")


def test_a_revoked_key_is_refused_at_once(client: TestClient, admin: dict[str, str], bot: str) -> None:
    made = create_key(client, admin, bot)
    assert client.get(f"/v1/chatbots/{bot}", headers=widget(made["key"])).status_code == 200
    assert (
        client.delete(f"/v1/chatbots/{bot}/publishable-keys/{made['id']}", headers=admin).status_code == 204
    )
    r = client.get(f"/v1/chatbots/{bot}", headers=widget(made["key"]))
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == SITE  # the page may read why
    again = client.delete(f"/v1/chatbots/{bot}/publishable-keys/{made['id']}", headers=admin)
    assert again.status_code == 404
    listed = client.get(f"/v1/chatbots/{bot}/publishable-keys", headers=admin).json()["data"]
    assert listed[0]["revokedAt"]


def test_deleting_the_chatbot_deletes_its_keys(client: TestClient, admin: dict[str, str], bot: str) -> None:
    made = create_key(client, admin, bot)
    assert client.delete(f"/v1/chatbots/{bot}", headers=admin).status_code == 204
    assert client.get(f"/v1/chatbots/{bot}", headers=widget(made["key"])).status_code == 401


# --- what a publishable key may do ----------------------------------------------------


def test_it_reads_only_the_public_view_of_its_chatbot(
    client: TestClient, admin: dict[str, str], bot: str
) -> None:
    key = create_key(client, admin, bot)["key"]
    r = client.get(f"/v1/chatbots/{bot}", headers=widget(key))
    assert r.status_code == 200
    assert set(r.json()) == {"id", "name", "welcomeMessage", "escalationMessage", "leadCapture", "escalation"}
    assert "SECRET PROMPT" not in r.text
    assert r.headers["access-control-allow-origin"] == SITE and "Origin" in r.headers["vary"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/chatbots"),
        ("PATCH", "/v1/chatbots/{bot}"),
        ("DELETE", "/v1/chatbots/{bot}"),
        ("GET", "/v1/chatbots/{bot}/sources"),
        ("POST", "/v1/chatbots/{bot}/search"),
        ("GET", "/v1/chatbots/{bot}/conversations"),
        ("GET", "/v1/chatbots/{bot}/leads"),
        ("GET", "/v1/chatbots/{bot}/publishable-keys"),
        ("GET", "/v1/api-keys"),
        ("GET", "/v1/webhooks"),
        ("GET", "/v1/organization"),
        ("POST", "/v1/messages/msg_x/feedback"),
    ],
)
def test_everything_else_is_forbidden(
    client: TestClient, admin: dict[str, str], bot: str, method: str, path: str
) -> None:
    key = create_key(client, admin, bot)["key"]
    r = client.request(
        method, path.format(bot=bot), headers=widget(key), json={} if method != "GET" else None
    )
    assert r.status_code == 403, (path, r.text)
    assert_error_body(r.json(), "forbidden")
    assert r.headers["access-control-allow-origin"] == SITE


def test_another_chatbot_is_forbidden(client: TestClient, admin: dict[str, str], bot: str) -> None:
    other = client.post("/v1/chatbots", json={"name": "Other"}, headers=admin).json()["id"]
    key = create_key(client, admin, bot)["key"]
    for r in (
        client.get(f"/v1/chatbots/{other}", headers=widget(key)),
        client.post(f"/v1/chatbots/{other}/chat", json={"message": "hi"}, headers=widget(key)),
    ):
        assert r.status_code == 403
        assert "another chatbot" in r.json()["message"]


@pytest.mark.parametrize(
    "origin", [OTHER_SITE, "http://127.0.0.2:8001", "https://127.0.0.2:8000", "null", None]
)
def test_a_wrong_or_missing_origin_is_refused_without_cors(
    client: TestClient, admin: dict[str, str], bot: str, origin: str | None
) -> None:
    key = create_key(client, admin, bot)["key"]
    r = client.get(f"/v1/chatbots/{bot}", headers=widget(key, origin))
    assert r.status_code == 403
    assert_error_body(r.json(), "forbidden")
    assert "access-control-allow-origin" not in r.headers


def test_preflights_are_answered_for_exactly_the_allowed_origins(
    client: TestClient, admin: dict[str, str], bot: str
) -> None:
    create_key(client, admin, bot)
    ok = preflight(client, f"/v1/chatbots/{bot}/chat", SITE)
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == SITE
    assert ok.headers["access-control-allow-headers"] == "x-api-key, content-type"
    assert "POST" in ok.headers["access-control-allow-methods"] and "Origin" in ok.headers["vary"]
    assert preflight(client, "/v1/conversations/conv_x", SITE, "GET").status_code == 204
    assert preflight(client, "/v1/conversations/conv_x/escalate", SITE).status_code == 204
    for r in (
        preflight(client, f"/v1/chatbots/{bot}/chat", OTHER_SITE),
        preflight(client, f"/v1/chatbots/{bot}/sources", SITE),  # not a widget route
        preflight(client, f"/v1/chatbots/{bot}", SITE, "DELETE"),
        preflight(client, "/v1/chatbots/bot_other/chat", SITE),  # another chatbot's keys decide
    ):
        assert r.status_code == 403
        assert "access-control-allow-origin" not in r.headers


def test_visitors_have_their_own_limit_on_top_of_the_orgs(tmp_path) -> None:
    settings = make_settings(tmp_path / "data", widget_rate_limit=2)
    admin = {"x-api-key": bootstrap(settings) or ""}
    with TestClient(create_app(settings)) as c:
        bot = c.post("/v1/chatbots", json={"name": "b"}, headers=admin).json()["id"]
        key = create_key(c, admin, bot)["key"]
        assert c.get(f"/v1/chatbots/{bot}", headers=widget(key)).headers["X-RateLimit-Remaining"] == "1"
        assert c.get(f"/v1/chatbots/{bot}", headers=widget(key)).status_code == 200
        over = c.get(f"/v1/chatbots/{bot}", headers=widget(key))
        assert over.status_code == 429
        assert_error_body(over.json(), "rate_limited")
        assert over.headers["Retry-After"].isdigit()
        assert over.headers["access-control-allow-origin"] == SITE
        assert c.get(f"/v1/chatbots/{bot}", headers=admin).status_code == 200  # the org is not blocked


# --- conversations it started (real models) ---------------------------------------------


@pytest.fixture(scope="module")
def widget_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    settings = models_settings(tmp_path_factory.mktemp("widget"), widget_rate_limit=1000)
    admin = {"x-api-key": bootstrap(settings) or ""}
    with TestClient(create_app(settings), timeout=120) as c:
        bot = c.post("/v1/chatbots", json={"name": "Oslo", "answerMode": "extractive"}, headers=admin).json()[
            "id"
        ]
        r = c.post(
            f"/v1/chatbots/{bot}/sources",
            json={"type": "qa", "question": QUESTION, "answer": "The Oslo office is open from 8 to 16."},
            headers=admin,
        )
        assert r.status_code == 202
        c.app.state.knowledge.wait_idle(120)
        yield c, admin, bot


def test_a_widget_key_reads_and_escalates_only_the_conversations_it_started(
    widget_env: tuple[TestClient, dict[str, str], str],
) -> None:
    c, admin, bot = widget_env
    mine, theirs = create_key(c, admin, bot)["key"], create_key(c, admin, bot)["key"]
    turn = c.post(f"/v1/chatbots/{bot}/chat", json={"message": QUESTION}, headers=widget(mine))
    assert turn.status_code == 200, turn.text
    assert turn.headers["access-control-allow-origin"] == SITE
    conv = turn.json()["conversationId"]
    read = c.get(f"/v1/conversations/{conv}", headers=widget(mine))
    assert read.status_code == 200 and [m["role"] for m in read.json()["messages"]] == ["user", "assistant"]
    assert c.get(f"/v1/conversations/{conv}", headers=widget(theirs)).status_code == 404
    follow = c.post(
        f"/v1/chatbots/{bot}/chat", json={"message": "thanks", "conversationId": conv}, headers=widget(theirs)
    )
    assert follow.status_code == 404
    assert (
        c.post(f"/v1/conversations/{conv}/escalate", json={"reason": "x"}, headers=widget(theirs)).status_code
        == 404
    )
    up = c.post(
        f"/v1/conversations/{conv}/escalate",
        json={"reason": "Visitor asked for a person"},
        headers=widget(mine),
    )
    assert up.status_code == 200 and up.json()["status"] == "escalated"
    again = c.post(f"/v1/conversations/{conv}/escalate", json={"reason": "again"}, headers=widget(mine))
    assert again.status_code == 409
    assert again.headers["access-control-allow-origin"] == SITE
    assert c.get(f"/v1/conversations/{conv}", headers=admin).status_code == 200  # the org sees it all


def test_a_widget_key_cannot_read_a_conversation_started_with_an_api_key(
    widget_env: tuple[TestClient, dict[str, str], str],
) -> None:
    c, admin, bot = widget_env
    key = create_key(c, admin, bot)["key"]
    conv = c.post(f"/v1/chatbots/{bot}/chat", json={"message": QUESTION}, headers=admin).json()[
        "conversationId"
    ]
    r = c.get(f"/v1/conversations/{conv}", headers=widget(key))
    assert r.status_code == 404
    assert_error_body(r.json(), "not_found")


def test_a_widget_chat_streams_with_cors(widget_env: tuple[TestClient, dict[str, str], str]) -> None:
    c, admin, bot = widget_env
    key = create_key(c, admin, bot)["key"]
    with c.stream(
        "POST", f"/v1/chatbots/{bot}/chat", json={"message": QUESTION, "stream": True}, headers=widget(key)
    ) as r:
        body = "".join(r.iter_text())
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["access-control-allow-origin"] == SITE
    assert "event: token" in body and "event: done" in body


def test_org_b_is_untouched(tmp_path) -> None:
    settings = make_settings(tmp_path / "data")
    bootstrap(settings)
    other = cli_create_org(settings, "org-x")
    with TestClient(create_app(settings)) as c:
        bot = c.post("/v1/chatbots", json={"name": "x"}, headers=other.admin).json()["id"]
        key = create_key(c, other.admin, bot)["key"]
        assert c.get(f"/v1/chatbots/{bot}", headers=widget(key)).status_code == 200
