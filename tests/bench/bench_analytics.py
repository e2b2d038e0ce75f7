"""Analytics at scale: the summary endpoint against its bare SQL, and topic clustering time.

Part A: a fresh data dir with 1,000,000 messages in 100,000 conversations (and 20,000
leads) of one chatbot over the last 60 days, bulk-loaded with `INSERT ... SELECT` from
`range()` (no row-by-row inserts). Then, in one process: p50 latency of
`GET /v1/chatbots/{id}/analytics` (30 days, timezone Europe/Oslo) through the real app
(Litestar TestClient: auth, rate limiter, DI, period parsing, serialization) against the
one statement it runs (analytics/queries.py `summary_sql`) executed bare on the app's own
DuckDB connection; alternating rounds. Target: ratio <= 1.5.

Part B: 10,000 visitor questions with real MiniLM embeddings (2,000 distinct generated
questions on 4 themes x phrasings x details x openers, each asked 5 times; embedding them
is timed separately), stored as the chat turn stores them, then the topics job's refresh
(read, k search by silhouette, k-means, c-TF-IDF, store) timed. Target: <= 30 s.

    .venv/bin/python tests/bench/bench_analytics.py [--rounds 5] [--requests 10] [--questions 10000]

Prints one JSON line; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from litestar.testing import TestClient
from support.questions import THEMES

from helpfaster_box.analytics import queries as analytics_q
from helpfaster_box.analytics.jobs import TopicRefresher
from helpfaster_box.analytics.period import resolve_period
from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.settings import Settings, load_settings
from helpfaster_box.store.db import open_database
from helpfaster_box.store.ids import utcnow
from helpfaster_box.web.app import create_app

TARGET_RATIO = 1.5
TARGET_TOPICS_S = 30.0
OPENERS = ["", "Hi, ", "Quick question: ", "Hello team, ", "Urgent: ", "Sorry to bother you, "]
CLOSERS = ["", " Thanks!", " Please advise.", " It is urgent.", " Any idea?"]


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


LOAD = [
    # conversations: 100k over 60 days; 20% with a lead, half with an email, 5% escalated
    """INSERT INTO conversations (id, org_id, chatbot_id, status, visitor, metadata, message_count,
        unanswered_streak, escalated_at, escalation_reason, created_at, updated_at, lead_id, lead_asked)
    SELECT 'conv_' || i, $org, $bot, CASE WHEN i % 20 = 0 THEN 'escalated' ELSE 'open' END,
        CASE WHEN i % 2 = 0 THEN json_object('email', 'visitor' || (i % 40000) || '@example.com') END,
        NULL, 10, 0,
        CASE WHEN i % 20 = 0 THEN $t0 + to_seconds(i * 51.84 + 150) END,
        CASE WHEN i % 20 = 0 THEN 'asked for a person' END,
        $t0 + to_seconds(i * 51.84), $t0 + to_seconds(i * 51.84 + 200),
        CASE WHEN i % 5 = 0 THEN 'lead_' || (i % 20000) END, false
    FROM range(100000) r(i)""",
    # messages: 10 per conversation, visitor / bot alternating, every 50th bot turn an agent
    """INSERT INTO messages (id, org_id, chatbot_id, conversation_id, seq, role, content, sources,
        answered, answer_mode, prompt_tokens, completion_tokens, latency_ms, ttft_ms, visitor, metadata,
        feedback_rating, feedback_comment, feedback_at, created_at, author)
    SELECT 'msg_' || j, $org, $bot, 'conv_' || (j // 10), j % 10 + 1,
        CASE WHEN j % 2 = 0 THEN 'user' WHEN j % 50 = 9 THEN 'agent' ELSE 'assistant' END,
        'message ' || j, NULL,
        CASE WHEN j % 2 = 1 AND j % 50 <> 9 THEN (hash(j) % 10) < 8 END, NULL, NULL, NULL,
        CASE WHEN j % 2 = 1 AND j % 50 <> 9 THEN 40 + hash(j) % 900 END,
        CASE WHEN j % 2 = 1 AND j % 50 <> 9 AND j % 3 = 0 THEN 20 + hash(j) % 300 END, NULL, NULL,
        CASE WHEN j % 2 = 1 AND j % 50 <> 9 THEN
            CASE WHEN hash(j) % 100 < 3 THEN 'up' WHEN hash(j) % 100 < 4 THEN 'down' END END,
        NULL, NULL, $t0 + to_seconds((j // 10) * 51.84 + (j % 10) * 20), NULL
    FROM range(1000000) r(j)""",
    """INSERT INTO leads (id, org_id, chatbot_id, name, email, phone, company, created_at, updated_at)
    SELECT 'lead_' || i, $org, $bot, NULL, 'lead' || i || '@example.com', NULL, NULL,
        $t0 + to_seconds(i * 259.2), $t0 + to_seconds(i * 259.2)
    FROM range(20000) r(i)""",
]


def build(settings: Settings) -> tuple[str, str, str]:
    """(key, chatbot with 1M messages, empty chatbot for the topics) made through the API,
    then the rows loaded in bulk."""
    key = bootstrap(settings)
    assert key
    h = {"x-api-key": key}
    with TestClient(create_app(settings)) as c:
        bots = [c.post("/v1/chatbots", headers=h, json={"name": n}).json()["id"] for n in ("big", "topics")]
        org = c.get("/v1/organization", headers=h).json()["id"]
    db = open_database(settings.db_path)
    t0 = time.perf_counter()
    start = utcnow().replace(microsecond=0) - timedelta(days=60)
    for sql in LOAD:
        db.write(lambda cur, sql=sql: cur.execute(sql, {"org": org, "bot": bots[0], "t0": start}))
    db.close()
    log(f"loaded 1M messages, 100k conversations, 20k leads in {time.perf_counter() - t0:.1f} s")
    return key, bots[0], bots[1]


def p50_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def bench_summary(c: TestClient, h: dict[str, str], bot: str, rounds: int, n: int) -> dict[str, Any]:
    settings = c.app.state.settings
    db = c.app.state.db
    params = {"timezone": "Europe/Oslo"}
    period = resolve_period(None, None, "Europe/Oslo", settings.analytics_max_days)
    sql, sql_params = analytics_q.summary_sql(bot, period)
    api: list[float] = []
    bare: list[float] = []
    first = c.get(f"/v1/chatbots/{bot}/analytics", headers=h, params=params)
    assert first.status_code == 200, first.text
    body = first.json()
    log(f"summary: {body['conversations']} conversations, {sum(body['messages'].values())} messages")
    db.cursor().execute(sql, sql_params).fetchall()  # warm
    for r in range(rounds):
        order = ("api", "bare") if r % 2 == 0 else ("bare", "api")
        for which in order:
            for _ in range(n):
                t = time.perf_counter()
                if which == "api":
                    resp = c.get(f"/v1/chatbots/{bot}/analytics", headers=h, params=params)
                    assert resp.status_code == 200
                    api.append(time.perf_counter() - t)
                else:
                    db.cursor().execute(sql, sql_params).fetchall()
                    bare.append(time.perf_counter() - t)
    ratio = statistics.median(api) / statistics.median(bare)
    log(f"summary p50: endpoint {p50_ms(api)} ms, bare SQL {p50_ms(bare)} ms, ratio {ratio:.3f}")
    return {
        "summary_p50_ms": p50_ms(api),
        "sql_p50_ms": p50_ms(bare),
        "summary_ratio": round(ratio, 3),
        "summary_ok": ratio <= TARGET_RATIO,
        "conversations_in_period": body["conversations"],
    }


def questions(n: int) -> tuple[list[str], int]:
    """n questions: n // 5 distinct ones, each asked 5 times."""
    distinct = []
    for templates, details in THEMES.values():
        for t in templates:
            for d in details:
                for o in OPENERS:
                    for cl in CLOSERS:
                        text = t.format(d=d)
                        distinct.append(o + (text[0].lower() + text[1:] if o else text) + cl)
    random.Random(5).shuffle(distinct)  # every theme in any prefix
    distinct = distinct[: max(1, n // 5)]
    return [distinct[i % len(distinct)] for i in range(n)], len(distinct)


def bench_topics(c: TestClient, bot: str, n: int) -> dict[str, Any]:
    import numpy as np

    embedder = c.app.state.embedder
    texts, distinct = questions(n)
    t = time.perf_counter()
    unique = list(dict.fromkeys(texts))
    vectors = embedder.embed(unique)
    embed_s = time.perf_counter() - t
    log(f"embedded {len(unique)} distinct questions in {embed_s:.1f} s")
    by_text = dict(zip(unique, vectors, strict=True))
    db = c.app.state.db
    org = db.read(lambda cur: cur.execute("SELECT org_id FROM chatbots WHERE id = ?", [bot]).fetchone()[0])
    now = utcnow()

    def load(cur: Any) -> None:
        cur.execute(
            "INSERT INTO messages (id, org_id, chatbot_id, conversation_id, seq, role, content, created_at) "
            "SELECT 'q_' || (i - 1), $org, $bot, 'qc_' || (i - 1), 1, 'user', t, $now "
            "FROM (SELECT unnest($texts) AS t, generate_subscripts($texts, 1) AS i)",
            {"org": org, "bot": bot, "texts": texts, "now": now},
        )
        cur.execute(
            "INSERT INTO message_vectors SELECT 'q_' || (r.i - 1), $bot, v FROM "
            "(SELECT unnest($vecs) AS v, generate_subscripts($vecs, 1) AS i) r",
            {"bot": bot, "vecs": np.asarray([by_text[x] for x in texts], dtype=np.float32).tolist()},
        )

    db.write(load)
    refresher: TopicRefresher = c.app.state.topics
    t = time.perf_counter()
    count = refresher.refresh(bot)
    topics_s = time.perf_counter() - t
    log(f"topics: {n} questions -> {count} topics in {topics_s:.1f} s")
    labels = [t["label"] for t in db.read(lambda cur: analytics_q.topic_counts(cur, bot, None, None))]
    log("topic labels:", labels)
    return {
        "topics_questions": n,
        "topics_distinct_questions": distinct,
        "topics_count": count,
        "topic_labels": labels,
        "topics_s": round(topics_s, 2),
        "topics_ok": topics_s <= TARGET_TOPICS_S,
        "embed_distinct_s": round(embed_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--questions", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            overrides={
                "data_dir": tmp,
                "load_models": False,
                "rate_limit_scale": 10_000_000,
                "topics_refresh_minutes": 0,
            },
            environ={},
        )
        key, big, small = build(settings)
        h = {"x-api-key": key}
        result: dict[str, Any] = {"bench": "analytics", "messages": 1_000_000, "conversations": 100_000}
        with TestClient(create_app(settings)) as c:
            result |= bench_summary(c, h, big, args.rounds, args.requests)
        models = load_settings(
            overrides={"data_dir": tmp, "rate_limit_scale": 10_000_000, "topics_refresh_minutes": 0},
            environ={},
        )
        with TestClient(create_app(models)) as c:
            result |= bench_topics(c, small, args.questions)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
