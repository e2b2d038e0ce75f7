"""POST /v1/chatbots/{id}/chat: one JSON reply, or Server-Sent Events with "stream": true."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, post
from litestar.response import Response, ServerSentEvent
from litestar.response.sse import ServerSentEventMessage
from msgspec import Meta

from ..chat import ChatInput
from ..errors import ApiError, bad_request, error_body
from ..store.db import Database
from .auth import AuthContext
from .chatbots import load_chatbot

log = logging.getLogger("helpfaster_box.api.chat")


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


class SourceRef(msgspec.Struct):
    title: str | None
    url: str | None
    snippet: str


class ChatResponse(msgspec.Struct, rename="camel"):
    reply: str
    sources: list[SourceRef]
    conversation_id: str
    message_id: str
    escalated: bool
    answered: bool


def _chat_service(request: Request) -> Any:
    service = request.app.state.chat
    if service is None:
        raise ApiError(503, "Chat is unavailable: the models are not loaded.")
    return service


def _input(data: ChatRequest, max_chars: int) -> ChatInput:
    message = data.message.strip()
    if not message:
        raise bad_request("message must not be empty.", field="message")
    if len(message) > max_chars:
        raise bad_request(f"message is longer than {max_chars} characters.", field="message")
    if data.metadata is not None and len(json.dumps(data.metadata)) > 16_384:
        raise bad_request("metadata is larger than 16 KiB.", field="metadata")
    visitor = {k: v for k, v in msgspec.structs.asdict(data.visitor).items() if v} if data.visitor else None
    return ChatInput(message, data.conversation_id, visitor or None, data.metadata)


def _sse(event: str, payload: Any) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=event, data=json.dumps(payload, ensure_ascii=False))


async def _stream(first: tuple[str, Any], events: AsyncIterator[tuple[str, Any]]) -> AsyncIterator[ServerSentEventMessage]:
    try:
        kind, payload = first
        while True:
            yield _sse("token", {"text": payload}) if kind == "token" else _sse("done", payload)
            if kind == "done":
                return
            kind, payload = await events.__anext__()
    except StopAsyncIteration:
        return
    except ApiError as exc:
        yield _sse("error", error_body(exc.status, exc.message))
    except Exception:
        log.exception("chat stream failed")
        yield _sse("error", error_body(500, "Something went wrong on our side. It has been logged."))
    finally:
        await events.aclose()  # type: ignore[attr-defined]


@post("/chatbots/{bot_id:str}/chat", status_code=200, tags=["Chat"])
async def chat(request: Request, auth: AuthContext, db: Database, bot_id: str, data: ChatRequest) -> Response[Any]:
    """Answer a visitor from the chatbot's knowledge, citing the sources used."""
    bot = await load_chatbot(db, auth, bot_id)
    service = _chat_service(request)
    req = _input(data, request.app.state.settings.max_message_chars)
    events = service.reply(auth, bot, req)
    try:
        # The first event comes before any byte is sent, so a full queue or an unknown
        # conversation is still an HTTP status, even when streaming.
        first = await events.__anext__()
    except BaseException:
        await events.aclose()
        raise
    if data.stream:
        return ServerSentEvent(_stream(first, events))
    kind, payload = first
    async for kind, payload in events:
        pass
    return Response(payload)
