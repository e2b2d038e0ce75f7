"""Leads captured from chats and conversations escalated to humans (real models)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from helpfaster_box.leads.contacts import detect_contacts, normalize_phone
from helpfaster_box.leads.escalation import wants_human
from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.settings import load_settings
from helpfaster_box.web.app import create_app

pytestmark = pytest.mark.models

DOC = "# Shipping\n\nWe ship to Norway with PostNord. Delivery takes 5 to 7 business days.\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    settings = load_settings(None, {"data_dir": str(tmp_path_factory.mktemp("leads"))}, environ={})
    key = bootstrap(settings)
    with TestClient(create_app(settings), timeout=120) as c:
        h = {"x-api-key": key}
        bot = c.post(
            "/v1/chatbots",
            headers=h,
            json={
                "name": "Sales",
                "answerMode": "extractive",
                "leadCapture": {"enabled": True, "fields": ["name", "email", "phone"], "askAfterMessages": 2},
                "escalation": {"enabled": True, "onHumanRequest": True, "afterUnanswered": 2},
                "escalationMessage": "A colleague will take over this conversation shortly.",
            },
        ).json()["id"]
        assert (
            c.post(
                f"/v1/chatbots/{bot}/sources",
                headers=h,
                json={"type": "text", "title": "Shipping", "content": DOC},
            ).status_code
            == 202
        )
        c.app.state.knowledge.wait_idle(60)
        yield c, h, bot


def _chat(c: TestClient, h: dict[str, str], bot: str, message: str, **extra: Any) -> dict[str, Any]:
    r = c.post(f"/v1/chatbots/{bot}/chat", headers=h, json={"message": message, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def _leads(c: TestClient, h: dict[str, str], bot: str) -> list[dict[str, Any]]:
    return c.get(f"/v1/chatbots/{bot}/leads?limit=100", headers=h).json()["data"]


def test_contact_detection():
    found = detect_contacts("Hi, my name is Ada Lovelace, mail ada@Example.org or call +47 912 34 567.")
    assert found == {"name": "Ada Lovelace", "email": "ada@example.org", "phone": "+4791234567"}
    assert detect_contacts("Delivered on 2026-11-26, version 1.2.3, costs 12.50 EUR") == {}
    assert detect_contacts("write to not-an-email@ or @nobody") == {}
    assert normalize_phone("12345") is None
    assert detect_contacts("My order 12345678 has not arrived") == {}  # an order number, not a phone
    assert detect_contacts("my mobile is 98765432") == {"phone": "98765432"}
    assert wants_human("Can I talk to a human please?")
    assert wants_human("I want to speak with a real person")
    assert not wants_human("How do humans ship to Norway?")


def test_typed_lead_is_captured_once_and_updated(env):
    c, h, bot = env
    first = _chat(c, h, bot, "Do you ship to Norway? I'm interested in buying. Email me at kari@example.no")
    leads = [x for x in _leads(c, h, bot) if x["email"] == "kari@example.no"]
    assert len(leads) == 1
    lead = leads[0]
    assert lead["conversationIds"] == [first["conversationId"]]
    # The same visitor mentions the email again with more details, in a new conversation.
    second = _chat(c, h, bot, "My name is Kari Nordmann, call me on +47 987 65 432. kari@example.no")
    again = [x for x in _leads(c, h, bot) if x["email"] == "kari@example.no"]
    assert len(again) == 1 and again[0]["id"] == lead["id"]
    assert again[0]["name"] == "Kari Nordmann" and again[0]["phone"] == "+4798765432"
    full = c.get(f"/v1/leads/{lead['id']}", headers=h).json()
    assert full["conversationIds"] == [first["conversationId"], second["conversationId"]]
    assert [conv["id"] for conv in full["conversations"]] == full["conversationIds"]
    assert all(conv["messages"][0]["role"] == "user" for conv in full["conversations"])


def test_visitor_object_is_a_lead_and_csv_export(env):
    c, h, bot = env
    _chat(c, h, bot, "Hello", visitor={"name": "Ola", "email": "OLA@example.com", "phone": "+4722334455"})
    lead = next(x for x in _leads(c, h, bot) if x["email"] == "ola@example.com")
    assert lead["name"] == "Ola" and lead["phone"] == "+4722334455"
    r = c.get(f"/v1/chatbots/{bot}/leads?format=csv", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {"ola@example.com", "kari@example.no"} <= {row["email"] for row in rows}
    assert set(rows[0]) == {"id", "name", "email", "phone", "company", "createdAt", "updatedAt"}


def test_bot_asks_for_contact_details_once_on_intent(env):
    c, h, bot = env
    first = _chat(c, h, bot, "What does your enterprise plan cost? I'd like a quote.")
    assert "email" in first["reply"].lower()
    second = _chat(c, h, bot, "And do you ship to Norway?", conversationId=first["conversationId"])
    assert "leave your name" not in second["reply"].lower()  # asked once per conversation


def test_escalation_when_the_visitor_asks_for_a_human(env):
    c, h, bot = env
    body = _chat(c, h, bot, "This is not helping, let me talk to a human please")
    assert body["escalated"] is True
    assert body["reply"] == "A colleague will take over this conversation shortly."
    conv = c.get(f"/v1/conversations/{body['conversationId']}", headers=h).json()
    assert conv["status"] == "escalated" and "human" in conv["escalationReason"]
    assert conv["escalatedAt"]
    listed = c.get(f"/v1/chatbots/{bot}/conversations?status=escalated&limit=100", headers=h).json()["data"]
    assert body["conversationId"] in [x["id"] for x in listed]
    # Escalation happens once: asking again changes nothing, a manual escalation is a conflict.
    again = _chat(c, h, bot, "talk to a human!!", conversationId=body["conversationId"])
    assert again["escalated"] is True
    after = c.get(f"/v1/conversations/{body['conversationId']}", headers=h).json()
    assert after["escalatedAt"] == conv["escalatedAt"]
    r = c.post(f"/v1/conversations/{body['conversationId']}/escalate", headers=h, json={})
    assert r.status_code == 409 and r.json()["error"] == "conflict"


def test_escalation_after_repeated_fallback(env):
    c, h, bot = env
    first = _chat(c, h, bot, "What is the best sourdough bread recipe?")
    assert first["answered"] is False and first["escalated"] is False
    second = _chat(c, h, bot, "How do I tune a violin?", conversationId=first["conversationId"])
    assert second["answered"] is False and second["escalated"] is True
    assert "colleague will take over" in second["reply"]
    conv = c.get(f"/v1/conversations/{first['conversationId']}", headers=h).json()
    assert conv["status"] == "escalated" and "2 times" in conv["escalationReason"]


def test_manual_escalation_and_cross_org(env, tmp_path):
    c, h, bot = env
    body = _chat(c, h, bot, "Do you ship to Norway?")
    assert body["escalated"] is False
    r = c.post(
        f"/v1/conversations/{body['conversationId']}/escalate", headers=h, json={"reason": "VIP customer"}
    )
    assert r.status_code == 200
    assert r.json()["status"] == "escalated" and r.json()["escalationReason"] == "VIP customer"
    assert c.post("/v1/conversations/conv_nope/escalate", headers=h, json={}).status_code == 404
    assert c.get("/v1/leads/lead_nope", headers=h).status_code == 404
    bad = c.get(f"/v1/chatbots/{bot}/leads?from=2026-02-01&to=2026-01-01", headers=h)
    assert bad.status_code == 400


def test_streamed_export_route(env):
    c, h, bot = env
    _chat(c, h, bot, "Hi", visitor={"email": "export@example.com"})
    r = c.get(f"/v1/chatbots/{bot}/leads/export", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "export@example.com" in r.text
    assert r.text.splitlines()[0] == "id,name,email,phone,company,createdAt,updatedAt"


def test_csv_export_neutralizes_formulas_and_to_date_includes_the_day(env):
    c, h, bot = env
    _chat(
        c,
        h,
        bot,
        "Hi",
        visitor={
            "name": '=HYPERLINK("http://evil","x")',
            "email": "formula@example.com",
            "phone": "+4711223344",
        },
    )
    rows = list(csv.DictReader(io.StringIO(c.get(f"/v1/chatbots/{bot}/leads?format=csv", headers=h).text)))
    row = next(r for r in rows if r["email"] == "formula@example.com")
    assert row["name"].startswith("'=") and row["phone"] == "+4711223344"
    today = c.get(f"/v1/chatbots/{bot}/leads", headers=h).json()["data"][0]["createdAt"][:10]
    same_day = c.get(f"/v1/chatbots/{bot}/leads?from={today}&to={today}&limit=100", headers=h).json()["data"]
    assert "formula@example.com" in [x["email"] for x in same_day]


def test_ask_after_n_counts_visitor_messages_not_agent_replies(env):
    """askAfterMessages counts what the visitor wrote: two agent replies between a
    visitor's first and second message do not make the second one the third (it used to
    be derived from the conversation's message count, so they did)."""
    c, h, _ = env
    bot = c.post(
        "/v1/chatbots",
        headers=h,
        json={
            "name": "Ask after three",
            "answerMode": "extractive",
            "leadCapture": {"enabled": True, "askAfterMessages": 3, "onIntent": False},
            "escalation": {"enabled": False},
        },
    ).json()["id"]
    first = _chat(c, h, bot, "Do you ship to Norway?")
    conv = first["conversationId"]
    for text in ("Hello, I am Kari from support.", "We ship to Norway within five days."):
        r = c.post(f"/v1/conversations/{conv}/messages", headers=h, json={"content": text})
        assert r.status_code == 201, r.text
    replies = [first["reply"]]
    for question in ("And to Sweden?", "What about Denmark?"):
        replies.append(_chat(c, h, bot, question, conversationId=conv)["reply"])
    asked = ["leave your name" in reply.lower() for reply in replies]
    assert asked == [False, False, True], replies
