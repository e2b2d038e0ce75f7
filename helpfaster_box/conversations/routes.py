"""Conversations (list, export, read with all messages, escalate, a person's reply,
resolve or hand back) and message feedback."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody, Parameter
from litestar.response import Stream

from helpfaster_box.chatbots import service as chatbots
from helpfaster_box.conversations import service
from helpfaster_box.conversations.export import export_lines
from helpfaster_box.conversations.schemas import (
    AgentReply,
    ConversationOut,
    EscalateRequest,
    Feedback,
    MessageOut,
    ResolveRequest,
)
from helpfaster_box.schemas import Page
from helpfaster_box.timerange import time_range
from helpfaster_box.web.deps import Auth, Db
from helpfaster_box.web.params import Cursor, From, Limit, To


class ConversationsController(Controller):
    tags = ["Conversations"]  # noqa: RUF012 - declared by Litestar's Controller

    @get("/chatbots/{bot_id:str}/conversations")
    async def list_conversations(
        self,
        auth: Auth,
        db: Db,
        bot_id: FromPath[str],
        limit: Limit = 20,
        cursor: Cursor = None,
        start: From = None,
        end: To = None,
        status: Annotated[
            Literal["open", "escalated", "resolved"] | None, Parameter(description="Only this status.")
        ] = None,
    ) -> Page[ConversationOut]:
        await chatbots.load(db, auth.org_id, bot_id)
        a, b = time_range(start, end)
        return await service.list_page(db, bot_id, limit=limit, cursor=cursor, start=a, end=b, status=status)

    @get("/chatbots/{bot_id:str}/conversations/export", opt={"media": ("application/x-ndjson", "text/csv")})
    async def export_conversations(
        self,
        auth: Auth,
        db: Db,
        bot_id: FromPath[str],
        start: From = None,
        end: To = None,
        format: Annotated[
            Literal["jsonl", "csv"],
            Parameter(description="jsonl: one conversation a line; csv: one message a row."),
        ] = "jsonl",
    ) -> Stream:
        """Every conversation of the chatbot with its messages (sources, feedback, latency),
        oldest first, streamed in constant memory."""
        await chatbots.load(db, auth.org_id, bot_id)
        a, b = time_range(start, end)
        media = "text/csv" if format == "csv" else "application/x-ndjson"
        disposition = f'attachment; filename="conversations-{bot_id}.{format}"'
        return Stream(
            export_lines(db, bot_id, format, a, b),
            media_type=media,
            headers={"Content-Disposition": disposition},
        )

    @get("/conversations/{conv_id:str}")
    async def get_conversation(self, auth: Auth, db: Db, conv_id: FromPath[str]) -> ConversationOut:
        return await service.get(db, auth.org_id, conv_id, auth.publishable_key_id)

    @post("/conversations/{conv_id:str}/escalate", status_code=200, opt={"errors": (409,)})
    async def escalate_conversation(
        self, auth: Auth, db: Db, conv_id: FromPath[str], data: JSONBody[EscalateRequest | None] = None
    ) -> ConversationOut:
        """Hand the conversation to a human; happens once per conversation."""
        reason = (data.reason if data else None) or "escalated by an operator"
        return await service.escalate(db, auth.org_id, conv_id, reason, auth.publishable_key_id)

    @post("/conversations/{conv_id:str}/messages", status_code=201)
    async def add_agent_message(
        self, auth: Auth, db: Db, conv_id: FromPath[str], data: JSONBody[AgentReply]
    ) -> MessageOut:
        """A person's reply (role `agent`, with its `author`), stored after the messages so far
        and sent as a `message.sent` webhook like the bot's replies. It changes no status: to
        keep the bot quiet, escalate the conversation (the bot does not answer an escalated
        one) and resolve or hand it back when done."""
        return await service.add_agent_message(db, auth.org_id, conv_id, data.content, data.author)

    @post("/conversations/{conv_id:str}/resolve", status_code=200)
    async def resolve_conversation(
        self, auth: Auth, db: Db, conv_id: FromPath[str], data: JSONBody[ResolveRequest | None] = None
    ) -> ConversationOut:
        """Close the conversation (status `resolved`), or with `"handBack": true` return it to
        the bot (status `open`, its unanswered streak reset). 409 when it already is so. A
        visitor writing into a resolved conversation reopens it for the bot."""
        return await service.resolve(db, auth.org_id, conv_id, bool(data and data.hand_back))

    @post("/messages/{msg_id:str}/feedback", status_code=200)
    async def add_feedback(
        self, auth: Auth, db: Db, msg_id: FromPath[str], data: JSONBody[Feedback]
    ) -> MessageOut:
        return await service.add_feedback(db, auth.org_id, msg_id, data.rating, data.comment)
