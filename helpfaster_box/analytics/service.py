"""Analytics: the summary of a period, the stored topics, the knowledge gaps and the one
call that turns a gap and its answer into a Q&A source. No HTTP here.

Definitions (they are the API's; README "Analytics" repeats them):
- conversations, unique visitors and average messages per conversation: conversations
  created in the period; a visitor is the conversation's lead if one was captured, else
  the email given with its first message, else the conversation itself.
- messages: stored in the period, by role: visitor (`user`), bot (`assistant`), agent.
- answered rate: bot replies with `answered` true / bot replies; feedback, satisfaction
  (up / (up + down)) and latency percentiles: over the bot replies of the period.
- leads: created in the period; escalations: conversations escalated in the period.
- A rate or percentile without a denominator (no replies, no feedback) is null; counts
  of an empty period are 0.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from helpfaster_box.analytics import gaps as gaps_q
from helpfaster_box.analytics import queries as q
from helpfaster_box.analytics.jobs import TopicRefresher
from helpfaster_box.analytics.period import resolve_period
from helpfaster_box.analytics.schemas import (
    DayOut,
    FeedbackCounts,
    GapOut,
    LatencyOut,
    MessageCounts,
    SummaryOut,
    TopicOut,
    TopicsOut,
    TtftOut,
)
from helpfaster_box.errors import Conflict, Invalid, NotFound, Unavailable
from helpfaster_box.knowledge import service as knowledge_service
from helpfaster_box.knowledge.ingestion import KnowledgeService
from helpfaster_box.knowledge.schemas import QASource
from helpfaster_box.schemas import Page, make_page
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import Database
from helpfaster_box.store.ids import iso


def _int(v: Any) -> int:
    return int(v or 0)


def _ms(v: Any) -> int | None:
    return None if v is None else round(float(v))


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _messages(r: dict[str, Any]) -> MessageCounts:
    return MessageCounts(visitor=_int(r.get("visitor")), bot=_int(r.get("bot")), agent=_int(r.get("agent")))


def _feedback(r: dict[str, Any]) -> FeedbackCounts:
    return FeedbackCounts(up=_int(r.get("up")), down=_int(r.get("down")))


def _day(day: str, r: dict[str, Any]) -> DayOut:
    return DayOut(
        date=day,
        conversations=_int(r.get("conversations")),
        messages=_messages(r),
        unique_visitors=_int(r.get("visitors")),
        leads=_int(r.get("leads")),
        escalations=_int(r.get("escalations")),
        answered=_int(r.get("answered")),
        feedback=_feedback(r),
    )


async def summary(
    db: Database, settings: Settings, bot_id: str, start: str | None, end: str | None, tz: str | None
) -> SummaryOut:
    period = resolve_period(start, end, tz, settings.analytics_max_days)
    rows = await db.aread(q.summary_rows, bot_id, period)
    t = rows.get("total", {})
    fb = _feedback(t)
    conversations = _int(t.get("conversations"))
    avg = _int(t.get("conv_messages")) / conversations if conversations else None
    return SummaryOut(
        from_=iso(period.start),
        to=iso(period.end),
        timezone=period.tz,
        conversations=conversations,
        messages=_messages(t),
        unique_visitors=_int(t.get("visitors")),
        leads=_int(t.get("leads")),
        escalations=_int(t.get("escalations")),
        answered_rate=_rate(_int(t.get("answered")), _int(t.get("bot"))),
        feedback=fb,
        satisfaction_rate=_rate(fb.up, fb.up + fb.down),
        latency_ms=LatencyOut(p50=_ms(t.get("p50")), p95=_ms(t.get("p95"))),
        ttft_ms=TtftOut(p50=_ms(t.get("ttft50"))),
        avg_messages_per_conversation=None if avg is None else round(avg, 2),
        daily=[_day(d.isoformat(), rows.get(d.isoformat(), {})) for d in period.days],
    )


# -- topics -------------------------------------------------------------------------------


async def topics(db: Database, bot_id: str, start: datetime | None, end: datetime | None) -> TopicsOut:
    def read(cur: Any) -> tuple[datetime | None, list[dict[str, Any]]]:
        return q.computed_at(cur, bot_id), q.topic_counts(cur, bot_id, start, end)

    computed, rows = await db.aread(read)
    total = sum(r["messages"] for r in rows)
    return TopicsOut(
        computed_at=iso(computed),
        data=[
            TopicOut(
                id=r["id"],
                label=r["label"],
                keywords=json.loads(r["keywords"]),
                conversations=r["conversations"],
                messages=r["messages"],
                share=round(r["messages"] / total, 4),
                answered_rate=_rate(r["answered"], r["replied"]),
                examples=json.loads(r["examples"]),
            )
            for r in rows
        ],
    )


def queue_refresh(refresher: TopicRefresher | None, bot_id: str) -> None:
    if refresher is None:
        raise Unavailable("Topic refreshes are not running.")
    refresher.queue(bot_id)


# -- gaps ---------------------------------------------------------------------------------


def gap_out(r: dict[str, Any]) -> GapOut:
    return GapOut(
        id=r["id"],
        question=r["question"],
        count=r["n"],
        last_seen_at=iso(r["last_seen"]),
        reasons=r["reasons"],
        conversation_ids=r["conversations"],
        answer=r["answer"] or r["resolved_answer"],
        answer_author=r["author"] if r["answer"] else None,
        status=r["status"],
        source_id=r["source_id"],
        resolved_at=iso(r["resolved_at"]),
    )


def _cursor(r: GapOut) -> str:
    raw = json.dumps([r.count, r.last_seen_at, r.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[int, str, str]:
    try:
        n, seen, gid = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return int(n), str(seen), str(gid)
    except (ValueError, TypeError, binascii.Error):
        raise Invalid("cursor is not a cursor this API returned.", field="cursor") from None


async def list_gaps(
    db: Database,
    org_id: str,
    bot_id: str,
    *,
    limit: int,
    cursor: str | None,
    start: datetime | None,
    end: datetime | None,
) -> Page[GapOut]:
    """Most frequent first (then most recent); the cursor is the (count, lastSeenAt, id) of the
    last gap served, so a page walk never repeats a gap whose count did not change."""
    await db.awrite(gaps_q.sync, org_id, bot_id)
    items = [gap_out(r) for r in await db.aread(gaps_q.list_gaps, bot_id, start, end)]
    if cursor:
        key = _after(cursor)
        items = [g for g in items if (g.count, g.last_seen_at, g.id) < key]
    more = len(items) > limit
    items = items[:limit]
    return make_page(items, _cursor(items[-1]) if more else None)


async def resolve_gap(
    db: Database,
    settings: Settings,
    knowledge: KnowledgeService | None,
    org_id: str,
    bot_id: str,
    gap_id: str,
    answer: str | None,
) -> GapOut:
    """The gap's question and its answer (given, else the person's) become a Q&A source,
    queued for ingestion; the gap is marked resolved."""
    await db.awrite(gaps_q.sync, org_id, bot_id)
    rows = await db.aread(gaps_q.list_gaps, bot_id, None, None, gap_id)
    if not rows:
        raise NotFound.of("Gap")
    gap = gap_out(rows[0])
    if gap.status == "resolved":
        raise Conflict("This gap is already resolved.")
    text = (answer or rows[0]["answer"] or "").strip()  # given, else the person's reply
    if not text:
        raise Invalid("Nobody has answered this question yet: give the answer.", field="answer")
    engine = knowledge_service.running(knowledge)
    fields, data = knowledge_service.from_json(QASource(question=gap.question[:2000], answer=text), settings)
    source, _ = await knowledge_service.add(db, engine, org_id, bot_id, fields, data)
    await db.awrite(gaps_q.mark_resolved, gap_id, text, source.id)
    return gap_out((await db.aread(gaps_q.list_gaps, bot_id, None, None, gap_id))[0])
