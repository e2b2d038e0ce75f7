"""Leads: one per person per chatbot, linked to the conversations they wrote in.

Deduplicated per chatbot by email, then phone; a later mention fills in or
updates fields of the same lead rather than creating another.
"""

from __future__ import annotations

from typing import Any

import duckdb

from helpfaster_box.leads.contacts import FIELDS
from helpfaster_box.store.db import row_as_dict
from helpfaster_box.store.ids import new_id, utcnow
from helpfaster_box.store.pagination import created_between, page


def upsert_lead(
    cur: duckdb.DuckDBPyConnection, org_id: str, chatbot_id: str, conv_id: str, details: dict[str, str]
) -> tuple[dict[str, Any] | None, bool]:
    """Create or update the chatbot's lead for these details; link it to the conversation.

    Returns (lead, created). Nothing happens without an email or a phone number.
    """
    email, phone = details.get("email"), details.get("phone")
    if not email and not phone:
        return None, False
    lead = None
    if email:
        lead = row_as_dict(
            cur.execute("SELECT * FROM leads WHERE chatbot_id = ? AND email = ?", [chatbot_id, email])
        )
    if lead is None and phone:
        lead = row_as_dict(
            cur.execute("SELECT * FROM leads WHERE chatbot_id = ? AND phone = ?", [chatbot_id, phone])
        )
    now = utcnow()
    created = lead is None
    if lead is None:
        lead = {
            "id": new_id("lead"),
            "org_id": org_id,
            "chatbot_id": chatbot_id,
            "name": None,
            "email": None,
            "phone": None,
            "company": None,
            "created_at": now,
            "updated_at": now,
        }
        lead.update({k: v for k, v in details.items() if k in FIELDS})
        cur.execute(
            f"INSERT INTO leads ({', '.join(lead)}) VALUES ({', '.join('$' + k for k in lead)})", lead
        )
    else:
        changes = {k: v for k, v in details.items() if k in FIELDS and v and lead.get(k) != v}
        if changes:
            lead.update(changes, updated_at=now)
            sets = ", ".join(f"{k} = ${k}" for k in [*changes, "updated_at"])
            cur.execute(
                f"UPDATE leads SET {sets} WHERE id = $id", {**changes, "updated_at": now, "id": lead["id"]}
            )
    cur.execute(
        "INSERT INTO lead_conversations (lead_id, conversation_id, chatbot_id, created_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [lead["id"], conv_id, chatbot_id, now],
    )
    cur.execute("UPDATE conversations SET lead_id = ? WHERE id = ?", [lead["id"], conv_id])
    return lead, created


def get_lead(cur: duckdb.DuckDBPyConnection, org_id: str, lead_id: str) -> dict[str, Any] | None:
    return row_as_dict(cur.execute("SELECT * FROM leads WHERE id = ? AND org_id = ?", [lead_id, org_id]))


def lead_conversation_ids(cur: duckdb.DuckDBPyConnection, lead_id: str) -> list[str]:
    rows = cur.execute(
        "SELECT conversation_id FROM lead_conversations WHERE lead_id = ? ORDER BY created_at", [lead_id]
    ).fetchall()
    return [r[0] for r in rows]


def list_leads(
    cur: duckdb.DuckDBPyConnection,
    chatbot_id: str,
    *,
    limit: int,
    cursor: str | None,
    start: Any = None,
    end: Any = None,
) -> tuple[list[dict[str, Any]], str | None]:
    params: dict[str, Any] = {"bot": chatbot_id}
    sql = created_between("SELECT * FROM leads WHERE chatbot_id = $bot", params, start, end)
    return page(cur, sql, params, limit=limit, cursor=cursor)


def all_leads(
    cur: duckdb.DuckDBPyConnection, chatbot_id: str, start: Any = None, end: Any = None
) -> list[dict[str, Any]]:
    rows, _ = list_leads(cur, chatbot_id, limit=1_000_000, cursor=None, start=start, end=end)
    return rows


def ask_state(cur: duckdb.DuckDBPyConnection, conv_id: str) -> tuple[str | None, bool, int] | None:
    """(lead id, already asked, visitor messages) of a conversation. Counted, not derived
    from `message_count`: agent replies and held turns make that count uneven."""
    row = cur.execute(
        "SELECT lead_id, lead_asked, (SELECT count(*) FROM messages m "
        "WHERE m.conversation_id = c.id AND m.role = 'user') FROM conversations c WHERE id = ?",
        [conv_id],
    ).fetchone()
    return None if row is None else (row[0], bool(row[1]), int(row[2]))


def mark_asked(cur: duckdb.DuckDBPyConnection, conv_id: str) -> None:
    cur.execute("UPDATE conversations SET lead_asked = true WHERE id = ?", [conv_id])
