"""Chatbots: create, read, partial update, delete with all their data. No HTTP here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import UNSET

from helpfaster_box.chatbots import queries as bots_q
from helpfaster_box.chatbots.schemas import (
    DEFAULT_ESCALATION,
    DEFAULT_FALLBACK,
    DEFAULT_INSTRUCTIONS,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    DEFAULT_WELCOME,
    Chatbot,
    ChatbotCreate,
    ChatbotOut,
    ChatbotPatch,
    ChatbotPublicOut,
    Escalation,
    LeadCapture,
)
from helpfaster_box.errors import NotFound
from helpfaster_box.schemas import Page, make_page
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import Database
from helpfaster_box.store.ids import iso


def defaults(settings: Settings) -> dict[str, Any]:
    """The value of every field a request leaves out (or sets to null)."""
    return {
        "instructions": DEFAULT_INSTRUCTIONS,
        "welcome_message": DEFAULT_WELCOME,
        "fallback_message": DEFAULT_FALLBACK,
        "escalation_message": DEFAULT_ESCALATION,
        "answer_mode": settings.default_answer_mode,
        "temperature": DEFAULT_TEMPERATURE,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "lead_capture": LeadCapture(),
        "escalation": Escalation(),
    }


def chatbot_out(bot: Chatbot) -> ChatbotOut:
    return ChatbotOut(
        id=bot.id,
        name=bot.name,
        instructions=bot.instructions,
        welcome_message=bot.welcome_message,
        fallback_message=bot.fallback_message,
        escalation_message=bot.escalation_message,
        answer_mode=bot.answer_mode,
        temperature=bot.temperature,
        max_tokens=bot.max_tokens,
        lead_capture=bot.lead_capture,
        escalation=bot.escalation,
        created_at=iso(bot.created_at),
        updated_at=iso(bot.updated_at),
    )


def public_out(bot: Chatbot) -> ChatbotPublicOut:
    return ChatbotPublicOut(
        id=bot.id,
        name=bot.name,
        welcome_message=bot.welcome_message,
        escalation_message=bot.escalation_message,
        lead_capture=bot.lead_capture,
        escalation=bot.escalation,
    )


async def load(db: Database, org_id: str, bot_id: str) -> Chatbot:
    """The org's chatbot (cached until the next write), or NotFound."""
    bot = await db.aread_cached(("chatbot", org_id, bot_id), bots_q.get_chatbot, org_id, bot_id)
    if bot is None:
        raise NotFound.of("Chatbot")
    return bot


async def list_page(db: Database, org_id: str, limit: int, cursor: str | None) -> Page[ChatbotOut]:
    def read(cur: Any) -> Page[ChatbotOut]:
        bots, nxt = bots_q.list_chatbots(cur, org_id, limit=limit, cursor=cursor)
        return make_page([chatbot_out(b) for b in bots], nxt)

    return await db.aread_cached(("chatbots", org_id, limit, cursor), read)


async def create(db: Database, settings: Settings, org_id: str, data: ChatbotCreate) -> ChatbotOut:
    base = defaults(settings)
    given = msgspec.structs.asdict(data)
    values = {k: (base[k] if v is None else v) for k, v in given.items() if k != "name"}
    values["name"] = data.name
    return chatbot_out(await db.awrite(bots_q.create_chatbot, org_id, values))


async def update(
    db: Database, settings: Settings, org_id: str, bot_id: str, data: ChatbotPatch
) -> ChatbotOut:
    base = defaults(settings)
    given = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not UNSET}
    values = {k: (base[k] if v is None and k != "name" else v) for k, v in given.items()}

    def apply(cur: Any) -> Chatbot | None:
        current = bots_q.get_chatbot(cur, org_id, bot_id)
        if current is None:
            return None
        # The escalation message is stored with the escalation settings: keep the pair whole.
        if "escalation" in values or "escalation_message" in values:
            values.setdefault("escalation", current.escalation)
            values.setdefault("escalation_message", current.escalation_message)
        return bots_q.update_chatbot(cur, org_id, bot_id, values)

    bot = await db.awrite(apply)
    if bot is None:
        raise NotFound.of("Chatbot")
    return chatbot_out(bot)


async def delete(db: Database, org_id: str, bot_id: str, on_deleted: list[Callable[[str], None]]) -> None:
    if not await db.awrite(bots_q.delete_chatbot, org_id, bot_id):
        raise NotFound.of("Chatbot")
    for hook in on_deleted:
        hook(bot_id)
