"""Conversations: read them, rate a reply, hand one to a human, let the human answer,
close it or hand it back. No HTTP here.

`escalate_in` is the one way a conversation is escalated, by an operator's call
or automatically inside a chat turn: it changes the row and emits
`conversation.escalated` in the caller's transaction.

Status: `open` (the bot answers) -> `escalated` (a person has it; the bot stays
quiet, see chat/held.py) -> `resolved` (closed; a new visitor message reopens it
for the bot) or, handed back, `open` again. An agent reply changes no status: a
person may also write into a conversation the bot is handling.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from helpfaster_box.conversations import queries as conv_q
from helpfaster_box.conversations.schemas import (
    ConversationOut,
    MessageOut,
    conversation_out,
    message_event,
    message_out,
)
from helpfaster_box.errors import Conflict, Invalid, NotFound
from helpfaster_box.schemas import Page, make_page
from helpfaster_box.store.db import Database
from helpfaster_box.webhooks import outbox


def emit(
    cur: duckdb.DuckDBPyConnection,
    conv: dict[str, Any],
    event_type: str,
    data: Any,
    hooks: outbox.Subscriptions | None = None,
) -> None:
    outbox.emit(
        cur, org_id=conv["org_id"], chatbot_id=conv["chatbot_id"], type=event_type, data=data, hooks=hooks
    )


def escalate_in(
    cur: duckdb.DuckDBPyConnection, org_id: str, conv_id: str, reason: str
) -> ConversationOut | None:
    """Escalate once, in the caller's transaction; None when it already was."""
    if not conv_q.escalate(cur, conv_id, reason):
        return None
    conv = conv_q.must_get(cur, org_id, conv_id)
    out = conversation_out(conv, None)
    emit(cur, conv, "conversation.escalated", out)
    return out


def visible(conv: dict[str, Any] | None, publishable_key_id: str | None) -> bool:
    """A widget key sees only the conversations it started; an API key sees its org's."""
    if conv is None:
        return False
    return publishable_key_id is None or conv.get("publishable_key_id") == publishable_key_id


async def get(
    db: Database, org_id: str, conv_id: str, publishable_key_id: str | None = None
) -> ConversationOut:
    def read(cur: Any) -> ConversationOut | None:
        conv = conv_q.get_conversation(cur, org_id, conv_id)
        if conv is None or not visible(conv, publishable_key_id):
            return None
        return conversation_out(conv, conv_q.messages_of(cur, conv_id))

    conv = await db.aread(read)
    if conv is None:
        raise NotFound.of("Conversation")
    return conv


async def list_page(
    db: Database,
    bot_id: str,
    *,
    limit: int,
    cursor: str | None,
    start: datetime | None,
    end: datetime | None,
    status: str | None,
) -> Page[ConversationOut]:
    rows, nxt = await db.aread(
        lambda cur: conv_q.list_conversations(
            cur, bot_id, limit=limit, cursor=cursor, start=start, end=end, status=status
        )
    )
    return make_page([conversation_out(r) for r in rows], nxt)


async def escalate(
    db: Database, org_id: str, conv_id: str, reason: str, publishable_key_id: str | None = None
) -> ConversationOut:
    def apply(cur: Any) -> ConversationOut:
        if not visible(conv_q.get_conversation(cur, org_id, conv_id), publishable_key_id):
            raise NotFound.of("Conversation")
        out = escalate_in(cur, org_id, conv_id, reason)
        if out is None:
            raise Conflict("This conversation has already been escalated.")
        return out

    return await db.awrite(apply)


async def add_feedback(
    db: Database, org_id: str, msg_id: str, rating: str, comment: str | None
) -> MessageOut:
    def apply(cur: Any) -> MessageOut:
        msg = conv_q.get_message(cur, org_id, msg_id)
        if msg is None:
            raise NotFound.of("Message")
        if msg["role"] != "assistant":
            raise Invalid("Feedback is for the chatbot's replies, not the visitor's messages.")
        conv_q.set_feedback(cur, msg_id, rating, comment)
        updated = conv_q.get_message(cur, org_id, msg_id)
        assert updated is not None
        return message_out(updated)

    return await db.awrite(apply)


async def add_agent_message(
    db: Database, org_id: str, conv_id: str, content: str, author: str | None
) -> MessageOut:
    """A person's reply, appended in order and sent as `message.sent` in the same transaction."""
    text = content.strip()
    if not text:
        raise Invalid("content must not be empty.", field="content")

    def apply(cur: Any) -> MessageOut:
        conv = conv_q.get_conversation(cur, org_id, conv_id)
        if conv is None:
            raise NotFound.of("Conversation")
        msg = conv_q.add_message(cur, conv, {"role": "agent", "content": text, "author": author})
        emit(cur, conv, "message.sent", message_event(conv, msg))
        return message_out(msg)

    return await db.awrite(apply)


async def resolve(db: Database, org_id: str, conv_id: str, hand_back: bool) -> ConversationOut:
    """Close the conversation, or (hand_back) return it to the bot."""

    def apply(cur: Any) -> ConversationOut:
        conv = conv_q.get_conversation(cur, org_id, conv_id)
        if conv is None:
            raise NotFound.of("Conversation")
        target = "open" if hand_back else "resolved"
        if conv["status"] == target:
            raise Conflict(
                "This conversation is already with the bot."
                if hand_back
                else "This conversation is already resolved."
            )
        conv_q.set_status(cur, conv_id, target)
        return conversation_out(conv_q.must_get(cur, org_id, conv_id), None)

    return await db.awrite(apply)
