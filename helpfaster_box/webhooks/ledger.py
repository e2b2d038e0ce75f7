"""The delivery ledger: all database work of one pump, in the pump's one transaction.

`record` writes the outcomes of finished attempts (retry or fail per `policy.py`, endpoint
health, disabling), `fan_out` turns new events into deliveries (starting those that fit the
budget at once), `claim` takes due deliveries. Each runs a fixed handful of statements,
however large the batch: the write lock is shared with the request path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from helpfaster_box.store.ids import utcnow
from helpfaster_box.webhooks import outbox
from helpfaster_box.webhooks import queries as webhooks_q
from helpfaster_box.webhooks.policy import GONE, RetryPolicy

LAST_SUCCESS_STEP = timedelta(minutes=1)


@dataclass(slots=True)
class Job:
    delivery_id: str
    webhook_id: str
    event_id: str
    attempt: int
    url: str
    secrets: list[str]
    body: bytes


@dataclass(slots=True)
class Outcome:
    job: Job
    attempted_at: datetime
    latency_ms: int
    status_code: int | None = None
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def fan_out(
    cur: duckdb.DuckDBPyConnection,
    hooks: dict[str, dict[str, Any]],
    budget: int,
    busy: dict[str, int],
    per_endpoint: int,
) -> list[Job]:
    """One delivery per (new event, endpoint that wants it now); those within the budget and
    the endpoint's share of the pool start at once (`delivering`), the rest wait `pending`."""
    events = cur.execute(
        "UPDATE webhook_events SET fanned_out = true WHERE NOT fanned_out "
        "RETURNING id, org_id, chatbot_id, type, payload"
    ).fetchall()
    by_org: dict[str, list[dict[str, Any]]] = {}
    for hook in hooks.values():
        by_org.setdefault(hook["org_id"], []).append(hook)
    triples: list[tuple[str, str, str]] = []
    starts: list[tuple[dict[str, Any], str, str]] = []
    for event_id, org_id, chatbot_id, type, payload in events:
        for hook in by_org.get(org_id, []):
            if not outbox.wants(hook, type, chatbot_id):
                continue
            start = len(starts) < budget and busy.get(hook["id"], 0) < per_endpoint
            if start:
                busy[hook["id"]] = busy.get(hook["id"], 0) + 1
                starts.append((hook, event_id, payload))
            triples.append((hook["id"], event_id, "delivering" if start else "pending"))
    if not triples:
        return []
    ids = outbox.insert_deliveries(cur, triples)
    started = [delivery_id for delivery_id, t in zip(ids, triples, strict=False) if t[2] == "delivering"]
    now = utcnow()
    return [
        make_job(hook, delivery_id, event_id, 1, payload, now)
        for delivery_id, (hook, event_id, payload) in zip(started, starts, strict=False)
    ]


def make_job(
    hook: dict[str, Any], delivery_id: str, event_id: str, attempt: int, payload: str, now: datetime
) -> Job:
    secrets = [hook["secret"]]  # opened by the dispatcher when it read the endpoints
    expires = hook["previous_secret_expires_at"]
    if hook["previous_secret"] and expires and expires > now:
        secrets.append(hook["previous_secret"])  # rotation: both sign for 24 h
    return Job(delivery_id, hook["id"], event_id, attempt, hook["url"], secrets, payload.encode())


def claim(
    cur: duckdb.DuckDBPyConnection, budget: int, per_endpoint: int, hooks: dict[str, dict[str, Any]]
) -> list[Job]:
    """Due deliveries, oldest first, with at most per_endpoint `delivering` per endpoint ->
    delivering. Narrow statements: one wide join with the payloads costs several times more."""
    now = utcnow()
    chosen = webhooks_q.claim_due(cur, budget, per_endpoint, now)
    if not chosen:
        return []
    orphans = [row[0] for row in chosen if not hooks.get(row[1], {}).get("enabled")]
    if orphans:  # normally none: disabling or deleting an endpoint settles its deliveries
        webhooks_q.fail_deliveries(cur, orphans, "Not sent: the endpoint is disabled.")
        chosen = [row for row in chosen if hooks.get(row[1], {}).get("enabled")]
    payloads = webhooks_q.payloads(cur, [row[2] for row in chosen])
    return [
        make_job(hooks[webhook_id], delivery_id, event_id, attempts + 1, payloads[event_id], now)
        for delivery_id, webhook_id, event_id, attempts in chosen
    ]


def record(
    cur: duckdb.DuckDBPyConnection,
    outcomes: list[Outcome],
    hooks: dict[str, dict[str, Any]],
    policy: RetryPolicy,
) -> list[str]:
    """All outcomes of a pump in a fixed handful of statements: the write lock is shared
    with the request path, so its hold time must not grow with the batch. Returns the
    status each attempt left its delivery in (succeeded, pending, failed)."""
    if not outcomes:
        return []
    now = utcnow()
    state = {
        wid: {
            "enabled": h["enabled"],
            "streak": h["failure_streak"],
            "since": h["since"],
            "success": None,
        }
        for wid, h in hooks.items()
    }
    rows: list[tuple[Any, ...]] = []
    to_disable: dict[str, str] = {}
    for o in sorted(outcomes, key=lambda o: o.attempted_at):
        job = o.job
        hook = state.get(job.webhook_id) or {"enabled": False, "streak": 0, "since": now, "success": None}
        status, next_at = "failed", None
        if o.ok:
            status, hook["streak"], hook["since"], hook["success"] = "succeeded", 0, now, now
        else:
            hook["streak"] += 1
            if hook["enabled"] and policy.retries_left(job.attempt, o.status_code):
                delay = policy.delay(job.attempt, o.retry_after_s)
                status, next_at = "pending", now + timedelta(seconds=delay)
            reason = policy.disable_reason(o.status_code, hook["streak"], hook["since"], now)
            if hook["enabled"] and reason:
                if o.status_code == GONE:
                    to_disable[job.webhook_id] = reason
                else:
                    to_disable.setdefault(job.webhook_id, reason)
        rows.append(
            (
                job.delivery_id,
                job.attempt,
                o.attempted_at,
                o.status_code,
                o.latency_ms,
                o.error,
                status,
                next_at,
            )
        )
    webhooks_q.record_attempts(cur, rows, now)
    changed = [  # lastSuccessAt is kept to the minute: no write per success to a busy endpoint
        wid
        for wid, st in state.items()
        if st["streak"] != hooks[wid]["failure_streak"]
        or (
            st["success"]
            and (
                hooks[wid]["last_success_at"] is None
                or st["success"] - hooks[wid]["last_success_at"] >= LAST_SUCCESS_STEP
            )
        )
    ]
    if changed:
        webhooks_q.set_health(cur, [(w, state[w]["streak"], state[w]["success"]) for w in changed])
    for webhook_id, reason in to_disable.items():  # after the updates: this fails what is still pending
        webhooks_q.disable(cur, webhook_id, reason)
    return [row[6] for row in rows]
