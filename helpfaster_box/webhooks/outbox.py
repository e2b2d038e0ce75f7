"""The outbox: events are written in the same transaction as the change that caused them.

`emit` runs inside the caller's `db.write(...)`: if the change rolls back, so
does the event, and once it commits the event and its deliveries are on disk,
so a crash or restart loses nothing. Delivery happens later, off the request
path (`delivery.WebhookDispatcher`).
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import msgspec

from ..store.ids import iso, new_id, utcnow

EVENT_TYPES = ("conversation.created", "conversation.escalated", "lead.captured", "message.sent")
TEST_EVENT = "webhook.test"


def _insert_event(
    cur: duckdb.DuckDBPyConnection, org_id: str, chatbot_id: str | None, type: str, data: Any
) -> str:
    event_id, now = new_id("evt"), utcnow()
    # Encoded once: every attempt sends these exact bytes, so signatures and
    # receivers' idempotency checks see the same message each time.
    payload = msgspec.json.encode({"id": event_id, "type": type, "createdAt": iso(now), "data": data})
    cur.execute(
        "INSERT INTO webhook_events (id, org_id, chatbot_id, type, payload, created_at) "
        "VALUES ($id, $org, $bot, $type, $payload, $now)",
        {"id": event_id, "org": org_id, "bot": chatbot_id, "type": type,
         "payload": payload.decode(), "now": now},
    )
    return event_id


def insert_deliveries(cur: duckdb.DuckDBPyConnection, webhook_ids: list[str], event_id: str) -> list[str]:
    """Pending deliveries of one event, due now; one statement however many endpoints."""
    ids, now = [new_id("dlv") for _ in webhook_ids], utcnow()
    cur.execute(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, status, attempts, next_attempt_at, "
        "created_at, updated_at) SELECT unnest($ids), unnest($hooks), $evt, 'pending', 0, $now, $now, $now",
        {"ids": ids, "hooks": webhook_ids, "evt": event_id, "now": now},
    )
    return ids


def subscribers(cur: duckdb.DuckDBPyConnection, org_id: str, chatbot_id: str | None, type: str) -> list[str]:
    """Enabled endpoints of the org that want this event type from this chatbot."""
    rows = cur.execute(
        "SELECT id, events, chatbot_ids FROM webhooks WHERE org_id = ? AND enabled ORDER BY created_at",
        [org_id],
    ).fetchall()
    wanted = []
    for webhook_id, events, chatbot_ids in rows:
        if type not in json.loads(events):
            continue
        if chatbot_ids is not None and chatbot_id not in json.loads(chatbot_ids):
            continue
        wanted.append(webhook_id)
    return wanted


def emit(cur: duckdb.DuckDBPyConnection, *, org_id: str, chatbot_id: str | None, type: str, data: Any) -> str:
    """Record an event and one pending delivery per subscribed endpoint; returns the event id.

    Call it with the cursor of the transaction that makes the change. ``data``
    is the object as its GET endpoint shows it (a dict or a msgspec Struct).
    An event no endpoint subscribes to is not stored (the outbox exists for
    delivery, and /chat should not pay for writes nobody reads); its id is
    still returned.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}; expected one of {EVENT_TYPES}")
    targets = subscribers(cur, org_id, chatbot_id, type)
    if not targets:
        return new_id("evt")
    event_id = _insert_event(cur, org_id, chatbot_id, type, data)
    insert_deliveries(cur, targets, event_id)
    return event_id


def emit_test(cur: duckdb.DuckDBPyConnection, webhook: dict[str, Any]) -> tuple[str, str]:
    """A `webhook.test` event for one endpoint, whatever its filters; returns (event id, delivery id)."""
    data = {
        "webhookId": webhook["id"],
        "message": "This is a test event from HelpFaster Box. Verify its signature with your secret.",
    }
    event_id = _insert_event(cur, webhook["org_id"], None, TEST_EVENT, data)
    return event_id, insert_deliveries(cur, [webhook["id"]], event_id)[0]
