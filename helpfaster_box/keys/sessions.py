"""Dashboard sessions: an API key exchanged for a short-lived server-side session.

Why not keep the API key in the browser: a key in localStorage is readable by any
script that ever runs on the page, and it never expires. Instead the browser holds a
random 256-bit token in an HttpOnly, SameSite=Strict cookie (`hf_session`), and the
database holds only the token's SHA-256, so a copy of the database signs nobody in.
The CSRF token is an HMAC of the session token: derived, never stored, and useless
without the cookie; writes made with the cookie must echo it in `x-csrf-token`.

A session ends after `session_idle_minutes` without a request (8 h by default: a
working day) or `session_max_hours` after sign-in (24 h), on sign-out, and at once
when the API key it came from is revoked (the lookup joins the key, and revoking
deletes its sessions). `last_seen_at` is written at most once a minute, so a
dashboard polling every few seconds does not turn every read into a write.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

import duckdb

from helpfaster_box.store.db import row_as_dict
from helpfaster_box.store.ids import new_id, utcnow

TOUCH_EVERY = timedelta(seconds=60)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token(token: str) -> str:
    return hmac.new(token.encode("utf-8"), b"helpfaster-box csrf", hashlib.sha256).hexdigest()


def csrf_matches(token: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(token), sent or "")


def create(
    cur: duckdb.DuckDBPyConnection, key_id: str, org_id: str, max_age: timedelta
) -> tuple[dict[str, Any], str]:
    """A new session for an API key; returns (row, token). Expired sessions are purged."""
    now = utcnow()
    cur.execute("DELETE FROM dashboard_sessions WHERE expires_at <= ?", [now])
    token = new_token()
    row = {
        "id": new_id("ses"),
        "token_hash": hash_token(token),
        "key_id": key_id,
        "org_id": org_id,
        "created_at": now,
        "last_seen_at": now,
        "expires_at": now + max_age,
    }
    cur.execute(
        f"INSERT INTO dashboard_sessions ({', '.join(row)}) VALUES ({', '.join('$' + k for k in row)})", row
    )
    return row, token


def find(cur: duckdb.DuckDBPyConnection, token_hash: str) -> dict[str, Any] | None:
    """The session with its key's role and revocation and its organization's plan."""
    return row_as_dict(
        cur.execute(
            "SELECT s.id, s.token_hash, s.key_id, s.org_id, s.created_at, s.last_seen_at, s.expires_at, "
            "k.role, k.revoked_at, o.plan, o.name AS org_name "
            "FROM dashboard_sessions s JOIN api_keys k ON k.id = s.key_id "
            "JOIN organizations o ON o.id = s.org_id WHERE s.token_hash = ?",
            [token_hash],
        )
    )


def is_live(row: dict[str, Any], now: datetime, idle: timedelta) -> bool:
    return row["revoked_at"] is None and now < row["expires_at"] and now - row["last_seen_at"] < idle


def needs_touch(row: dict[str, Any], now: datetime) -> bool:
    return now - row["last_seen_at"] >= TOUCH_EVERY


def touch(cur: duckdb.DuckDBPyConnection, session_id: str) -> None:
    cur.execute("UPDATE dashboard_sessions SET last_seen_at = ? WHERE id = ?", [utcnow(), session_id])


def delete(cur: duckdb.DuckDBPyConnection, token_hash: str) -> None:
    cur.execute("DELETE FROM dashboard_sessions WHERE token_hash = ?", [token_hash])
