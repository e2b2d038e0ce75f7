"""API keys: stored as SHA-256 only, looked up by hash, shown once."""

from __future__ import annotations

import hashlib
from typing import Any

import duckdb

from helpfaster_box.store.db import row_as_dict
from helpfaster_box.store.ids import new_id, random_token, utcnow
from helpfaster_box.store.pagination import page

KEY_PREFIX = "hf_live_"
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
    return True


def page_keys(
    cur: duckdb.DuckDBPyConnection, org_id: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    return page(
        cur, "SELECT * FROM api_keys WHERE org_id = $org", {"org": org_id}, limit=limit, cursor=cursor
    )
