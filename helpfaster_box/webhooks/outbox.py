"""The outbox: events are written in the same transaction as the change that caused them.

`emit` runs inside the caller's `db.write(...)`: if the change rolls back, so
does the event, and once it commits the event is on disk, so a crash or restart
loses nothing. `emit` writes one row and only when some enabled endpoint of the
org wants the event; the delivery dispatcher (delivery.py) later fans it out
into one delivery per subscribed endpoint and sends them, off the request path.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import msgspec

from helpfaster_box.store.ids import iso, new_id, utcnow

EVENT_TYPES = ("conversation.created", "conversation.escalated", "lead.captured", "message.sent")
TEST_EVENT = "webhook.test"


def wants(hook: dict[str, Any], type: str, chatbot_id: str | None) -> bool:
    """Does this endpoint (a webhooks row) subscribe to this event? JSON columns as stored."""
    if not hook["enabled"] or type not in json.loads(hook["events"]):
        return False
    return hook["chatbot_ids"] is None or chatbot_id in json.loads(hook["chatbot_ids"])


def _insert_event(
    cur: duckdb.DuckDBPyConnection,
    org_id: str,
    chatbot_id: str | None,
    type: str,
    data: Any,
    *,
    fanned_out: bool,
) -> str:
    event_id, now = new_id("evt"), utcnow()
    # Encoded once: every attempt sends these exact bytes, so signatures and
    # receivers' idempotency checks see the same message each time.
    payload = msgspec.json.encode({"id": event_id, "type": type, "createdAt": iso(now), "data": data})
    cur.execute(
        "INSERT INTO webhook_events (id, org_id, chatbot_id, type, payload, created_at, fanned_out) "
        "VALUES ($id, $org, $bot, $type, $payload, $now, $fanned_out)",
        {
            "id": event_id,
            "org": org_id,
            "bot": chatbot_id,
            "type": type,
            "payload": payload.decode(),
            "now": now,
            "fanned_out": fanned_out,
        },
    )
    return event_id


def insert_deliveries(cur: duckdb.DuckDBPyConnection, pairs: list[tuple[str, str, str]]) -> list[str]:
    """Deliveries, due now, for (webhook id, event id, status) triples; one statement.
    Status is `pending`, or `delivering` for one the dispatcher starts at once."""
    ids, now = [new_id("dlv") for _ in pairs], utcnow()
    cur.execute(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, status, attempts, next_attempt_at, "
        "created_at, updated_at) SELECT unnest($ids), unnest($hooks), unnest($events), "
        "unnest($statuses), 0, $now, $now, $now",
        {
            "ids": ids,
            "hooks": [p[0] for p in pairs],
            "events": [p[1] for p in pairs],
            "statuses": [p[2] for p in pairs],
            "now": now,
        },
    )
    return ids


Subscriptions = list[tuple[Any, Any, Any]]  # (enabled, events, chatbot_ids) of the org's enabled endpoints


def subscriptions(cur: duckdb.DuckDBPyConnection, org_id: str) -> Subscriptions:
    """The org's enabled endpoints' filters: read once by a transaction that emits several
    events (a chat turn emits three; one SELECT instead of three)."""
    return cur.execute(
        "SELECT enabled, events, chatbot_ids FROM webhooks WHERE org_id = $org AND enabled",
        {"org": org_id},
    ).fetchall()


def emit(
    cur: duckdb.DuckDBPyConnection,
    *,
    org_id: str,
    chatbot_id: str | None,
    type: str,
    data: Any,
    hooks: Subscriptions | None = None,
) -> str:
    """Record an event for the org's subscribed endpoints; returns the event id.

    Call it with the cursor of the transaction that makes the change. ``data``
    is the object as its GET endpoint shows it (a dict or a msgspec Struct).
    An event no enabled endpoint subscribes to is not stored (the outbox exists
    for delivery, and /chat should not pay for writes nobody reads); its id is
    still returned. ``hooks``: `subscriptions()` read earlier in the same transaction.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}; expected one of {EVENT_TYPES}")
    if hooks is None:
        hooks = subscriptions(cur, org_id)
    if not any(wants({"enabled": e, "events": ev, "chatbot_ids": b}, type, chatbot_id) for e, ev, b in hooks):
        return new_id("evt")
    return _insert_event(cur, org_id, chatbot_id, type, data, fanned_out=False)


def emit_test(cur: duckdb.DuckDBPyConnection, webhook: dict[str, Any]) -> tuple[str, str]:
    """A `webhook.test` event for one endpoint, whatever its filters; returns (event id, delivery id)."""
    data = {
        "webhookId": webhook["id"],
        "message": "This is a test event from HelpFaster Box. Verify its signature with your secret.",
    }
    event_id = _insert_event(cur, webhook["org_id"], None, TEST_EVENT, data, fanned_out=True)
    return event_id, insert_deliveries(cur, [(webhook["id"], event_id, "pending")])[0]
