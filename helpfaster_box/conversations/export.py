"""Conversation export: every conversation of a chatbot with its messages, streamed.

Constant memory whatever the history: an async generator reads EXPORT_BATCH
conversations (and their messages, one more query) at a time in a worker thread,
yields their lines, and asks for the next batch after the last (created_at, id) it
served — oldest first, so conversations started during a long export come at the end
instead of shifting the pages. JSON Lines carries one conversation per line, as
`GET /v1/conversations/{id}` returns it; CSV has one row per message, every text cell
neutralized against spreadsheet formulas (`csvcells.csv_cell`, as the leads export).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import msgspec

from helpfaster_box.conversations import queries as conv_q
from helpfaster_box.conversations.schemas import ConversationOut, conversation_out
from helpfaster_box.csvcells import csv_cell, csv_line
from helpfaster_box.store.db import Database

EXPORT_BATCH = 100  # conversations per DB round trip: ~2-3 ms each here, a few hundred KB at most
CSV_COLUMNS = (
    "conversationId",
    "conversationStatus",
    "conversationCreatedAt",
    "escalatedAt",
    "messageId",
    "role",
    "content",
    "createdAt",
    "answered",
    "answerMode",
    "latencyMs",
    "ttftMs",
    "sources",
    "feedbackRating",
    "feedbackComment",
)


def _csv_rows(conv: ConversationOut) -> list[str]:
    lines = []
    for m in conv.messages or []:
        fb = m.feedback if isinstance(m.feedback, msgspec.Struct) else None
        sources = m.sources if isinstance(m.sources, list) else None
        cells = [
            conv.id,
            conv.status,
            conv.created_at,
            conv.escalated_at,
            m.id,
            m.role,
            m.content,
            m.created_at,
            m.answered if isinstance(m.answered, bool) else None,
            m.answer_mode or None,
            m.latency_ms or None,
            m.ttft_ms or None,
            json.dumps([{"title": s.get("title"), "url": s.get("url")} for s in sources])
            if sources
            else None,
            fb.rating if fb else None,
            fb.comment if fb else None,
        ]
        lines.append(csv_line([csv_cell(c) for c in cells]))
    return lines


async def export_lines(
    db: Database, bot_id: str, fmt: str, start: datetime | None, end: datetime | None
) -> AsyncIterator[str]:
    """The export's lines, batch by batch (jsonl: a conversation a line; csv: a message a row)."""
    if fmt == "csv":
        yield csv_line(list(CSV_COLUMNS))
    after: tuple[Any, str] | None = None
    while True:
        batch = await db.aread(conv_q.export_batch, bot_id, start, end, after, EXPORT_BATCH)
        for conv, messages in batch:
            out = conversation_out(conv, messages)
            if fmt == "csv":
                for line in _csv_rows(out):
                    yield line
            else:
                yield msgspec.json.encode(out).decode() + "\n"
        if len(batch) < EXPORT_BATCH:
            return
        last = batch[-1][0]
        after = (last["created_at"], last["id"])
