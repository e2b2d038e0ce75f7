"""Golden questions and evaluation runs (SQL)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

from helpfaster_box.store.db import row_as_dict, rows_as_dicts
from helpfaster_box.store.ids import new_id, utcnow
from helpfaster_box.store.pagination import page

# A list shows runs without their per-case results (up to 200 replies with sources each).
SUMMARY_COLUMNS = (
    "id, org_id, chatbot_id, status, triggered_by, source_ids, json_array_length(cases) AS case_count, "
    "completed, totals, regressions, previous_run_id, error, created_at, started_at, finished_at"
)


def save_golden(
    cur: duckdb.DuckDBPyConnection, org_id: str, bot_id: str, cases: list[dict[str, Any]]
) -> None:
    """Replace the chatbot's saved golden set."""
    cur.execute("DELETE FROM golden_questions WHERE chatbot_id = ?", [bot_id])
    now = utcnow()
    for position, case in enumerate(cases):
        cur.execute(
            "INSERT INTO golden_questions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                new_id("gq"),
                org_id,
                bot_id,
                position,
                case["question"],
                json.dumps(case["expected"]),
                case["mustDecline"],
                now,
            ],
        )


def golden_set(cur: duckdb.DuckDBPyConnection, bot_id: str) -> list[dict[str, Any]]:
    rows = rows_as_dicts(
        cur.execute(
            "SELECT question, expected, must_decline FROM golden_questions WHERE chatbot_id = ? "
            "ORDER BY position",
            [bot_id],
        )
    )
    return [
        {"question": r["question"], "expected": json.loads(r["expected"]), "mustDecline": r["must_decline"]}
        for r in rows
    ]


def create_run(
    cur: duckdb.DuckDBPyConnection,
    org_id: str,
    bot_id: str,
    cases: list[dict[str, Any]],
    *,
    triggered_by: str = "request",
    source_ids: list[str] | None = None,
    status: str = "queued",
    error: str | None = None,
) -> dict[str, Any]:
    now = utcnow()
    run_id = new_id("eval")
    cur.execute(
        "INSERT INTO evaluation_runs (id, org_id, chatbot_id, status, triggered_by, source_ids, cases, "
        "completed, error, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
        [
            run_id,
            org_id,
            bot_id,
            status,
            triggered_by,
            json.dumps(source_ids or []),
            json.dumps(cases),
            error,
            now,
            now if status == "failed" else None,
        ],
    )
    row = get_run_any(cur, run_id)
    assert row is not None
    return row


def get_run(cur: duckdb.DuckDBPyConnection, org_id: str, run_id: str) -> dict[str, Any] | None:
    return row_as_dict(
        cur.execute(
            f"SELECT {SUMMARY_COLUMNS}, cases, results FROM evaluation_runs WHERE id = ? AND org_id = ?",
            [run_id, org_id],
        )
    )


def get_run_any(cur: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    return row_as_dict(
        cur.execute(f"SELECT {SUMMARY_COLUMNS}, cases, results FROM evaluation_runs WHERE id = ?", [run_id])
    )


def list_runs(
    cur: duckdb.DuckDBPyConnection, bot_id: str, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    sql = f"SELECT {SUMMARY_COLUMNS} FROM evaluation_runs WHERE chatbot_id = $bot"
    return page(cur, sql, {"bot": bot_id}, limit=limit, cursor=cursor)


def unfinished_run_ids(cur: duckdb.DuckDBPyConnection) -> list[str]:
    rows = cur.execute(
        "SELECT id FROM evaluation_runs WHERE status IN ('queued', 'running') ORDER BY created_at, id"
    ).fetchall()
    return [r[0] for r in rows]


def requeue(cur: duckdb.DuckDBPyConnection, run_id: str) -> None:
    cur.execute(
        "UPDATE evaluation_runs SET status = 'queued', completed = 0, started_at = NULL WHERE id = ?",
        [run_id],
    )


def queued_source_run(cur: duckdb.DuckDBPyConnection, bot_id: str) -> dict[str, Any] | None:
    """A source-triggered run of this chatbot that has not started: a later upload joins it."""
    return row_as_dict(
        cur.execute(
            "SELECT id, source_ids FROM evaluation_runs WHERE chatbot_id = ? AND status = 'queued' "
            "AND triggered_by = 'source' ORDER BY created_at DESC LIMIT 1",
            [bot_id],
        )
    )


def add_source(cur: duckdb.DuckDBPyConnection, run_id: str, source_ids: list[str]) -> None:
    cur.execute("UPDATE evaluation_runs SET source_ids = ? WHERE id = ?", [json.dumps(source_ids), run_id])


def mark_running(cur: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """queued -> running; False when the run is gone (its chatbot deleted) or not queued."""
    found = cur.execute(
        "UPDATE evaluation_runs SET status = 'running', started_at = ?, completed = 0 "
        "WHERE id = ? AND status = 'queued' RETURNING id",
        [utcnow(), run_id],
    ).fetchone()
    return found is not None


def set_completed(cur: duckdb.DuckDBPyConnection, run_id: str, completed: int) -> None:
    cur.execute("UPDATE evaluation_runs SET completed = ? WHERE id = ?", [completed, run_id])


def previous_done_run(
    cur: duckdb.DuckDBPyConnection, bot_id: str, run_id: str, before: datetime
) -> dict[str, Any] | None:
    """The chatbot's latest run that finished (done) before `before`, other than this one."""
    return row_as_dict(
        cur.execute(
            "SELECT id, results FROM evaluation_runs WHERE chatbot_id = ? AND status = 'done' AND id <> ? "
            "AND finished_at <= ? ORDER BY finished_at DESC LIMIT 1",
            [bot_id, run_id, before],
        )
    )


def finish_run(
    cur: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    results: bytes,
    totals: bytes,
    regressions: bytes,
    previous_run_id: str | None,
) -> None:
    cur.execute(
        "UPDATE evaluation_runs SET status = 'done', results = ?, totals = ?, regressions = ?, "
        "previous_run_id = ?, finished_at = ? WHERE id = ?",
        [results.decode(), totals.decode(), regressions.decode(), previous_run_id, utcnow(), run_id],
    )


def fail_run(cur: duckdb.DuckDBPyConnection, run_id: str, error: str) -> None:
    cur.execute(
        "UPDATE evaluation_runs SET status = 'failed', error = ?, finished_at = ? WHERE id = ?",
        [error[:500], utcnow(), run_id],
    )
