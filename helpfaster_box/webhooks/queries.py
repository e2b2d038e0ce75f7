"""Webhook endpoints and their delivery log (the outbox itself is webhooks/outbox.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import duckdb

from helpfaster_box.store.db import decode_json, row_as_dict, rows_as_dicts
from helpfaster_box.store.ids import new_id, utcnow
from helpfaster_box.store.pagination import page
from helpfaster_box.store.secretbox import SecretBox, is_sealed
from helpfaster_box.webhooks.signing import new_secret

ROTATION_GRACE = timedelta(hours=24)
_JSON = ("events", "chatbot_ids")


def _decode(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return decode_json(row, _JSON)


def _params(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if v is None else json.dumps(v)) if k in _JSON else v for k, v in values.items()}


def create_webhook(
    cur: duckdb.DuckDBPyConnection, org_id: str, values: dict[str, Any], box: SecretBox
) -> dict[str, Any]:
    """values: url, description, events, chatbot_ids. Returns the row with its secret in
    plaintext (to show once); the database holds it sealed."""
    now = utcnow()
    secret = new_secret()
    row = {
        "id": new_id("wh"),
        "org_id": org_id,
        **values,
        "secret": box.seal(secret),
        "previous_secret": None,
        "previous_secret_expires_at": None,
        "enabled": True,
        "disabled_reason": None,
        "disabled_at": None,
        "failure_streak": 0,
        "last_success_at": None,
        "created_at": now,
        "updated_at": now,
    }
    cur.execute(
        f"INSERT INTO webhooks ({', '.join(row)}) VALUES ({', '.join('$' + k for k in row)})", _params(row)
    )
    return {**row, "secret": secret}


def get_webhook(cur: duckdb.DuckDBPyConnection, org_id: str, webhook_id: str) -> dict[str, Any] | None:
    return _decode(
        row_as_dict(cur.execute("SELECT * FROM webhooks WHERE id = ? AND org_id = ?", [webhook_id, org_id]))
    )


def page_webhooks(
    cur: duckdb.DuckDBPyConnection, org_id: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    rows, nxt = page(
        cur, "SELECT * FROM webhooks WHERE org_id = $org", {"org": org_id}, limit=limit, cursor=cursor
    )
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


def rotate_secret(
    cur: duckdb.DuckDBPyConnection, org_id: str, webhook_id: str, box: SecretBox
) -> dict[str, Any] | None:
    """New secret; the current one keeps signing for ROTATION_GRACE (a third rotation in that window
    retires the oldest at once: only two secrets ever sign). The row returned has the new
    secret in plaintext, to show once."""
    now = utcnow()
    plain = new_secret()
    secret = box.seal(plain)
    cur.execute(
        "UPDATE webhooks SET previous_secret = secret, previous_secret_expires_at = $expires, secret = $secret, "
        "updated_at = $now WHERE id = $id AND org_id = $org",
        {"expires": now + ROTATION_GRACE, "secret": secret, "now": now, "id": webhook_id, "org": org_id},
    )
    row = get_webhook(cur, org_id, webhook_id)
    return None if row is None else {**row, "secret": plain}


def seal_plaintext_secrets(cur: duckdb.DuckDBPyConnection, box: SecretBox) -> int:
    """Seal, in place, secrets stored in plaintext by a version before sealing; returns how many."""
    rows = cur.execute("SELECT id, secret, previous_secret FROM webhooks").fetchall()
    done = 0
    for webhook_id, secret, previous in rows:
        if is_sealed(secret) and is_sealed(previous):
            continue
        cur.execute(
            "UPDATE webhooks SET secret = ?, previous_secret = ? WHERE id = ?",
            [
                secret if is_sealed(secret) else box.seal(secret),
                previous if is_sealed(previous) else box.seal(previous),
                webhook_id,
            ],
        )
        done += 1
    return done


def existing_chatbots(cur: duckdb.DuckDBPyConnection, org_id: str, chatbot_ids: list[str]) -> set[str]:
    rows = cur.execute(
        "SELECT id FROM chatbots WHERE org_id = $org AND list_contains($ids, id)",
        {"org": org_id, "ids": chatbot_ids},
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


# -- the dispatcher's queries (webhooks/delivery.py) --------------------------------


def recover_interrupted(cur: duckdb.DuckDBPyConnection) -> int:
    """Deliveries left `delivering` by a stop or crash become pending (due at once)."""
    rows = cur.execute(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = coalesce(next_attempt_at, $now), "
        "updated_at = $now WHERE status = 'delivering' RETURNING id",
        {"now": utcnow()},
    ).fetchall()
    return len(rows)


def work_waiting(cur: duckdb.DuckDBPyConnection, *, events: bool = True) -> bool:
    """A pending delivery is due (or, with events, an event awaits fan-out)."""
    sql = "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?"
    if events:
        sql += " UNION ALL SELECT 1 FROM webhook_events WHERE NOT fanned_out"
    return bool(cur.execute(sql + " LIMIT 1", [utcnow()]).fetchall())


def claim_due(
    cur: duckdb.DuckDBPyConnection, budget: int, per_endpoint: int, now: datetime
) -> list[tuple[str, str, str, int]]:
    """Due deliveries -> delivering, oldest first, leaving at most per_endpoint `delivering` per
    endpoint. Returns (delivery id, webhook id, event id, attempts so far)."""
    return cur.execute(
        "UPDATE webhook_deliveries SET status = 'delivering', updated_at = $now WHERE id IN ("
        " SELECT p.id FROM (SELECT id, webhook_id, next_attempt_at, row_number() OVER"
        "  (PARTITION BY webhook_id ORDER BY next_attempt_at, id) AS rank FROM webhook_deliveries"
        "  WHERE status = 'pending' AND next_attempt_at <= $now) p"
        " LEFT JOIN (SELECT webhook_id, count(*) AS busy FROM webhook_deliveries"
        "  WHERE status = 'delivering' GROUP BY webhook_id) b ON b.webhook_id = p.webhook_id"
        " WHERE p.rank + coalesce(b.busy, 0) <= $cap ORDER BY p.next_attempt_at, p.id LIMIT $budget"
        ") RETURNING id, webhook_id, event_id, attempts",
        {"now": now, "cap": per_endpoint, "budget": budget},
    ).fetchall()


def fail_deliveries(cur: duckdb.DuckDBPyConnection, delivery_ids: list[str], error: str) -> None:
    cur.execute(
        "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, updated_at = $now, "
        "last_error = $error WHERE list_contains($ids, id)",
        {"now": utcnow(), "error": error, "ids": delivery_ids},
    )


def payloads(cur: duckdb.DuckDBPyConnection, event_ids: list[str]) -> dict[str, str]:
    # A narrow lookup: joining the payloads into the claim costs several times more.
    return dict(
        cur.execute(
            "SELECT id, payload FROM webhook_events WHERE list_contains($ids, id)", {"ids": event_ids}
        ).fetchall()
    )


def record_attempts(cur: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]], now: datetime) -> None:
    """rows: (delivery id, attempt, attempted at, status code, latency ms, error, new status,
    next attempt at). Set-based, a fixed number of statements however many rows; a delivery
    deleted with its endpoint meanwhile is skipped."""
    cols = [list(c) for c in zip(*rows, strict=False)]
    names = ("id", "attempt", "at", "code", "latency", "error", "status", "next")
    p = dict(zip(names, cols, strict=False))
    updated = cur.execute(
        "UPDATE webhook_deliveries SET status = u.status, attempts = u.attempt, next_attempt_at = u.next, "
        "last_status_code = u.code, last_error = u.error, updated_at = $now FROM (SELECT "
        "unnest($id::VARCHAR[]) AS id, unnest($status::VARCHAR[]) AS status, "
        "unnest($attempt::INTEGER[]) AS attempt, unnest($next::TIMESTAMP[]) AS next, "
        "unnest($code::INTEGER[]) AS code, unnest($error::VARCHAR[]) AS error) u "
        "WHERE webhook_deliveries.id = u.id RETURNING webhook_deliveries.id",
        {k: p[k] for k in ("id", "status", "attempt", "next", "code", "error")} | {"now": now},
    ).fetchall()
    alive = {r[0] for r in updated}
    keep = [i for i, delivery_id in enumerate(p["id"]) if delivery_id in alive]
    cur.execute(
        "INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code, latency_ms, error) "
        "SELECT unnest($id::VARCHAR[]), unnest($attempt::INTEGER[]), unnest($at::TIMESTAMP[]), "
        "unnest($code::INTEGER[]), unnest($latency::INTEGER[]), unnest($error::VARCHAR[])",
        {k: [p[k][i] for i in keep] for k in ("id", "attempt", "at", "code", "latency", "error")},
    )


def set_health(cur: duckdb.DuckDBPyConnection, changes: list[tuple[str, int, datetime | None]]) -> None:
    """(webhook id, consecutive failures, time of a success or None) per endpoint."""
    cur.execute(
        "UPDATE webhooks SET failure_streak = u.streak, "
        "last_success_at = coalesce(u.success, webhooks.last_success_at) FROM (SELECT "
        "unnest($id::VARCHAR[]) AS id, unnest($streak::INTEGER[]) AS streak, "
        "unnest($success::TIMESTAMP[]) AS success) u WHERE webhooks.id = u.id",
        {
            "id": [c[0] for c in changes],
            "streak": [c[1] for c in changes],
            "success": [c[2] for c in changes],
        },
    )


def prune(cur: duckdb.DuckDBPyConnection, cutoff: datetime) -> None:
    """Drop finished deliveries, their attempts and their events older than cutoff."""
    params = {"cutoff": cutoff}
    old = "SELECT id FROM webhook_deliveries WHERE status IN ('succeeded', 'failed') AND updated_at < $cutoff"
    cur.execute(f"DELETE FROM webhook_attempts WHERE delivery_id IN ({old})", params)
    cur.execute(f"DELETE FROM webhook_deliveries WHERE id IN ({old})", params)
    cur.execute(
        "DELETE FROM webhook_events e WHERE created_at < $cutoff AND fanned_out AND NOT EXISTS "
        "(SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)",
        params,
    )


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


def get_delivery(
    cur: duckdb.DuckDBPyConnection, org_id: str | None, delivery_id: str
) -> dict[str, Any] | None:
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


def backlog(cur: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Deliveries not finished, by status, and events not yet fanned out (for metrics)."""
    rows = cur.execute(
        "SELECT status, count(*) FROM webhook_deliveries WHERE status IN ('pending', 'delivering') "
        "GROUP BY status UNION ALL SELECT 'event', count(*) FROM webhook_events WHERE NOT fanned_out"
    ).fetchall()
    return {"pending": 0, "delivering": 0, "event": 0, **{status: n for status, n in rows}}
