"""Analytics: the summary, topics (read, refresh) and knowledge gaps (list, resolve)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody, Parameter

from helpfaster_box.analytics import service
from helpfaster_box.analytics.schemas import GapOut, GapResolve, RefreshQueued, SummaryOut, TopicsOut
from helpfaster_box.chatbots import service as chatbots
from helpfaster_box.schemas import Page
from helpfaster_box.timerange import time_range
from helpfaster_box.web.deps import Auth, Config, Db, Knowledge, Topics
from helpfaster_box.web.params import Cursor, From, Limit, To

TimeZone = Annotated[
    str | None, Parameter(description="IANA time zone of the days and of times without an offset (UTC).")
]


class AnalyticsController(Controller):
    tags = ["Analytics"]  # noqa: RUF012 - declared by Litestar's Controller
    path = "/chatbots/{bot_id:str}/analytics"

    @get("")
    async def summary(
        self,
        auth: Auth,
        db: Db,
        settings: Config,
        bot_id: FromPath[str],
        start: From = None,
        end: To = None,
        timezone: TimeZone = None,
    ) -> SummaryOut:
        """Totals, rates, latency and a zero-filled `daily` series of a period (default: the
        last 30 days, today included). A date-only `from`/`to` is a day in `timezone`, and a
        date-only `to` includes that whole day. 400 when `from` is after `to`, the time zone
        is unknown, or the period is longer than `analytics_max_days`. Rates and percentiles
        are null when nothing was there to measure."""
        await chatbots.load(db, auth.org_id, bot_id)
        return await service.summary(db, settings, bot_id, start, end, timezone)

    @get("/topics")
    async def topics(
        self, auth: Auth, db: Db, bot_id: FromPath[str], start: From = None, end: To = None
    ) -> TopicsOut:
        """The latest stored topic clustering (computed by the topics job, or on request),
        each topic counted over its questions asked in [`from`, `to`] (default: all it holds).
        `answeredRate` is the share of its questions the bot answered: where knowledge is
        missing. Empty `data` when there are no questions (or before the first clustering,
        `computedAt` null)."""
        await chatbots.load(db, auth.org_id, bot_id)
        a, b = time_range(start, end)
        return await service.topics(db, bot_id, a, b)

    @post("/topics/refresh", status_code=202)
    async def refresh_topics(
        self, auth: Auth, db: Db, topics: Topics, bot_id: FromPath[str]
    ) -> RefreshQueued:
        """Recompute this chatbot's topics now, in the background; `GET .../topics` shows the
        result (a new `computedAt`) when it is done, normally within seconds."""
        await chatbots.load(db, auth.org_id, bot_id)
        service.queue_refresh(topics, bot_id)
        return RefreshQueued(status="queued", chatbot_id=bot_id)

    @get("/gaps")
    async def gaps(
        self,
        auth: Auth,
        db: Db,
        bot_id: FromPath[str],
        limit: Limit = 20,
        cursor: Cursor = None,
        start: From = None,
        end: To = None,
    ) -> Page[GapOut]:
        """Questions the bot declined, got a thumbs-down on, or that ended in an escalation,
        grouped when nearly identical, most frequent first: each with its count, last time
        asked, example conversations and, when a person answered one, that answer."""
        await chatbots.load(db, auth.org_id, bot_id)
        a, b = time_range(start, end)
        return await service.list_gaps(db, auth.org_id, bot_id, limit=limit, cursor=cursor, start=a, end=b)

    @post("/gaps/{gap_id:str}/resolve", status_code=200)
    async def resolve_gap(
        self,
        auth: Auth,
        db: Db,
        settings: Config,
        knowledge: Knowledge,
        bot_id: FromPath[str],
        gap_id: FromPath[str],
        data: JSONBody[GapResolve | None] = None,
    ) -> GapOut:
        """Turn the gap into knowledge: a Q&A source of its question and `answer` (default:
        the person's reply shown on the gap; 400 when there is none) is added and queued for
        ingestion (`sourceId`), and the gap is resolved. Once the source is `ready`, the
        question is answered from it. 409 when the gap already is resolved."""
        await chatbots.load(db, auth.org_id, bot_id)
        answer = data.answer if data else None
        return await service.resolve_gap(db, settings, knowledge, auth.org_id, bot_id, gap_id, answer)
