"""Chat request and reply shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from helpfaster_box.conversations.schemas import SourceRef
from helpfaster_box.schemas import Out


class Visitor(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(max_length=200)] | None = None
    email: Annotated[str, Meta(max_length=320)] | None = None
    phone: Annotated[str, Meta(max_length=50)] | None = None
    company: Annotated[str, Meta(max_length=200)] | None = None


class ChatRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    message: str
    conversation_id: str | None = None
    stream: bool = False
    visitor: Visitor | None = None
    metadata: dict[str, Any] | None = None


@dataclass(slots=True)
class ChatInput:
    """One chat turn as the service takes it (routes.chat_input builds it from a ChatRequest)."""

    message: str
    conversation_id: str | None = None
    visitor: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    publishable_key_id: str | None = None  # the widget key of this turn: it sees only its own conversations


class ChatReply(Out):
    """The answer to one chat turn (the body, or the `done` event when streaming)."""

    reply: str
    sources: list[SourceRef]
    conversation_id: str
    message_id: str
    escalated: bool
    answered: bool
    # The grounding contract: how sure the bot is that the reply answers the question
    # (0-1; of extractive replies with confidence >= 0.8, the share holding the answer is
    # measured in tests/quality/results.md) and, when it did not answer, why:
    # no_knowledge (the chatbot has no sources), not_relevant (nothing retrieved passes
    # the relevance gate), low_confidence (a candidate answer's evidence is too weak).
    # A hand-off to a person (a request for a human, a conversation a person holds) is
    # not a decline: answered false, declineReason null.
    confidence: Annotated[float, Meta(ge=0, le=1)] = 0.0
    decline_reason: Literal["no_knowledge", "not_relevant", "low_confidence"] | None = None


class TokenEvent(msgspec.Struct):
    """One `token` Server-Sent Event: a piece of the reply as it is generated."""

    text: str
