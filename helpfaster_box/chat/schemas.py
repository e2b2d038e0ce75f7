"""Chat request and reply shapes."""

from __future__ import annotations

from typing import Annotated, Any

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


class ChatReply(Out):
    """The answer to one chat turn (the body, or the `done` event when streaming)."""

    reply: str
    sources: list[SourceRef]
    conversation_id: str
    message_id: str
    escalated: bool
    answered: bool


class TokenEvent(msgspec.Struct):
    """One `token` Server-Sent Event: a piece of the reply as it is generated."""

    text: str
