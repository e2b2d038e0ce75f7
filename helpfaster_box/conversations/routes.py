"""Conversations (list, export, read with all messages, escalate) and message feedback."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.params import Parameter
from litestar.response import Stream

from helpfaster_box.chatbots import service as chatbots
from helpfaster_box.conversations import service
from helpfaster_box.conversations.export import export_lines
from helpfaster_box.conversations.schemas import (
    ConversationOut,
    EscalateRequest,
    Feedback,
    MessageOut,
)
from helpfaster_box.schemas import Page
from helpfaster_box.store.db import Database
from helpfaster_box.timerange import time_range
from helpfaster_box.web.auth import AuthContext
from helpfaster_box.web.params import Cursor, From, Limit, To


class ConversationsController(Controller):
    tags = ["Conversations"]  # noqa: RUF012 - declared by Litestar's Controller

    @get("/chatbots/{bot_id:str}/conversations")
    async def list_conversations(
        self,
        auth: AuthContext,
        db: Database,
        bot_id: str,
        limit: Limit = 20,
        cursor: Cursor = None,
        start: From = None,
        end: To = None,
        status: Annotated[
            Literal["open", "escalated"] | None, Parameter(description="Only this status.")
        ] = None,
    ) -> Page[ConversationOut]:
        await chatbots.load(db, auth.org_id, bot_id)
        a, b = time_range(start, end)
        return await service.list_page(db, bot_id, limit=limit, cursor=cursor, start=a, end=b, status=status)

    @get("/chatbots/{bot_id:str}/conversations/export")
    async def export_conversations(
        self,
        auth: AuthContext,
        db: Database,
        bot_id: str,
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
    async def get_conversation(self, auth: AuthContext, db: Database, conv_id: str) -> ConversationOut:
        return await service.get(db, auth.org_id, conv_id)

    @post("/conversations/{conv_id:str}/escalate", status_code=200)
    async def escalate_conversation(
        self, auth: AuthContext, db: Database, conv_id: str, data: EscalateRequest | None = None
    ) -> ConversationOut:
        """Hand the conversation to a human; happens once per conversation."""
        reason = (data.reason if data else None) or "escalated by an operator"
        return await service.escalate(db, auth.org_id, conv_id, reason)

    @post("/messages/{msg_id:str}/feedback", status_code=200)
    async def add_feedback(self, auth: AuthContext, db: Database, msg_id: str, data: Feedback) -> MessageOut:
        return await service.add_feedback(db, auth.org_id, msg_id, data.rating, data.comment)
