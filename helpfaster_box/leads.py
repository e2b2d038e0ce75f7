"""Leads: contact details from the chat request's visitor and from what visitors type.

Deduplicated per chatbot by email, then phone; a later mention fills in or
updates fields of the same lead rather than creating another.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb

from .store.db import row_as_dict
from .store.ids import new_id, utcnow
from .store.pagination import created_between, page

FIELDS = ("name", "email", "phone", "company")
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![\w-])")
_PHONE = re.compile(r"(?<![\w+])(\+?\d[\d ()./-]{6,20}\d)(?!\w)")
_PHONE_CUE = re.compile(
    r"\b(?:phone|call|tel|telephone|mobile|cell|whatsapp|text me|sms|ring|reach me|number is)\b",
    re.IGNORECASE,
)
_NAME = re.compile(
    r"\b(?i:my name is|my name's|i am|i'm|this is|call me)\s+([A-Z][a-zA-Z'-]+(?:\s+[A-Z][a-zA-Z'-]+){0,2})"
)
_COMPANY = re.compile(r"\b(?i:i work (?:at|for)|from the company|my company is|company:)\s+([A-Z][\w&.'-]*(?:\s+[A-Z][\w&.'-]*){0,3})")
_INTENT = re.compile(
    r"\b(?:pric(?:e|es|ing)|quote|buy|purchas\w*|demo|trial|sales|subscribe|subscription|plans?|"
    r"contact (?:me|us|you)|call me|email me|reach (?:me|out)|get in touch|interested in)\b",
    re.IGNORECASE,
)
ASK_MESSAGE = (
    "If you'd like our team to follow up, just leave your name and email address (or phone number) here."
)


def normalize_email(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().lower()
    return value if _EMAIL.fullmatch(value) else None


def normalize_phone(value: str | None) -> str | None:
    """Digits with an optional leading +; 7 to 15 digits (E.164) or it is not a phone number."""
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    if not 7 <= len(digits) <= 15:
        return None
    return ("+" if value.strip().startswith("+") else "") + digits


def detect_contacts(text: str) -> dict[str, str]:
    """Contact details a visitor typed: validated email, plausible phone, stated name/company."""
    found: dict[str, str] = {}
    email = normalize_email(m.group(0)) if (m := _EMAIL.search(text)) else None
    if email:
        found["email"] = email
    # Order numbers and ticket ids are digit runs too: a bare number counts as a phone
    # only when the visitor says it is one (or writes it international, with a +).
    cue = bool(_PHONE_CUE.search(text))
    for m in _PHONE.finditer(text):
        candidate = m.group(1)
        if not (cue or candidate.startswith("+")):
            continue
        # Dates, versions and prices are digit runs too; a phone has 7+ digits and few dots.
        if candidate.count(".") > 1 or re.fullmatch(r"\d{4}-\d{2}-\d{2}", candidate.strip()):
            continue
        if phone := normalize_phone(candidate):
            found["phone"] = phone
            break
    if m := _NAME.search(text):
        found["name"] = m.group(1).strip()
    if m := _COMPANY.search(text):
        found["company"] = m.group(1).strip().rstrip(".")
    return found


def shows_intent(text: str) -> bool:
    return bool(_INTENT.search(text))


def clean_visitor(visitor: dict[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (visitor or {}).items():
        if key == "email":
            value = normalize_email(value)
        elif key == "phone":
            value = normalize_phone(value)
        if value and key in FIELDS:
            out[key] = str(value).strip()
    return out


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
        lead = row_as_dict(cur.execute("SELECT * FROM leads WHERE chatbot_id = ? AND email = ?", [chatbot_id, email]))
    if lead is None and phone:
        lead = row_as_dict(cur.execute("SELECT * FROM leads WHERE chatbot_id = ? AND phone = ?", [chatbot_id, phone]))
    now = utcnow()
    created = lead is None
    if lead is None:
        lead = {"id": new_id("lead"), "org_id": org_id, "chatbot_id": chatbot_id, "name": None,
                "email": None, "phone": None, "company": None, "created_at": now, "updated_at": now}
        lead.update({k: v for k, v in details.items() if k in FIELDS})
        cur.execute(f"INSERT INTO leads ({', '.join(lead)}) VALUES ({', '.join('$' + k for k in lead)})", lead)
    else:
        changes = {k: v for k, v in details.items() if k in FIELDS and v and lead.get(k) != v}
        if changes:
            lead.update(changes, updated_at=now)
            sets = ", ".join(f"{k} = ${k}" for k in [*changes, "updated_at"])
            cur.execute(f"UPDATE leads SET {sets} WHERE id = $id", {**changes, "updated_at": now, "id": lead["id"]})
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


def list_leads(cur: duckdb.DuckDBPyConnection, chatbot_id: str, *, limit: int, cursor: str | None,
               start: Any = None, end: Any = None) -> tuple[list[dict[str, Any]], str | None]:
    params: dict[str, Any] = {"bot": chatbot_id}
    sql = created_between("SELECT * FROM leads WHERE chatbot_id = $bot", params, start, end)
    return page(cur, sql, params, limit=limit, cursor=cursor)


def all_leads(cur: duckdb.DuckDBPyConnection, chatbot_id: str, start: Any = None, end: Any = None) -> list[dict[str, Any]]:
    rows, _ = list_leads(cur, chatbot_id, limit=1_000_000, cursor=None, start=start, end=end)
    return rows

