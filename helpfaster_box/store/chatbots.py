"""Chatbots: one row per bot; settings objects kept as JSON columns."""

from __future__ import annotations

import json
from typing import Any

import duckdb

from .db import decode_json, row_as_dict
from .ids import new_id, utcnow
from .pagination import page

_COLUMNS = (
    "name", "instructions", "welcome_message", "fallback_message", "answer_mode",
    "temperature", "max_tokens", "lead_capture", "escalation",
)


def _decode(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return decode_json(row, ("lead_capture", "escalation"))


def create_chatbot(cur: duckdb.DuckDBPyConnection, org_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    row = {"id": new_id("bot"), "org_id": org_id, **fields, "created_at": now, "updated_at": now}
    params = dict(row, lead_capture=json.dumps(row["lead_capture"]), escalation=json.dumps(row["escalation"]))
    cols = ", ".join(params)
    cur.execute(
        f"INSERT INTO chatbots ({cols}) VALUES ({', '.join('$' + c for c in params)})", params
    )
    return row


def get_chatbot(cur: duckdb.DuckDBPyConnection, org_id: str, bot_id: str) -> dict[str, Any] | None:
    return _decode(
        row_as_dict(cur.execute("SELECT * FROM chatbots WHERE id = ? AND org_id = ?", [bot_id, org_id]))
    )


def list_chatbots(
    cur: duckdb.DuckDBPyConnection, org_id: str, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    rows, nxt = page(
        cur, "SELECT * FROM chatbots WHERE org_id = $org", {"org": org_id}, limit=limit, cursor=cursor
    )
    return [_decode(r) for r in rows], nxt  # type: ignore[misc]


def update_chatbot(
    cur: duckdb.DuckDBPyConnection, org_id: str, bot_id: str, changes: dict[str, Any]
) -> dict[str, Any] | None:
    if get_chatbot(cur, org_id, bot_id) is None:
        return None
    changes = {k: v for k, v in changes.items() if k in _COLUMNS}
    if changes:
        params = {
            k: json.dumps(v) if k in ("lead_capture", "escalation") else v for k, v in changes.items()
        }
        params["updated_at"] = utcnow()
        assignments = ", ".join(f"{k} = ${k}" for k in params)
        cur.execute(
            f"UPDATE chatbots SET {assignments} WHERE id = $bot_id AND org_id = $org_id",
            {**params, "bot_id": bot_id, "org_id": org_id},
        )
    return get_chatbot(cur, org_id, bot_id)


# Tables holding a chatbot's data (each has a chatbot_id column): deleting a
# chatbot removes everything it owns in the same transaction.
OWNED_TABLES: list[str] = ["chunks", "sources", "messages", "conversations", "lead_conversations", "leads"]


def delete_chatbot(cur: duckdb.DuckDBPyConnection, org_id: str, bot_id: str) -> bool:
    if get_chatbot(cur, org_id, bot_id) is None:
        return False
    for table in OWNED_TABLES:
        cur.execute(f"DELETE FROM {table} WHERE chatbot_id = ?", [bot_id])
    # Webhooks filtered to this chatbot forget it (an emptied filter matches nothing).
    hooks = cur.execute(
        "SELECT id, chatbot_ids FROM webhooks WHERE org_id = ? AND chatbot_ids IS NOT NULL", [org_id]
    ).fetchall()
    for hook_id, raw in hooks:
        ids = json.loads(raw)
        if bot_id in ids:
            ids.remove(bot_id)
            cur.execute("UPDATE webhooks SET chatbot_ids = ? WHERE id = ?", [json.dumps(ids), hook_id])
    cur.execute("DELETE FROM chatbots WHERE id = ? AND org_id = ?", [bot_id, org_id])
    return True
