"""One source of truth for chatbot defaults: what GET shows is what a chat does.

Documented defaults: lead capture off unless enabled (then ask after 3 visitor messages
or on intent); escalation on, after 2 unanswered replies in a row or when the visitor
asks for a person.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from support.knowledge import models_settings

from helpfaster_box.chatbots import queries as bots_q
from helpfaster_box.chatbots.service import chatbot_out
from helpfaster_box.leads import escalation
from helpfaster_box.leads.contacts import ASK_MESSAGE
from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.store.ids import utcnow
from helpfaster_box.web.app import create_app

DEFAULT_LEAD_CAPTURE = {
    "enabled": False,
    "fields": ["name", "email"],
    "askAfterMessages": 3,
    "onIntent": True,
}
DEFAULT_ESCALATION = {"enabled": True, "onHumanRequest": True, "afterUnanswered": 2}


@pytest.fixture(scope="module")
def bot_env(tmp_path_factory) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    settings = models_settings(tmp_path_factory.mktemp("defaults"))
    key = bootstrap(settings)
    with TestClient(create_app(settings)) as client:
        headers = {"x-api-key": str(key)}
        made = client.post("/v1/chatbots", json={"name": "No settings"}, headers=headers)
        assert made.status_code == 201, made.text
        yield client, headers, made.json()["id"]


@pytest.mark.models
def test_get_shows_the_documented_defaults(bot_env):
    client, headers, bot = bot_env
    shown = client.get(f"/v1/chatbots/{bot}", headers=headers).json()
    assert shown["leadCapture"] == DEFAULT_LEAD_CAPTURE
    assert shown["escalation"] == DEFAULT_ESCALATION


@pytest.mark.models
def test_a_chat_does_what_get_shows(bot_env):
    client, headers, bot = bot_env

    def say(message: str, conv: str | None = None) -> dict:
        body = {"message": message, **({"conversationId": conv} if conv else {})}
        r = client.post(f"/v1/chatbots/{bot}/chat", json=body, headers=headers)
        assert r.status_code == 200, r.text
        return r.json()

    # Lead capture is off: contact details and buying intent neither make a lead nor an ask.
    first = say("What does the enterprise plan cost? Reach me at ola@example.com, call +4722334455")
    assert first["answered"] is False and first["escalated"] is False
    assert ASK_MESSAGE not in first["reply"]
    assert client.get(f"/v1/chatbots/{bot}/leads", headers=headers).json()["data"] == []
    # Escalation after 2 unanswered in a row: the second miss hands the conversation over.
    second = say("And how do I configure the quantum flux capacitor?", first["conversationId"])
    assert second["answered"] is False and second["escalated"] is True
    conv = client.get(f"/v1/conversations/{first['conversationId']}", headers=headers).json()
    assert conv["status"] == "escalated"
    assert conv["escalationReason"] == escalation.after_failures_reason(2)


def test_a_row_stored_without_settings_reads_with_the_same_defaults():
    """A chatbot stored before a setting existed (empty JSON) gets the struct defaults,
    for what GET shows and for what the chat turn decides."""
    now = utcnow()
    row = {
        "id": "bot_old", "org_id": "org_x", "name": "Old", "instructions": "i", "welcome_message": "w",
        "fallback_message": "f", "answer_mode": "extractive", "temperature": 0.2, "max_tokens": 256,
        "lead_capture": "{}", "escalation": json.dumps({"message": "A person will answer."}),
        "created_at": now, "updated_at": now,
    }  # fmt: skip
    bot = bots_q.decode(row)
    assert bot is not None
    out = chatbot_out(bot)
    assert out.escalation_message == "A person will answer."
    assert out.lead_capture.enabled is False and out.lead_capture.ask_after_messages == 3
    assert out.escalation.after_unanswered == 2
    # The chat turn reads the same structs: a second unanswered turn escalates.
    assert escalation.auto_reason(bot.escalation, "hm", answered=False, streak_after=1) is None
    assert escalation.auto_reason(bot.escalation, "hm", answered=False, streak_after=2) is not None
