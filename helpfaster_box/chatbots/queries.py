"""Chatbots: one row per bot; the settings objects kept as JSON columns.

Rows are decoded into `schemas.Chatbot` here, so every reader gets the settings
with the defaults of their structs. The escalation message is stored inside the
escalation JSON (key `message`) and surfaces as `Chatbot.escalation_message`.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import msgspec

from helpfaster_box.chatbots.schemas import DEFAULT_ESCALATION, Chatbot, Escalation, LeadCapture
from helpfaster_box.store.db import row_as_dict
from helpfaster_box.store.ids import new_id, utcnow
from helpfaster_box.store.pagination import page

COLUMNS = (
    "name",
    "instructions",
    "welcome_message",
    "fallback_message",
    "answer_mode",
    "temperature",
    "max_tokens",
    "lead_capture",
    "escalation",
)


def _load(raw: Any) -> dict[str, Any]:
    return json.loads(raw) if isinstance(raw, str) else dict(raw or {})


def decode(row: dict[str, Any] | None) -> Chatbot | None:
    if row is None:
        return None
    escalation = _load(row["escalation"])
    message = escalation.pop("message", None) or DEFAULT_ESCALATION
    return Chatbot(
        id=row["id"],
        org_id=row["org_id"],
        name=row["name"],
        instructions=row["instructions"],
        welcome_message=row["welcome_message"],
        fallback_message=row["fallback_message"],
        escalation_message=message,
        answer_mode=row["answer_mode"],
        temperature=float(row["temperature"]),
        max_tokens=int(row["max_tokens"]),
        lead_capture=msgspec.convert(_load(row["lead_capture"]), LeadCapture),
        escalation=msgspec.convert(escalation, Escalation),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def to_params(values: dict[str, Any]) -> dict[str, Any]:
    """Column values for SQL: the settings structs as JSON (escalation holding its message)."""
    params = {k: v for k, v in values.items() if k in COLUMNS}
    if "lead_capture" in values:
        params["lead_capture"] = json.dumps(msgspec.to_builtins(values["lead_capture"]))
    if "escalation" in values:
        esc = msgspec.to_builtins(values["escalation"])
        esc["message"] = values.get("escalation_message") or DEFAULT_ESCALATION
        params["escalation"] = json.dumps(esc)
    return params


def create_chatbot(cur: duckdb.DuckDBPyConnection, org_id: str, values: dict[str, Any]) -> Chatbot:
    now = utcnow()
    params = {
        "id": new_id("bot"),
        "org_id": org_id,
        **to_params(values),
        "created_at": now,
        "updated_at": now,
    }
    cur.execute(
        f"INSERT INTO chatbots ({', '.join(params)}) VALUES ({', '.join('$' + c for c in params)})", params
    )
    bot = get_chatbot(cur, org_id, params["id"])
    assert bot is not None
    return bot


def get_chatbot(cur: duckdb.DuckDBPyConnection, org_id: str, bot_id: str) -> Chatbot | None:
    return decode(
        row_as_dict(cur.execute("SELECT * FROM chatbots WHERE id = ? AND org_id = ?", [bot_id, org_id]))
    )


def exists(cur: duckdb.DuckDBPyConnection, org_id: str, bot_id: str) -> bool:
    found = cur.execute("SELECT 1 FROM chatbots WHERE id = ? AND org_id = ?", [bot_id, org_id]).fetchone()
    return found is not None


def list_chatbots(
    cur: duckdb.DuckDBPyConnection, org_id: str, *, limit: int, cursor: str | None
) -> tuple[list[Chatbot], str | None]:
    rows, nxt = page(
        cur, "SELECT * FROM chatbots WHERE org_id = $org", {"org": org_id}, limit=limit, cursor=cursor
    )
    return [b for b in map(decode, rows) if b is not None], nxt


def update_chatbot(
    cur: duckdb.DuckDBPyConnection, org_id: str, bot_id: str, values: dict[str, Any]
) -> Chatbot | None:
    """Apply changes given as full column values (settings as structs)."""
    if not exists(cur, org_id, bot_id):
        return None
    params = to_params(values)
    if params:
        params["updated_at"] = utcnow()
        assignments = ", ".join(f"{k} = ${k}" for k in params)
        cur.execute(
            f"UPDATE chatbots SET {assignments} WHERE id = $bot_id AND org_id = $org_id",
            {**params, "bot_id": bot_id, "org_id": org_id},
        )
    return get_chatbot(cur, org_id, bot_id)


# Tables holding a chatbot's data (each has a chatbot_id column): deleting a
# chatbot removes everything it owns in the same transaction. Features that add
# such a table append it here.
OWNED_TABLES: list[str] = ["chunks", "sources", "messages", "conversations", "lead_conversations", "leads"]
# analytics (migration 007): question vectors, topic clusterings, knowledge gaps
OWNED_TABLES += ["message_vectors", "topic_runs", "topics", "topic_members", "gaps", "gap_members"]


def delete_chatbot(cur: duckdb.DuckDBPyConnection, org_id: str, bot_id: str) -> bool:
    if not exists(cur, org_id, bot_id):
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


# keys (migration 009): a chatbot's publishable widget keys go with it (see OWNED_TABLES).
OWNED_TABLES += ["publishable_keys"]
# evaluations (migration 011): the saved golden set and the runs of a chatbot go with it.
OWNED_TABLES += ["golden_questions", "evaluation_runs"]

# answers (migration 010): the answer units of a chatbot's chunks with their vectors.
OWNED_TABLES += ["chunk_sentences"]
