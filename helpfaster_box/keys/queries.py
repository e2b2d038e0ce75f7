"""API keys and publishable (widget) keys: stored as SHA-256 only, looked up by hash,
shown once. Revoking an API key also ends the dashboard sessions signed in with it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import duckdb

from helpfaster_box.store.db import row_as_dict
from helpfaster_box.store.ids import new_id, random_token, utcnow
from helpfaster_box.store.pagination import page

KEY_PREFIX = "hf_live_"
PUBLISHABLE_PREFIX = "hf_pub_"
ROLES = ("admin", "member")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key() -> str:
    # 32 base62 characters = 190 bits of entropy.
    return KEY_PREFIX + random_token(32)


def create_key(
    cur: duckdb.DuckDBPyConnection, org_id: str, role: str, name: str | None
) -> tuple[dict[str, Any], str]:
    """Insert a new key; returns (row, plaintext key). The plaintext is never stored."""
    key = generate_key()
    row = {
        "id": new_id("key"),
        "org_id": org_id,
        "name": name,
        "role": role,
        "prefix": key[: len(KEY_PREFIX) + 4],
        "key_hash": hash_key(key),
        "created_at": utcnow(),
        "revoked_at": None,
    }
    cur.execute(
        "INSERT INTO api_keys (id, org_id, name, role, prefix, key_hash, created_at, revoked_at) "
        "VALUES ($id, $org_id, $name, $role, $prefix, $key_hash, $created_at, $revoked_at)",
        row,
    )
    return row, key


def find_by_hash(cur: duckdb.DuckDBPyConnection, key_hash: str) -> dict[str, Any] | None:
    return row_as_dict(
        cur.execute(
            "SELECT k.id, k.org_id, k.role, k.key_hash, k.revoked_at, o.plan, o.name AS org_name "
            "FROM api_keys k JOIN organizations o ON o.id = k.org_id WHERE k.key_hash = ?",
            [key_hash],
        )
    )


def get_key(cur: duckdb.DuckDBPyConnection, key_id: str) -> dict[str, Any] | None:
    return row_as_dict(cur.execute("SELECT * FROM api_keys WHERE id = ?", [key_id]))


def list_keys(cur: duckdb.DuckDBPyConnection, org_id: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT k.*, o.name AS org_name FROM api_keys k JOIN organizations o ON o.id = k.org_id"
    params: list[Any] = []
    if org_id:
        sql += " WHERE k.org_id = ?"
        params.append(org_id)
    cur.execute(sql + " ORDER BY k.created_at, k.id", params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=False)) for r in cur.fetchall()]


def revoke_key(cur: duckdb.DuckDBPyConnection, key_id: str) -> bool:
    """Mark revoked; returns False when the key is unknown or already revoked."""
    row = get_key(cur, key_id)
    if row is None or row["revoked_at"] is not None:
        return False
    cur.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", [utcnow(), key_id])
    cur.execute("DELETE FROM dashboard_sessions WHERE key_id = ?", [key_id])
    return True


def page_keys(
    cur: duckdb.DuckDBPyConnection, org_id: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    return page(
        cur, "SELECT * FROM api_keys WHERE org_id = $org", {"org": org_id}, limit=limit, cursor=cursor
    )


# --- publishable keys (hf_pub_): one chatbot, allowed origins --------------------


def _decode_publishable(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is not None and isinstance(row.get("allowed_origins"), str):
        row["allowed_origins"] = json.loads(row["allowed_origins"])
    return row


def create_publishable(
    cur: duckdb.DuckDBPyConnection, org_id: str, chatbot_id: str, name: str | None, origins: list[str]
) -> tuple[dict[str, Any], str]:
    key = PUBLISHABLE_PREFIX + random_token(32)
    row = {
        "id": new_id("pkey"),
        "org_id": org_id,
        "chatbot_id": chatbot_id,
        "name": name,
        "prefix": key[: len(PUBLISHABLE_PREFIX) + 4],
        "key_hash": hash_key(key),
        "allowed_origins": json.dumps(origins),
        "created_at": utcnow(),
        "revoked_at": None,
    }
    cur.execute(
        f"INSERT INTO publishable_keys ({', '.join(row)}) VALUES ({', '.join('$' + k for k in row)})", row
    )
    return {**row, "allowed_origins": origins}, key


def find_publishable_by_hash(cur: duckdb.DuckDBPyConnection, key_hash: str) -> dict[str, Any] | None:
    return _decode_publishable(
        row_as_dict(
            cur.execute(
                "SELECT p.id, p.org_id, p.chatbot_id, p.key_hash, p.allowed_origins, p.revoked_at, "
                "o.plan, o.name AS org_name "
                "FROM publishable_keys p JOIN organizations o ON o.id = p.org_id WHERE p.key_hash = ?",
                [key_hash],
            )
        )
    )


def get_publishable(cur: duckdb.DuckDBPyConnection, chatbot_id: str, key_id: str) -> dict[str, Any] | None:
    return _decode_publishable(
        row_as_dict(
            cur.execute(
                "SELECT * FROM publishable_keys WHERE id = ? AND chatbot_id = ?", [key_id, chatbot_id]
            )
        )
    )


def page_publishable(
    cur: duckdb.DuckDBPyConnection, chatbot_id: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    rows, nxt = page(
        cur,
        "SELECT * FROM publishable_keys WHERE chatbot_id = $bot",
        {"bot": chatbot_id},
        limit=limit,
        cursor=cursor,
    )
    return [_decode_publishable(r) for r in rows], nxt  # type: ignore[misc]


def revoke_publishable(cur: duckdb.DuckDBPyConnection, key_id: str) -> None:
    cur.execute("UPDATE publishable_keys SET revoked_at = ? WHERE id = ?", [utcnow(), key_id])


def allowed_origins(cur: duckdb.DuckDBPyConnection, chatbot_id: str | None) -> frozenset[str]:
    """Origins of the active publishable keys (of one chatbot, or of all): for CORS preflights."""
    sql = "SELECT allowed_origins FROM publishable_keys WHERE revoked_at IS NULL"
    params: list[Any] = []
    if chatbot_id is not None:
        sql += " AND chatbot_id = ?"
        params.append(chatbot_id)
    return frozenset(o for (raw,) in cur.execute(sql, params).fetchall() for o in json.loads(raw))
