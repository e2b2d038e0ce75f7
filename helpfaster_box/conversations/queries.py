"""Conversations and their messages."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb
import numpy as np

from helpfaster_box.store.db import decode_json, row_as_dict, rows_as_dicts
from helpfaster_box.store.ids import new_id, utcnow
from helpfaster_box.store.pagination import created_between, page

_JSON = ("visitor", "metadata", "sources")


def _decode(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return decode_json(row, _JSON)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def create_conversation(
    cur: duckdb.DuckDBPyConnection,
    org_id: str,
    chatbot_id: str,
    visitor: Any,
    metadata: Any,
    publishable_key_id: str | None = None,
) -> dict[str, Any]:
    now = utcnow()
    row = {
        "id": new_id("conv"),
        "org_id": org_id,
        "chatbot_id": chatbot_id,
        "status": "open",
        "visitor": _json(visitor),
        "metadata": _json(metadata),
        "message_count": 0,
        "unanswered_streak": 0,
        "escalated_at": None,
        "escalation_reason": None,
        "resolved_at": None,
        "created_at": now,
        "updated_at": now,
        "publishable_key_id": publishable_key_id,
    }
    cur.execute(
        f"INSERT INTO conversations ({', '.join(row)}) VALUES ({', '.join('$' + k for k in row)})", row
    )
    return _decode(row)  # type: ignore[return-value]


def get_conversation(cur: duckdb.DuckDBPyConnection, org_id: str, conv_id: str) -> dict[str, Any] | None:
    return _decode(
        row_as_dict(cur.execute("SELECT * FROM conversations WHERE id = ? AND org_id = ?", [conv_id, org_id]))
    )


def list_conversations(
    cur: duckdb.DuckDBPyConnection,
    chatbot_id: str,
    *,
    limit: int,
    cursor: str | None,
    start: datetime | None,
    end: datetime | None,
    status: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    params: dict[str, Any] = {"bot": chatbot_id}
    sql = created_between("SELECT * FROM conversations WHERE chatbot_id = $bot", params, start, end)
    if status:
        sql += " AND status = $status"
        params["status"] = status
    rows, nxt = page(cur, sql, params, limit=limit, cursor=cursor)
    return [_decode(r) for r in rows], nxt  # type: ignore[misc]


def add_message(
    cur: duckdb.DuckDBPyConnection,
    conv: dict[str, Any],
    fields: dict[str, Any],
    vector: np.ndarray | None = None,
) -> dict[str, Any]:
    """Append a message and bump the conversation's counters, in the caller's transaction.
    A visitor question's embedding (``vector``) is kept beside it for topics and gaps.
    ``conv`` is updated in place to the conversation row as it is now."""
    count_messages(cur, conv, 1)
    row = message_row(conv, fields, conv["message_count"])
    insert_messages(cur, conv, [row], vector)
    return row


def message_row(conv: dict[str, Any], fields: dict[str, Any], seq: int) -> dict[str, Any]:
    """A messages row (not written yet) at position ``seq`` of the conversation."""
    return {
        "id": new_id("msg"),
        "org_id": conv["org_id"],
        "chatbot_id": conv["chatbot_id"],
        "conversation_id": conv["id"],
        "seq": seq,
        "sources": None,
        "answered": None,
        "answer_mode": None,
        "confidence": None,
        "decline_reason": None,
        "prompt_tokens": None,
        "completion_tokens": None,
        "latency_ms": None,
        "ttft_ms": None,
        "visitor": None,
        "metadata": None,
        "feedback_rating": None,
        "feedback_comment": None,
        "feedback_at": None,
        "author": None,
        **fields,
        "created_at": utcnow(),
    }


def insert_messages(
    cur: duckdb.DuckDBPyConnection,
    conv: dict[str, Any],
    rows: list[dict[str, Any]],
    vector: np.ndarray | None,
) -> None:
    """Insert message rows in one statement; ``vector``: the first row's question embedding.
    The caller counts them (`count_messages`)."""
    cols = list(rows[0])
    values = ", ".join("(" + ", ".join("?" for _ in cols) + ")" for _ in rows)
    params = [_json(r[k]) if k in _JSON else r[k] for r in rows for k in cols]
    cur.execute(f"INSERT INTO messages ({', '.join(cols)}) VALUES {values}", params)
    if vector is not None:
        cur.execute(
            "INSERT INTO message_vectors (message_id, chatbot_id, embedding) VALUES (?, ?, ?)",
            [rows[0]["id"], conv["chatbot_id"], np.asarray(vector, dtype=np.float32).tolist()],
        )


def count_messages(
    cur: duckdb.DuckDBPyConnection, conv: dict[str, Any], added: int, streak: int | None = None
) -> None:
    """Bump the conversation's message count by ``added`` (and set its unanswered streak) in
    one statement; ``conv`` is updated in place to the row as it is now (no re-read)."""
    streak_sql = ", unanswered_streak = $streak" if streak is not None else ""
    params: dict[str, Any] = {"added": added, "now": utcnow(), "id": conv["id"]}
    if streak is not None:
        params["streak"] = streak
    updated = row_as_dict(
        cur.execute(
            f"UPDATE conversations SET message_count = message_count + $added, updated_at = $now{streak_sql} "
            "WHERE id = $id RETURNING *",
            params,
        )
    )
    assert updated is not None, conv["id"]
    conv.update(_decode(updated) or {})


def set_status(cur: duckdb.DuckDBPyConnection, conv_id: str, status: str) -> None:
    """open (handed back to the bot: its unanswered streak starts again) or resolved."""
    now = utcnow()
    cur.execute(
        "UPDATE conversations SET status = $status, updated_at = $now, unanswered_streak = 0, "
        "resolved_at = CASE WHEN $status = 'resolved' THEN $now ELSE NULL END WHERE id = $id",
        {"status": status, "now": now, "id": conv_id},
    )


def set_unanswered_streak(cur: duckdb.DuckDBPyConnection, conv_id: str, streak: int) -> None:
    cur.execute("UPDATE conversations SET unanswered_streak = ? WHERE id = ?", [streak, conv_id])


def messages_of(cur: duckdb.DuckDBPyConnection, conv_id: str) -> list[dict[str, Any]]:
    rows = rows_as_dicts(
        cur.execute("SELECT * FROM messages WHERE conversation_id = ? ORDER BY seq", [conv_id])
    )
    return [_decode(r) for r in rows]  # type: ignore[misc]


def recent_messages(cur: duckdb.DuckDBPyConnection, conv_id: str, n: int) -> list[dict[str, Any]]:
    rows = rows_as_dicts(
        cur.execute(
            "SELECT role, content, answered FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?",
            [conv_id, n],
        )
    )
    return list(reversed(rows))


def get_message(cur: duckdb.DuckDBPyConnection, org_id: str, msg_id: str) -> dict[str, Any] | None:
    return _decode(
        row_as_dict(cur.execute("SELECT * FROM messages WHERE id = ? AND org_id = ?", [msg_id, org_id]))
    )


def set_feedback(cur: duckdb.DuckDBPyConnection, msg_id: str, rating: str, comment: str | None) -> None:
    cur.execute(
        "UPDATE messages SET feedback_rating = ?, feedback_comment = ?, feedback_at = ? WHERE id = ?",
        [rating, comment, utcnow(), msg_id],
    )


def escalate(cur: duckdb.DuckDBPyConnection, conv_id: str, reason: str) -> bool:
    """Escalate once: returns False when the conversation already was."""
    done = cur.execute(
        "UPDATE conversations SET status = 'escalated', escalated_at = $now, escalation_reason = $reason, "
        "updated_at = $now WHERE id = $id AND status <> 'escalated' RETURNING id",
        {"now": utcnow(), "reason": reason, "id": conv_id},
    ).fetchall()
    return bool(done)


def must_get(cur: duckdb.DuckDBPyConnection, org_id: str, conv_id: str) -> dict[str, Any]:
    """A conversation this transaction knows exists (re-read after changing it)."""
    conv = get_conversation(cur, org_id, conv_id)
    assert conv is not None, conv_id
    return conv


def export_batch(
    cur: duckdb.DuckDBPyConnection,
    chatbot_id: str,
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, str] | None,
    n: int,
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The next `n` conversations (oldest first, after `after` = (created_at, id)) with their
    messages: two queries per batch, whatever its size."""
    params: dict[str, Any] = {"bot": chatbot_id}
    sql = created_between("SELECT * FROM conversations WHERE chatbot_id = $bot", params, start, end)
    if after is not None:
        sql += " AND (created_at > $after_ts OR (created_at = $after_ts AND id > $after_id))"
        params["after_ts"], params["after_id"] = after
    convs = [
        _decode(r)
        for r in rows_as_dicts(cur.execute(f"{sql} ORDER BY created_at, id LIMIT {int(n)}", params))
    ]
    if not convs:
        return []
    ids = [c["id"] for c in convs if c is not None]
    msgs = rows_as_dicts(
        cur.execute(
            f"SELECT * FROM messages WHERE conversation_id IN ({', '.join('?' * len(ids))}) "
            "ORDER BY conversation_id, seq",
            ids,
        )
    )
    by_conv: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for m in msgs:
        by_conv[m["conversation_id"]].append(_decode(m))  # type: ignore[arg-type]
    return [(c, by_conv[c["id"]]) for c in convs if c is not None]
