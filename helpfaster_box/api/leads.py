"""Leads (list, CSV export, one with its history) and manual escalation."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import Parameter
from litestar.response import Response, Stream
from msgspec import Meta

from .. import leads as leads_q
from ..errors import ApiError, not_found
from ..store import conversations as conv_q
from ..store.db import Database
from ..store.ids import iso
from ..webhooks import outbox
from .auth import AuthContext
from .chatbots import load_chatbot
from .common import Cursor, Limit, make_page
from .conversations import conversation_out, time_range

CSV_COLUMNS = ("id", "name", "email", "phone", "company", "createdAt", "updatedAt")


def lead_out(lead: dict[str, Any], conversation_ids: list[str]) -> dict[str, Any]:
    return {
        "id": lead["id"], "chatbotId": lead["chatbot_id"], "name": lead["name"], "email": lead["email"],
        "phone": lead["phone"], "company": lead["company"], "conversationIds": conversation_ids,
        "createdAt": iso(lead["created_at"]), "updatedAt": iso(lead["updated_at"]),
    }


class EscalateRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(min_length=1, max_length=500)] | None = None


def _csv_cell(value: Any) -> Any:
    """Visitors type these fields: a leading = + - @ would run as a spreadsheet formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_line(values: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if v is None else v for v in values])
    return buf.getvalue()


def _csv_lines(rows: list[dict[str, Any]]) -> Iterator[str]:
    yield _csv_line(list(CSV_COLUMNS))
    for lead in rows:
        out = lead_out(lead, [])
        # Phones are normalized digits ("+47..."): safe, and must keep their "+".
        yield _csv_line([out[c] if c == "phone" else _csv_cell(out[c]) for c in CSV_COLUMNS])


class LeadsController(Controller):
    tags = ["Leads"]  # noqa: RUF012 - declared by Litestar's Controller

    @get("/chatbots/{bot_id:str}/leads")
    async def list_leads(
        self, auth: AuthContext, db: Database, bot_id: str, limit: Limit = 20, cursor: Cursor = None,
        start: Annotated[str | None, Parameter(query="from", description="ISO 8601, inclusive.")] = None,
        end: Annotated[str | None, Parameter(query="to", description="ISO 8601, inclusive.")] = None,
        format: Annotated[Literal["json", "csv"], Parameter(description="csv streams every lead.")] = "json",
    ) -> Any:
        await load_chatbot(db, auth, bot_id)
        a, b = time_range(start, end)
        if format == "csv":
            rows = await db.aread(leads_q.all_leads, bot_id, a, b)
            return Response("".join(_csv_lines(rows)), media_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="leads-{bot_id}.csv"'})

        def load(cur: Any) -> tuple[list[dict[str, Any]], str | None]:
            rows, nxt = leads_q.list_leads(cur, bot_id, limit=limit, cursor=cursor, start=a, end=b)
            return [lead_out(r, leads_q.lead_conversation_ids(cur, r["id"])) for r in rows], nxt

        items, nxt = await db.aread(load)
        return make_page(items, nxt)

    @get("/chatbots/{bot_id:str}/leads/export", media_type="text/csv")
    async def export_leads(
        self, auth: AuthContext, db: Database, bot_id: str,
        start: Annotated[str | None, Parameter(query="from", description="ISO 8601, inclusive.")] = None,
        end: Annotated[str | None, Parameter(query="to", description="ISO 8601, inclusive.")] = None,
    ) -> Stream:
        """Every lead of the chatbot as CSV, streamed."""
        await load_chatbot(db, auth, bot_id)
        a, b = time_range(start, end)
        rows = await db.aread(leads_q.all_leads, bot_id, a, b)

        async def lines() -> AsyncIterator[str]:
            for line in _csv_lines(rows):
                yield line

        return Stream(lines(), headers={"Content-Disposition": f'attachment; filename="leads-{bot_id}.csv"'})

    @get("/leads/{lead_id:str}")
    async def get_lead(self, auth: AuthContext, db: Database, lead_id: str) -> dict[str, Any]:
        def load(cur: Any) -> dict[str, Any] | None:
            lead = leads_q.get_lead(cur, auth.org_id, lead_id)
            if lead is None:
                return None
            ids = leads_q.lead_conversation_ids(cur, lead_id)
            out = lead_out(lead, ids)
            convs = [(cid, conv_q.get_conversation(cur, auth.org_id, cid)) for cid in ids]
            out["conversations"] = [
                conversation_out(conv, conv_q.messages_of(cur, cid)) for cid, conv in convs if conv is not None
            ]
            return out

        lead = await db.aread(load)
        if lead is None:
            raise not_found("Lead")
        return lead

    @post("/conversations/{conv_id:str}/escalate", status_code=200, tags=["Conversations"])
    async def escalate_conversation(
        self, request: Request, auth: AuthContext, db: Database, conv_id: str, data: EscalateRequest | None = None
    ) -> Response[dict[str, Any]]:
        """Hand the conversation to a human; happens once per conversation."""
        reason = (data.reason if data else None) or "escalated by an operator"

        def apply(cur: Any) -> dict[str, Any] | str:
            conv = conv_q.get_conversation(cur, auth.org_id, conv_id)
            if conv is None:
                return "missing"
            if not conv_q.escalate(cur, conv_id, reason):
                return "already"
            out = conversation_out(conv_q.must_get(cur, auth.org_id, conv_id), None)
            outbox.emit(cur, org_id=auth.org_id, chatbot_id=conv["chatbot_id"],
                        type="conversation.escalated", data=out)
            return out

        result = await db.awrite(apply)
        if result == "missing":
            raise not_found("Conversation")
        if result == "already":
            raise ApiError(409, "This conversation has already been escalated.")
        assert isinstance(result, dict)
        return Response(result)
