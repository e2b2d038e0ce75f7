"""Keyset pagination: newest first, stable while rows are being added.

The cursor is the (created_at, id) of the last row served, encoded opaquely;
rows inserted later are newer, so they never shift a page already walked.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import duckdb

from helpfaster_box.errors import Invalid
from helpfaster_box.store.db import rows_as_dicts


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, row_id = raw.split("|", 1)
        return datetime.fromisoformat(ts), row_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid("cursor is not a cursor this API returned.", field="cursor") from None


def page(
    cur: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict[str, Any],
    *,
    limit: int,
    cursor: str | None,
    alias: str = "",
) -> tuple[list[dict[str, Any]], str | None]:
    """Run ``sql`` (a SELECT with a WHERE clause, no ORDER/LIMIT) one page at a time."""
    col = f"{alias}." if alias else ""
    params = dict(params)
    if cursor:
        params["cur_ts"], params["cur_id"] = decode_cursor(cursor)
        sql += f" AND ({col}created_at < $cur_ts OR ({col}created_at = $cur_ts AND {col}id < $cur_id))"
    sql += f" ORDER BY {col}created_at DESC, {col}id DESC LIMIT {int(limit) + 1}"
    rows = rows_as_dicts(cur.execute(sql, params))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
    return rows, next_cursor


def created_between(sql: str, params: dict[str, Any], start: datetime | None, end: datetime | None) -> str:
    """Add the inclusive `from`/`to` filters of list endpoints to a WHERE clause."""
    if start is not None:
        sql += " AND created_at >= $start"
        params["start"] = start
    if end is not None:
        sql += " AND created_at <= $end"
        params["end"] = end
    return sql
