"""Analytics SQL: the summary (one statement) and the stored topic clusterings.

The summary is one DuckDB statement over the stored rows: each table is scanned once,
grouped by `GROUPING SETS ((day), ())` so the day rows and the period's totals (with
their distinct counts and percentiles) come out of the same pass. The bench
(tests/bench/bench_analytics.py) times the endpoint against this statement run bare.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb
import numpy as np

from helpfaster_box.analytics.period import Period
from helpfaster_box.store.db import rows_as_dicts
from helpfaster_box.store.ids import utcnow

# Unique visitors: a conversation's visitor is its lead when one was captured (leads are
# already deduplicated by email, then phone), else the email given with the first
# message, else the conversation itself (an anonymous visitor counts once per conversation).
#
# Shape, from timing variants on the bench's 1M messages (30 days = 500k rows, 2 cores):
# counts as sum(bool::INT) per day (56 ms; count(*) FILTER was 119 ms), percentiles over
# the bot replies in their own scan (the day split would only repeat them), GROUPING SETS
# only where a distinct count needs the period's own total. The count totals are the sums
# of the day rows (every row of the period is on one of its days); see summary_rows.
_SUMMARY = """
WITH md AS (
    SELECT {m_day} AS day,
        sum((role = 'user')::INT) AS visitor,
        sum((role = 'assistant')::INT) AS bot,
        sum((role = 'agent')::INT) AS agent,
        sum((role = 'assistant' AND answered)::INT) AS answered,
        sum((feedback_rating = 'up')::INT) AS up,
        sum((feedback_rating = 'down')::INT) AS down
    FROM messages WHERE chatbot_id = $bot AND created_at BETWEEN $start AND $end
    GROUP BY ALL
), mq AS (
    SELECT 'total' AS k, quantile_cont(latency_ms, 0.5) AS p50, quantile_cont(latency_ms, 0.95) AS p95,
        quantile_cont(ttft_ms, 0.5) AS ttft50
    FROM messages WHERE chatbot_id = $bot AND role = 'assistant' AND created_at BETWEEN $start AND $end
), cd AS (
    SELECT CASE WHEN grouping(day) = 1 THEN 'total' ELSE day::VARCHAR END AS k,
        count(*) AS conversations, count(DISTINCT who) AS visitors, sum(message_count) AS conv_messages
    FROM (
        SELECT {c_day} AS day, message_count, coalesce(lead_id, lower(visitor->>'email'), id) AS who
        FROM conversations WHERE chatbot_id = $bot AND created_at BETWEEN $start AND $end
    ) GROUP BY GROUPING SETS ((day), ())
), ed AS (
    SELECT {e_day} AS day, count(*) AS escalations FROM conversations
    WHERE chatbot_id = $bot AND escalated_at BETWEEN $start AND $end GROUP BY ALL
), ld AS (
    SELECT {l_day} AS day, count(*) AS leads FROM leads
    WHERE chatbot_id = $bot AND created_at BETWEEN $start AND $end GROUP BY ALL
), keys AS (
    SELECT day::VARCHAR AS k FROM md UNION SELECT k FROM cd UNION SELECT day::VARCHAR FROM ed
    UNION SELECT day::VARCHAR FROM ld UNION SELECT 'total'
)
SELECT keys.k, visitor, bot, agent, answered, up, down, p50, p95, ttft50,
    conversations, visitors, conv_messages, escalations, leads
FROM keys
LEFT JOIN md ON md.day::VARCHAR = keys.k
LEFT JOIN mq ON mq.k = keys.k
LEFT JOIN cd ON cd.k = keys.k
LEFT JOIN ed ON ed.day::VARCHAR = keys.k
LEFT JOIN ld ON ld.day::VARCHAR = keys.k
"""

SUMMED = ("visitor", "bot", "agent", "answered", "up", "down", "escalations", "leads")


def summary_sql(bot_id: str, period: Period) -> tuple[str, dict[str, Any]]:
    """The statement and its parameters (the bench runs exactly this)."""
    params: dict[str, Any] = {"bot": bot_id, "start": period.start, "end": period.end}
    sql = _SUMMARY.format(
        m_day=period.day_sql("created_at", params),
        c_day=period.day_sql("created_at", params),
        e_day=period.day_sql("escalated_at", params),
        l_day=period.day_sql("created_at", params),
    )
    return sql, params


def summary_rows(cur: duckdb.DuckDBPyConnection, bot_id: str, period: Period) -> dict[str, dict[str, Any]]:
    """{"total" | "YYYY-MM-DD": row}; days without any row are absent. The total row gets
    the sums of the day rows' counts."""
    sql, params = summary_sql(bot_id, period)
    rows = {r["k"]: r for r in rows_as_dicts(cur.execute(sql, params))}
    total = rows["total"]
    for col in SUMMED:
        total[col] = sum(int(r[col] or 0) for k, r in rows.items() if k != "total")
    return rows


# -- questions and their vectors ----------------------------------------------------------


def questions(
    cur: duckdb.DuckDBPyConnection, bot_id: str, start: datetime, end: datetime, limit: int
) -> list[dict[str, Any]]:
    """Visitor messages of the period with their vectors (NULL when never embedded), newest first."""
    return rows_as_dicts(
        cur.execute(
            "SELECT m.id, m.content, v.embedding FROM messages m "
            "LEFT JOIN message_vectors v ON v.message_id = m.id "
            "WHERE m.chatbot_id = $bot AND m.role = 'user' AND m.created_at BETWEEN $start AND $end "
            "ORDER BY m.created_at DESC, m.id DESC LIMIT $limit",
            {"bot": bot_id, "start": start, "end": end, "limit": limit},
        )
    )


def save_vectors(cur: duckdb.DuckDBPyConnection, bot_id: str, ids: list[str], vectors: np.ndarray) -> None:
    """Vectors of questions stored before vectors were (backfilled once, then kept)."""
    if ids:
        cur.execute(
            "INSERT INTO message_vectors (message_id, chatbot_id, embedding) "
            "SELECT unnest($ids), $bot, unnest($vecs) ON CONFLICT DO NOTHING",
            {"ids": ids, "bot": bot_id, "vecs": vectors.astype(np.float32).tolist()},
        )


def active_chatbots(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, int, datetime | None]]:
    """(chatbot id, visitor messages, last computed) for every chatbot with questions."""
    rows = cur.execute(
        "SELECT m.chatbot_id, count(*), any_value(r.computed_at) FROM messages m "
        "LEFT JOIN topic_runs r ON r.chatbot_id = m.chatbot_id "
        "WHERE m.role = 'user' AND (r.computed_at IS NULL OR m.created_at > r.computed_at) "
        "GROUP BY m.chatbot_id"
    ).fetchall()
    return [(r[0], int(r[1]), r[2]) for r in rows]


# -- stored topics ------------------------------------------------------------------------


def previous_topics(cur: duckdb.DuckDBPyConnection, bot_id: str) -> list[dict[str, Any]]:
    return rows_as_dicts(
        cur.execute("SELECT id, centroid, created_at FROM topics WHERE chatbot_id = ?", [bot_id])
    )


def replace_topics(
    cur: duckdb.DuckDBPyConnection,
    bot_id: str,
    period: tuple[datetime, datetime],
    count: int,
    topics: list[dict[str, Any]],
    members: tuple[list[str], list[str]],
) -> None:
    """The new clustering replaces the old one in one transaction (readers see one or the other)."""
    for table in ("topic_runs", "topics", "topic_members"):
        cur.execute(f"DELETE FROM {table} WHERE chatbot_id = ?", [bot_id])
    cur.execute(
        "INSERT INTO topic_runs VALUES (?, ?, ?, ?, ?)", [bot_id, utcnow(), count, period[0], period[1]]
    )
    for t in topics:
        cur.execute(
            "INSERT INTO topics (id, chatbot_id, label, keywords, examples, centroid, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                t["id"],
                bot_id,
                t["label"],
                json.dumps(t["keywords"]),
                json.dumps(t["examples"]),
                t["centroid"],
                t["created_at"],
            ],
        )
    if members[0]:
        cur.execute(
            "INSERT INTO topic_members (message_id, chatbot_id, topic_id) "
            "SELECT unnest($ids), $bot, unnest($topics)",
            {"ids": members[0], "bot": bot_id, "topics": members[1]},
        )


def computed_at(cur: duckdb.DuckDBPyConnection, bot_id: str) -> datetime | None:
    row = cur.execute("SELECT computed_at FROM topic_runs WHERE chatbot_id = ?", [bot_id]).fetchone()
    return row[0] if row else None


def topic_counts(
    cur: duckdb.DuckDBPyConnection, bot_id: str, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """Each stored topic counted over the questions of [start, end] it holds, biggest first.
    A question's bot reply is the next message (seq + 1) when it is the bot's."""
    return rows_as_dicts(
        cur.execute(
            """
            SELECT t.id, t.label, t.keywords, t.examples,
                count(*) AS messages, count(DISTINCT q.conversation_id) AS conversations,
                count(r.id) AS replied, count(r.id) FILTER (WHERE r.answered) AS answered
            FROM topic_members tm
            JOIN topics t ON t.id = tm.topic_id AND t.chatbot_id = tm.chatbot_id
            JOIN messages q ON q.id = tm.message_id
            LEFT JOIN messages r ON r.conversation_id = q.conversation_id AND r.seq = q.seq + 1
                AND r.role = 'assistant'
            WHERE tm.chatbot_id = $bot
                AND ($start IS NULL OR q.created_at >= $start) AND ($end IS NULL OR q.created_at <= $end)
            GROUP BY ALL ORDER BY messages DESC, t.id
            """,
            {"bot": bot_id, "start": start, "end": end},
        )
    )
