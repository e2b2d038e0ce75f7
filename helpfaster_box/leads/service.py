"""Leads: capture during a chat turn, ask for contact details once, list, read, export.

`capture` and `should_ask` run inside the chat turn's transaction; the reads and
the CSV export serve the routes. No HTTP here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import duckdb

from helpfaster_box.chatbots.schemas import LeadCapture
from helpfaster_box.conversations import queries as conv_q
from helpfaster_box.conversations.schemas import conversation_out
from helpfaster_box.csvcells import csv_cell, csv_line
from helpfaster_box.errors import NotFound
from helpfaster_box.leads import contacts
from helpfaster_box.leads import queries as leads_q
from helpfaster_box.leads.schemas import LeadOut, lead_out
from helpfaster_box.schemas import Page, make_page
from helpfaster_box.store.db import Database
from helpfaster_box.webhooks import outbox

CSV_COLUMNS = ("id", "name", "email", "phone", "company", "createdAt", "updatedAt")
ASK_MESSAGE = contacts.ASK_MESSAGE


def details_of(capture: LeadCapture, visitor: dict[str, Any] | None, message: str) -> dict[str, str]:
    """The contact details a turn carries, when the chatbot captures leads."""
    if not capture.enabled:
        return {}
    return {**contacts.clean_visitor(visitor), **contacts.detect_contacts(message)}


def capture(cur: duckdb.DuckDBPyConnection, conv: dict[str, Any], details: dict[str, str]) -> bool:
    """Create or update the conversation's lead; emit `lead.captured` for a new one.
    Returns whether the conversation has a lead from this turn."""
    lead, created = leads_q.upsert_lead(cur, conv["org_id"], conv["chatbot_id"], conv["id"], details)
    if lead is not None and created:
        outbox.emit(
            cur,
            org_id=conv["org_id"],
            chatbot_id=conv["chatbot_id"],
            type="lead.captured",
            data=lead_out(lead, [conv["id"]]),
        )
    return lead is not None


def should_ask(
    cur: duckdb.DuckDBPyConnection, capture: LeadCapture, conv_id: str, message: str, pending: int = 0
) -> bool:
    """Ask for contact details once per conversation: after N visitor messages or on intent.
    Marks the conversation as asked when it says yes. ``pending``: visitor messages this
    transaction adds but has not inserted yet (the chat turn inserts its question and
    reply at the end, in one statement)."""
    if not capture.enabled:
        return False
    state = leads_q.ask_state(cur, conv_id)
    if state is None or state[0] is not None or state[1]:
        return False
    user_messages = state[2] + pending
    after = capture.ask_after_messages
    ask = (capture.on_intent and contacts.shows_intent(message)) or (after > 0 and user_messages >= after)
    if ask:
        leads_q.mark_asked(cur, conv_id)
    return ask


async def list_page(
    db: Database, bot_id: str, *, limit: int, cursor: str | None, start: datetime | None, end: datetime | None
) -> Page[LeadOut]:
    def read(cur: Any) -> Page[LeadOut]:
        rows, nxt = leads_q.list_leads(cur, bot_id, limit=limit, cursor=cursor, start=start, end=end)
        return make_page([lead_out(r, leads_q.lead_conversation_ids(cur, r["id"])) for r in rows], nxt)

    return await db.aread(read)


async def get(db: Database, org_id: str, lead_id: str) -> LeadOut:
    def read(cur: Any) -> LeadOut | None:
        lead = leads_q.get_lead(cur, org_id, lead_id)
        if lead is None:
            return None
        ids = leads_q.lead_conversation_ids(cur, lead_id)
        out = lead_out(lead, ids)
        convs = [(cid, conv_q.get_conversation(cur, org_id, cid)) for cid in ids]
        out.conversations = [
            conversation_out(conv, conv_q.messages_of(cur, cid)) for cid, conv in convs if conv is not None
        ]
        return out

    lead = await db.aread(read)
    if lead is None:
        raise NotFound.of("Lead")
    return lead


def csv_lines(rows: list[dict[str, Any]]) -> Iterator[str]:
    yield csv_line(list(CSV_COLUMNS))
    for lead in rows:
        out = lead_out(lead, [])
        cells = [out.id, out.name, out.email, out.phone, out.company, out.created_at, out.updated_at]
        # Phones are normalized digits ("+47..."): safe, and must keep their "+".
        yield csv_line([v if c == "phone" else csv_cell(v) for c, v in zip(CSV_COLUMNS, cells, strict=True)])


async def export_csv(db: Database, bot_id: str, start: datetime | None, end: datetime | None) -> list[str]:
    rows = await db.aread(leads_q.all_leads, bot_id, start, end)
    return list(csv_lines(rows))
