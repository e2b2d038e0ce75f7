"""Conversation and message shapes, as GET returns them and webhooks carry them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from helpfaster_box.schemas import Out, Struct
from helpfaster_box.store.ids import iso

ConversationStatus = Literal["open", "escalated", "resolved"]


class SourceRef(Out):
    """A passage a reply cites: its source's title and url, and the sentences quoted."""

    title: str | None
    url: str | None
    snippet: str
    source_id: str | UnsetType = UNSET


class FeedbackOut(Out):
    rating: str
    comment: str | None
    created_at: str | None


class MessageOut(Out):
    id: str
    role: str
    content: str
    created_at: str
    # visitor messages
    visitor: dict[str, Any] | UnsetType | None = UNSET
    metadata: dict[str, Any] | UnsetType | None = UNSET
    # chatbot replies
    sources: list[dict[str, Any]] | UnsetType = UNSET
    answered: bool | UnsetType | None = UNSET
    answer_mode: str | UnsetType | None = UNSET
    confidence: float | UnsetType | None = UNSET  # see chat.schemas.ChatReply
    decline_reason: str | UnsetType | None = UNSET
    latency_ms: int | UnsetType | None = UNSET
    ttft_ms: int | UnsetType | None = UNSET
    prompt_tokens: int | UnsetType | None = UNSET
    completion_tokens: int | UnsetType | None = UNSET
    feedback: FeedbackOut | UnsetType | None = UNSET
    # a person's replies (role agent)
    author: str | UnsetType | None = UNSET


class MessageEvent(MessageOut, kw_only=True):
    """The `message.sent` webhook payload: the message and where it belongs."""

    conversation_id: str
    chatbot_id: str


class ConversationOut(Out):
    id: str
    chatbot_id: str
    status: str
    visitor: dict[str, Any] | None
    metadata: dict[str, Any] | None
    message_count: int
    escalated_at: str | None
    escalation_reason: str | None
    created_at: str
    updated_at: str
    resolved_at: str | None = None
    messages: list[MessageOut] | UnsetType = UNSET


class Feedback(msgspec.Struct, forbid_unknown_fields=True):
    rating: Literal["up", "down"]
    comment: Annotated[str, Meta(max_length=2000)] | None = None


class EscalateRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(min_length=1, max_length=500)] | None = None


class AgentReply(Struct):
    """A person's reply in a conversation (role `agent`)."""

    content: Annotated[str, Meta(min_length=1, max_length=20_000)]
    author: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class ResolveRequest(Struct):
    """`handBack: true` returns the conversation to the bot (status `open`) instead of closing it."""

    hand_back: bool = False


def message_fields(m: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": m["id"],
        "role": m["role"],
        "content": m["content"],
        "created_at": iso(m["created_at"]),
    }
    if m["role"] == "assistant":
        out.update(
            sources=m["sources"] or [],
            answered=m["answered"],
            answer_mode=m["answer_mode"],
            confidence=m.get("confidence"),
            decline_reason=m.get("decline_reason"),
            latency_ms=m["latency_ms"],
            ttft_ms=m["ttft_ms"],
            prompt_tokens=m["prompt_tokens"],
            completion_tokens=m["completion_tokens"],
            feedback=FeedbackOut(
                rating=m["feedback_rating"], comment=m["feedback_comment"], created_at=iso(m["feedback_at"])
            )
            if m["feedback_rating"]
            else None,
        )
    elif m["role"] == "agent":
        out.update(author=m["author"])
    else:
        out.update(visitor=m["visitor"], metadata=m["metadata"])
    return out


def message_out(m: dict[str, Any]) -> MessageOut:
    return MessageOut(**message_fields(m))


def message_event(conv: dict[str, Any], m: dict[str, Any]) -> MessageEvent:
    return MessageEvent(**message_fields(m), conversation_id=conv["id"], chatbot_id=conv["chatbot_id"])


def conversation_out(c: dict[str, Any], messages: list[dict[str, Any]] | None = None) -> ConversationOut:
    return ConversationOut(
        id=c["id"],
        chatbot_id=c["chatbot_id"],
        status=c["status"],
        visitor=c["visitor"],
        metadata=c["metadata"],
        message_count=c["message_count"],
        escalated_at=iso(c["escalated_at"]),
        escalation_reason=c["escalation_reason"],
        created_at=iso(c["created_at"]),
        updated_at=iso(c["updated_at"]),
        resolved_at=iso(c["resolved_at"]),
        messages=UNSET if messages is None else [message_out(m) for m in messages],
    )
