"""POST /v1/chatbots/{id}/chat: one JSON reply, or Server-Sent Events with "stream": true."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import post
from litestar.params import FromPath, JSONBody
from litestar.response import Response, ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from helpfaster_box.chat.schemas import ChatInput, ChatReply, ChatRequest
from helpfaster_box.chatbots import service as chatbots
from helpfaster_box.errors import DomainError, Invalid, Unavailable
from helpfaster_box.web.deps import Auth, Chat, Config, Db
from helpfaster_box.web.errors import DEFAULT_MESSAGES, domain_body, error_body

log = logging.getLogger("helpfaster_box.chat")

METADATA_MAX_BYTES = 16_384


def chat_input(data: ChatRequest, max_chars: int) -> ChatInput:
    message = data.message.strip()
    if not message:
        raise Invalid("message must not be empty.", field="message")
    if len(message) > max_chars:
        raise Invalid(f"message is longer than {max_chars} characters.", field="message")
    if data.metadata is not None and len(json.dumps(data.metadata)) > METADATA_MAX_BYTES:
        raise Invalid("metadata is larger than 16 KiB.", field="metadata")
    visitor = {k: v for k, v in msgspec.structs.asdict(data.visitor).items() if v} if data.visitor else None
    return ChatInput(message, data.conversation_id, visitor or None, data.metadata)


def _sse(event: str, payload: Any) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=event, data=msgspec.json.encode(payload).decode())


async def _stream(
    first: tuple[str, Any], events: AsyncIterator[tuple[str, Any]]
) -> AsyncIterator[ServerSentEventMessage]:
    try:
        kind, payload = first
        while True:
            yield _sse("token", {"text": payload}) if kind == "token" else _sse("done", payload)
            if kind == "done":
                return
            kind, payload = await events.__anext__()
    except StopAsyncIteration:
        return
    except DomainError as exc:
        yield _sse("error", domain_body(exc))
    except Exception:
        log.exception("chat stream failed")
        yield _sse("error", error_body(500, DEFAULT_MESSAGES[500]))
    finally:
        await events.aclose()  # type: ignore[attr-defined]


@post("/chatbots/{bot_id:str}/chat", status_code=200, tags=["Chat"], opt={"errors": (503,), "sse": True})
async def chat(
    auth: Auth,
    db: Db,
    settings: Config,
    chat: Chat,
    bot_id: FromPath[str],
    data: JSONBody[ChatRequest],
) -> Response[ChatReply]:
    """Answer a visitor from the chatbot's knowledge, citing the sources used.

    With `"stream": true` the answer is Server-Sent Events: `token` events
    (`{"text"}`), then one `done` event holding this same reply body (or an
    `error` event holding the error body).

    In an escalated conversation (a person has it) the bot does not answer: the
    visitor's message is stored and sent as `message.sent`, and the reply is
    `{"reply": "", "sources": [], "escalated": true, "answered": false}` with
    `messageId` the visitor's message. The bot answers again once the conversation
    is handed back (`POST /v1/conversations/{id}/resolve` with `"handBack": true`);
    a message into a resolved conversation reopens it for the bot.
    """
    bot = await chatbots.load(db, auth.org_id, bot_id)
    req = chat_input(data, settings.max_message_chars)  # bad input is a 400 whatever is running
    if chat is None:
        raise Unavailable("Chat is unavailable: the models are not loaded.")
    req.publishable_key_id = auth.publishable_key_id
    events = chat.reply(auth.org_id, bot, req)
    try:
        # The first event comes before any byte is sent, so a full queue or an unknown
        # conversation is still an HTTP status, even when streaming.
        first = await events.__anext__()
    except BaseException:
        await events.aclose()  # type: ignore[attr-defined]
        raise
    if data.stream:
        return ServerSentEvent(_stream(first, events))  # type: ignore[return-value]
    kind, payload = first
    async for kind, payload in events:  # noqa: B007 - drain to the final event
        pass
    return Response(payload)
