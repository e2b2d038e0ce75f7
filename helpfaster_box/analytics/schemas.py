"""Analytics response shapes: the summary, topics, knowledge gaps."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from helpfaster_box.schemas import Out, Struct


class MessageCounts(Out):
    visitor: int
    bot: int
    agent: int


class FeedbackCounts(Out):
    up: int
    down: int


class LatencyOut(Out):
    p50: int | None
    p95: int | None


class TtftOut(Out):
    p50: int | None


class DayOut(Out):
    """One local day of the period (zero-filled): the same counts as the totals."""

    date: str  # YYYY-MM-DD in the requested time zone
    conversations: int
    messages: MessageCounts
    unique_visitors: int
    leads: int
    escalations: int
    answered: int  # bot replies with answered true
    feedback: FeedbackCounts


class SummaryOut(Out):
    """Totals and rates of a period. Rates are null when they have no denominator."""

    from_: str = msgspec.field(name="from")
    to: str
    timezone: str
    conversations: int
    messages: MessageCounts
    unique_visitors: int
    leads: int
    escalations: int
    answered_rate: float | None
    feedback: FeedbackCounts
    satisfaction_rate: float | None
    latency_ms: LatencyOut
    ttft_ms: TtftOut
    avg_messages_per_conversation: float | None
    daily: list[DayOut]


class TopicOut(Out):
    id: str
    label: str
    keywords: list[str]
    conversations: int
    messages: int
    share: float
    answered_rate: float | None
    examples: list[str]


class TopicsOut(Out):
    """The latest stored clustering (`computedAt` null before the first), counted over the period."""

    computed_at: str | None
    data: list[TopicOut]


class RefreshQueued(Out):
    status: Literal["queued"]
    chatbot_id: str


GapReason = Literal["declined", "thumbs_down", "escalated"]


class GapOut(Out):
    id: str
    question: str
    count: int
    last_seen_at: str
    reasons: list[GapReason]
    conversation_ids: list[str]  # up to 5 examples, most recent first
    answer: str | None  # a person's reply to one of these questions, the latest
    answer_author: str | None
    status: Literal["open", "resolved"]
    source_id: str | None  # the Q&A source made from it
    resolved_at: str | None


class GapResolve(Struct):
    """`answer` defaults to the person's reply shown on the gap."""

    answer: Annotated[str, Meta(min_length=1, max_length=20_000)] | None = None
