"""Conversations (list, read with all messages) and message feedback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, get, post
from litestar.params import Parameter
from msgspec import Meta

from ..errors import bad_request, not_found
from ..store import conversations as conv_q
from ..store.db import Database
from ..store.ids import iso
from .auth import AuthContext
from .chatbots import load_chatbot
from .common import Cursor, Limit, Page, make_page


def parse_time(value: str | None, name: str) -> datetime | None:
    """ISO 8601 (date or date-time, Z or offset) -> naive UTC."""
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad_request(f"{name} must be an ISO 8601 date or time, e.g. 2026-11-26T10:00:00Z.", field=name) from None
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def time_range(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    a, b = parse_time(start, "from"), parse_time(end, "to")
    if b is not None and end is not None and len(end) == 10:  # a date: `to` includes that whole day
        b = b + timedelta(days=1) - timedelta(microseconds=1)
    if a is not None and b is not None and a > b:
        raise bad_request("from must not be after to.", field="from")
    return a, b


def message_out(m: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": m["id"], "role": m["role"], "content": m["content"], "createdAt": iso(m["created_at"]),
    }
    if m["role"] == "assistant":
        out.update({
            "sources": m["sources"] or [], "answered": m["answered"], "answerMode": m["answer_mode"],
            "latencyMs": m["latency_ms"], "ttftMs": m["ttft_ms"], "promptTokens": m["prompt_tokens"],
            "completionTokens": m["completion_tokens"],
            "feedback": {"rating": m["feedback_rating"], "comment": m["feedback_comment"],
                         "createdAt": iso(m["feedback_at"])} if m["feedback_rating"] else None,
        })
    else:
        out.update({"visitor": m["visitor"], "metadata": m["metadata"]})
    return out


def conversation_out(c: dict[str, Any], messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = {
        "id": c["id"], "chatbotId": c["chatbot_id"], "status": c["status"], "visitor": c["visitor"],
        "metadata": c["metadata"], "messageCount": c["message_count"],
        "escalatedAt": iso(c["escalated_at"]), "escalationReason": c["escalation_reason"],
        "createdAt": iso(c["created_at"]), "updatedAt": iso(c["updated_at"]),
    }
    if messages is not None:
        out["messages"] = [message_out(m) for m in messages]
    return out


async def load_conversation(db: Database, auth: AuthContext, conv_id: str) -> dict[str, Any]:
    def load(cur: Any) -> dict[str, Any] | None:
        conv = conv_q.get_conversation(cur, auth.org_id, conv_id)
        if conv is not None:
            conv = conversation_out(conv, conv_q.messages_of(cur, conv_id))
        return conv

    conv = await db.aread(load)
    if conv is None:
        raise not_found("Conversation")
    return conv


class Feedback(msgspec.Struct, forbid_unknown_fields=True):
    rating: Literal["up", "down"]
    comment: Annotated[str, Meta(max_length=2000)] | None = None


class ConversationsController(Controller):
    tags = ["Conversations"]  # noqa: RUF012 - declared by Litestar's Controller

    @get("/chatbots/{bot_id:str}/conversations")
    async def list_conversations(
        self, auth: AuthContext, db: Database, bot_id: str, limit: Limit = 20, cursor: Cursor = None,
        start: Annotated[str | None, Parameter(query="from", description="ISO 8601, inclusive.")] = None,
        end: Annotated[str | None, Parameter(query="to", description="ISO 8601, inclusive.")] = None,
        status: Annotated[Literal["open", "escalated"] | None, Parameter(description="Only this status.")] = None,
    ) -> Page[dict[str, Any]]:
        await load_chatbot(db, auth, bot_id)
        a, b = time_range(start, end)
        rows, nxt = await db.aread(
            lambda cur: conv_q.list_conversations(cur, bot_id, limit=limit, cursor=cursor, start=a, end=b,
                                                  status=status)
        )
        return make_page([conversation_out(r) for r in rows], nxt)

    @get("/conversations/{conv_id:str}")
    async def get_conversation(self, auth: AuthContext, db: Database, conv_id: str) -> dict[str, Any]:
        return await load_conversation(db, auth, conv_id)

    @post("/messages/{msg_id:str}/feedback", status_code=200)
    async def add_feedback(self, auth: AuthContext, db: Database, msg_id: str, data: Feedback) -> dict[str, Any]:
        def apply(cur: Any) -> dict[str, Any] | None:
            msg = conv_q.get_message(cur, auth.org_id, msg_id)
            if msg is None:
                return None
            if msg["role"] != "assistant":
                return {"error": "role"}
            conv_q.set_feedback(cur, msg_id, data.rating, data.comment)
            return conv_q.get_message(cur, auth.org_id, msg_id)

        msg = await db.awrite(apply)
        if msg is None:
            raise not_found("Message")
        if "error" in msg:
            raise bad_request("Feedback is for the chatbot's replies, not the visitor's messages.")
        return message_out(msg)
