"""Webhook endpoints and their delivery log (the outbox itself is webhooks/outbox.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import duckdb

from ..webhooks.signing import new_secret
from .db import row_as_dict, rows_as_dicts
from .ids import new_id, utcnow
from .pagination import page

ROTATION_GRACE = timedelta(hours=24)
_JSON = ("events", "chatbot_ids")


def _decode(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is not None:
        for col in _JSON:
            if isinstance(row.get(col), str):
                row[col] = json.loads(row[col])
    return row


def _params(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if v is None else json.dumps(v)) if k in _JSON else v for k, v in values.items()}


def create_webhook(
    cur: duckdb.DuckDBPyConnection, org_id: str, values: dict[str, Any]
) -> dict[str, Any]:
    """values: url, description, events, chatbot_ids. Returns the row (with its secret)."""
    now = utcnow()
    row = {
        "id": new_id("wh"), "org_id": org_id, **values, "secret": new_secret(),
        "previous_secret": None, "previous_secret_expires_at": None, "enabled": True,
        "disabled_reason": None, "disabled_at": None, "failure_streak": 0, "last_success_at": None,
        "created_at": now, "updated_at": now,
    }
    cur.execute(
        f"INSERT INTO webhooks ({', '.join(row)}) VALUES ({', '.join('$' + k for k in row)})", _params(row)
    )
    return row


def get_webhook(cur: duckdb.DuckDBPyConnection, org_id: str, webhook_id: str) -> dict[str, Any] | None:
    return _decode(
        row_as_dict(cur.execute("SELECT * FROM webhooks WHERE id = ? AND org_id = ?", [webhook_id, org_id]))
    )


def page_webhooks(
    cur: duckdb.DuckDBPyConnection, org_id: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    rows, nxt = page(cur, "SELECT * FROM webhooks WHERE org_id = $org", {"org": org_id}, limit=limit, cursor=cursor)
    return [_decode(r) for r in rows], nxt  # type: ignore[misc]


def update_webhook(
    cur: duckdb.DuckDBPyConnection, org_id: str, webhook_id: str, values: dict[str, Any]
) -> dict[str, Any] | None:
    values = {**values, "updated_at": utcnow()}
    sets = ", ".join(f"{k} = ${k}" for k in values)
    cur.execute(
        f"UPDATE webhooks SET {sets} WHERE id = $id AND org_id = $org",
        {**_params(values), "id": webhook_id, "org": org_id},
    )
    return get_webhook(cur, org_id, webhook_id)


def disable(cur: duckdb.DuckDBPyConnection, webhook_id: str, reason: str) -> None:
    """Disable an endpoint and fail its pending deliveries (they can be retried once it is re-enabled)."""
    now = utcnow()
    cur.execute(
        "UPDATE webhooks SET enabled = false, disabled_reason = $reason, disabled_at = $now, updated_at = $now "
        "WHERE id = $id",
        {"reason": reason, "now": now, "id": webhook_id},
    )
    cur.execute(
        "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, "
        "last_error = $err, updated_at = $now WHERE webhook_id = $id AND status = 'pending'",
        {"err": f"Not sent: the endpoint was disabled ({reason}).", "now": now, "id": webhook_id},
    )


def enable(cur: duckdb.DuckDBPyConnection, webhook_id: str) -> None:
    cur.execute(
        "UPDATE webhooks SET enabled = true, disabled_reason = NULL, disabled_at = NULL, failure_streak = 0, "
        "updated_at = ? WHERE id = ?",
        [utcnow(), webhook_id],
    )


def rotate_secret(cur: duckdb.DuckDBPyConnection, org_id: str, webhook_id: str) -> dict[str, Any] | None:
    """New secret; the current one keeps signing for ROTATION_GRACE (a third rotation in that window
    retires the oldest at once: only two secrets ever sign)."""
    now = utcnow()
    secret = new_secret()
    cur.execute(
        "UPDATE webhooks SET previous_secret = secret, previous_secret_expires_at = $expires, secret = $secret, "
        "updated_at = $now WHERE id = $id AND org_id = $org",
        {"expires": now + ROTATION_GRACE, "secret": secret, "now": now, "id": webhook_id, "org": org_id},
    )
    return get_webhook(cur, org_id, webhook_id)


def existing_chatbots(cur: duckdb.DuckDBPyConnection, org_id: str, chatbot_ids: list[str]) -> set[str]:
    rows = cur.execute(
        "SELECT id FROM chatbots WHERE org_id = $org AND list_contains($ids, id)", {"org": org_id, "ids": chatbot_ids}
    ).fetchall()
    return {r[0] for r in rows}


def delete_webhook(cur: duckdb.DuckDBPyConnection, org_id: str, webhook_id: str) -> bool:
    if get_webhook(cur, org_id, webhook_id) is None:
        return False
    cur.execute(
        "DELETE FROM webhook_attempts WHERE delivery_id IN "
        "(SELECT id FROM webhook_deliveries WHERE webhook_id = ?)",
        [webhook_id],
    )
    cur.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?", [webhook_id])
    cur.execute("DELETE FROM webhooks WHERE id = ?", [webhook_id])
    return True


# -- deliveries ------------------------------------------------------------------

_DELIVERY = (
    "SELECT d.*, e.type AS event_type FROM webhook_deliveries d "
    "JOIN webhook_events e ON e.id = d.event_id JOIN webhooks w ON w.id = d.webhook_id "
)


def _with_attempts(cur: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return rows
    attempts = rows_as_dicts(
        cur.execute(
            "SELECT * FROM webhook_attempts WHERE list_contains($ids, delivery_id) ORDER BY delivery_id, attempt",
            {"ids": [r["id"] for r in rows]},
        )
    )
    by_delivery: dict[str, list[dict[str, Any]]] = {}
    for a in attempts:
        by_delivery.setdefault(a["delivery_id"], []).append(a)
    for r in rows:
        r["attempt_log"] = by_delivery.get(r["id"], [])
    return rows


def page_deliveries(
    cur: duckdb.DuckDBPyConnection, webhook_id: str, *, limit: int, cursor: str | None, status: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    sql = _DELIVERY + "WHERE d.webhook_id = $wh"
    params: dict[str, Any] = {"wh": webhook_id}
    if status:
        sql += " AND d.status = $status"
        params["status"] = status
    rows, nxt = page(cur, sql, params, limit=limit, cursor=cursor, alias="d")
    return _with_attempts(cur, rows), nxt


def get_delivery(cur: duckdb.DuckDBPyConnection, org_id: str | None, delivery_id: str) -> dict[str, Any] | None:
    """One delivery with its attempts; org_id=None skips the tenant check (in-process callers)."""
    sql, params = _DELIVERY + "WHERE d.id = $id", {"id": delivery_id}
    if org_id is not None:
        sql += " AND w.org_id = $org"
        params["org"] = org_id
    row = row_as_dict(cur.execute(sql, params))
    return _with_attempts(cur, [row])[0] if row else None


def retry_delivery(cur: duckdb.DuckDBPyConnection, org_id: str | None, delivery_id: str) -> str:
    """Make a delivery due now. Returns ok | not_found | delivering | disabled."""
    row = row_as_dict(
        cur.execute(
            "SELECT d.status, w.enabled, w.org_id FROM webhook_deliveries d "
            "JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?",
            [delivery_id],
        )
    )
    if row is None or (org_id is not None and row["org_id"] != org_id):
        return "not_found"
    if row["status"] == "delivering":
        return "delivering"
    if not row["enabled"]:
        return "disabled"
    now = utcnow()
    cur.execute(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE id = ?",
        [now, now, delivery_id],
    )
    return "ok"
