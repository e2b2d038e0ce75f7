"""Webhook delivery: off the request path, in parallel, with durable retries.

An APScheduler job (every TICK_S, or at once after `poke`) runs the pump: one
short write transaction records the outcomes of finished attempts and claims
due deliveries (pending -> delivering), which go to a thread pool of signed
POSTs (sender.py). An endpoint holds at most PER_ENDPOINT of the pool's slots,
so a slow or hanging receiver (webhook_timeout_s per attempt) delays only itself.
While due deliveries wait (a backlog), workers pump as they finish, so it drains
at full speed; otherwise outcomes are recorded by the next tick together with its
claims. Every transaction costs CPU that chat generation on the same box needs,
so a chat's burst of deliveries takes about one transaction, not three.

Everything is in DuckDB: a delivery left `delivering` by a crash goes back to
`pending` at start, so a restart loses nothing (delivery is at least once;
`webhook-id`, the event id, is the receiver's idempotency key).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
from apscheduler.executors.pool import ThreadPoolExecutor as SchedulerPool
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from helpfaster_box.settings import Settings
from helpfaster_box.store.db import Database, rows_as_dicts
from helpfaster_box.store.ids import utcnow
from helpfaster_box.webhooks import outbox
from helpfaster_box.webhooks import queries as webhooks_q
from helpfaster_box.webhooks.sender import Answer, Sender

log = logging.getLogger("helpfaster_box.webhooks")

# Delay before retry n (after failed attempt n), seconds, times settings.webhook_backoff_scale:
# about 17.6 h of retries over 7 attempts, then the delivery is failed.
SCHEDULE_S = (5, 300, 1_800, 7_200, 18_000, 36_000)
JITTER = 0.2  # each delay is scaled by a random factor in [0.8, 1.2] so retries do not arrive in herds
MAX_RETRY_AFTER_S = 86_400
# An endpoint is disabled after sustained failure: at least DISABLE_AFTER_FAILURES consecutive
# failed attempts AND no success for DISABLE_AFTER_QUIET (times the backoff scale). Both: a burst
# of events to a receiver that is down for ten minutes must not disable it, nor must a few
# retried events to a quiet endpoint during one bad afternoon.
DISABLE_AFTER_FAILURES = 20
DISABLE_AFTER_QUIET = timedelta(hours=24)
POOL_SIZE = 32
PER_ENDPOINT = 8  # a hanging receiver holds at most this many of the POOL_SIZE slots
TICK_S = 0.5
SETTLE_S = 0.005
LAST_SUCCESS_STEP = timedelta(minutes=1)
RETENTION = timedelta(days=30)  # the delivery log (and the events it sent) is kept this long
JOB_ID = "webhook-delivery"
PRUNE_JOB_ID = "webhook-log-prune"
EXECUTOR = "webhooks"


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


class WebhookDispatcher:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        scheduler: BaseScheduler | None = None,
        pool_size: int = POOL_SIZE,
        per_endpoint: int = PER_ENDPOINT,
        tick_s: float = TICK_S,
    ) -> None:
        self.settings = settings
        self.db = db
        self.pool_size = pool_size
        self.per_endpoint = per_endpoint
        self.tick_s = tick_s
        self._own_scheduler = scheduler is None
        self._scheduler = scheduler or BackgroundScheduler(timezone="UTC")
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # guards the fields below
        self._inflight: dict[str, int] = {}  # webhook id -> claimed, not yet recorded
        self._outcomes: list[Outcome] = []
        self._pumping = False
        self._again = False
        self._backlog = False  # due deliveries were left unclaimed by the last pump
        self._closing = False
        self._running = False
        self._sender = Sender(
            timeout_s=settings.webhook_timeout_s,
            allow_private=settings.webhook_allow_private,
            max_idle=per_endpoint,
        )

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        recovered = self.db.write(webhooks_q.recover_interrupted)
        if recovered:
            log.info("webhooks: %d deliveries interrupted by a stop or crash are pending again", recovered)
        self._pool = concurrent.futures.ThreadPoolExecutor(self.pool_size, thread_name_prefix="webhook")
        # Our own executor alias, so its "Running job" INFO lines (twice a second) can be muted
        # without touching other jobs' logs.
        logging.getLogger(f"apscheduler.executors.{EXECUTOR}").setLevel(logging.WARNING)
        self._scheduler.add_executor(SchedulerPool(2), EXECUTOR)
        self._scheduler.add_job(
            self.pump,
            "interval",
            seconds=self.tick_s,
            id=JOB_ID,
            replace_existing=True,
            executor=EXECUTOR,
            coalesce=True,
            max_instances=2,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.add_job(
            self._prune,
            "interval",
            hours=1,
            id=PRUNE_JOB_ID,
            replace_existing=True,
            executor=EXECUTOR,
            coalesce=True,
            max_instances=1,
            next_run_time=datetime.now(UTC) + timedelta(minutes=1),
        )
        if self._own_scheduler:
            self._scheduler.start()
        self._running = True

    def close(self) -> None:
        """Stop claiming, let attempts under way finish (bounded by the timeout), record them.
        Deliveries claimed but not yet started stay `delivering` and are pending again at start."""
        if not self._running:
            return
        self._running = False
        with self._lock:
            self._closing = True
        if self._own_scheduler:
            self._scheduler.shutdown(wait=True)
        else:
            self._scheduler.remove_job(JOB_ID)
            self._scheduler.remove_job(PRUNE_JOB_ID)
            self._scheduler.remove_executor(EXECUTOR)  # waits for a job under way
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.pump()
        self._sender.close()

    # -- public helpers ----------------------------------------------------------
    def poke(self) -> None:
        """Run the pump now instead of at the next tick (something just became due)."""
        if self._running:
            try:
                self._scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))
            except Exception:  # the scheduler is shutting down: the next start picks it up
                log.debug("webhooks: poke ignored", exc_info=True)

    def deliver_now(self, delivery_id: str) -> str:
        """Make a delivery due now (manual retry). Returns ok | not_found | delivering | disabled."""
        result = self.db.write(webhooks_q.retry_delivery, None, delivery_id)
        if result == "ok":
            self.poke()
        return result

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """True once nothing is in flight and nothing is due now (future retries may remain)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = bool(self._outcomes) or any(self._inflight.values()) or self._pumping
            if not busy and not self.db.read(webhooks_q.work_waiting):
                return True
            time.sleep(0.02)
        return False

    # -- the pump ----------------------------------------------------------------
    def pump(self, settle: bool = False) -> None:
        """Record finished attempts and claim due deliveries; any thread may call it.
        settle: a worker just finished; if others are still in flight, wait a moment so one
        transaction records them all (each commit costs milliseconds of the shared write lock)."""
        with self._lock:
            if self._pumping:
                self._again = True
                return
            self._pumping = True
            settle = settle and sum(self._inflight.values()) > len(self._outcomes)
        try:
            if settle:
                time.sleep(SETTLE_S)
            while True:
                with self._lock:
                    self._again = False
                self._pump_once()
                with self._lock:
                    if not self._again:
                        self._pumping = False
                        return
        except BaseException:
            with self._lock:
                self._pumping = False
            raise

    def _pump_once(self) -> None:
        with self._lock:
            outcomes, self._outcomes = self._outcomes, []
            claiming = not self._closing and self._pool is not None
            busy = dict(self._inflight)  # per endpoint, once these outcomes are recorded
            for o in outcomes:
                busy[o.job.webhook_id] -= 1
            budget = self.pool_size - sum(busy.values()) if claiming else 0
        if not outcomes and (budget <= 0 or not self.db.read(webhooks_q.work_waiting)):
            return
        try:
            jobs, self._backlog = self.db.write(self._record_and_claim, outcomes, budget, busy)
        except Exception:
            log.exception("webhooks: could not record outcomes / claim deliveries; will retry")
            with self._lock:
                self._outcomes[:0] = outcomes
            return
        with self._lock:
            for o in outcomes:
                self._inflight[o.job.webhook_id] -= 1
                if not self._inflight[o.job.webhook_id]:
                    del self._inflight[o.job.webhook_id]
            for job in jobs:
                self._inflight[job.webhook_id] = self._inflight.get(job.webhook_id, 0) + 1
        for job in jobs:
            assert self._pool is not None
            # A pool already shut down raises: the job stays `delivering`, recovered at next start.
            with contextlib.suppress(RuntimeError):
                self._pool.submit(self._run, job)

    def _record_and_claim(
        self, cur: duckdb.DuckDBPyConnection, outcomes: list[Outcome], budget: int, busy: dict[str, int]
    ) -> tuple[list[Job], bool]:
        """Record outcomes, fan out new events, claim due deliveries, in one transaction.
        Returns the jobs to start and whether due deliveries are still waiting."""
        # Every statement costs ~0.5-1 ms of CPU taken from chat on the same cores, so one
        # read of the (small) endpoints table serves all three steps, and a chat's fresh
        # deliveries start as they are created instead of being claimed by another statement.
        hooks = {
            r["id"]: r
            for r in rows_as_dicts(
                cur.execute(
                    "SELECT id, org_id, enabled, events, chatbot_ids, url, secret, previous_secret, "
                    "previous_secret_expires_at, failure_streak, last_success_at, "
                    "coalesce(last_success_at, created_at) AS since FROM webhooks"
                )
            )
        }
        self._record(cur, outcomes, hooks)
        if budget <= 0:
            return [], True
        jobs = self._fan_out(cur, hooks, budget, busy)
        if not webhooks_q.work_waiting(cur, events=False):
            return jobs, False
        if len(jobs) < budget:
            jobs += self._claim(cur, budget - len(jobs), hooks)
        return jobs, webhooks_q.work_waiting(cur, events=False)

    def _fan_out(
        self,
        cur: duckdb.DuckDBPyConnection,
        hooks: dict[str, dict[str, Any]],
        budget: int,
        busy: dict[str, int],
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
                start = len(starts) < budget and busy.get(hook["id"], 0) < self.per_endpoint
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
            self._job(hook, delivery_id, event_id, 1, payload, now)
            for delivery_id, (hook, event_id, payload) in zip(started, starts, strict=False)
        ]

    @staticmethod
    def _job(
        hook: dict[str, Any], delivery_id: str, event_id: str, attempt: int, payload: str, now: datetime
    ) -> Job:
        secrets = [hook["secret"]]
        expires = hook["previous_secret_expires_at"]
        if hook["previous_secret"] and expires and expires > now:
            secrets.append(hook["previous_secret"])  # rotation: both sign for 24 h
        return Job(delivery_id, hook["id"], event_id, attempt, hook["url"], secrets, payload.encode())

    def _claim(
        self, cur: duckdb.DuckDBPyConnection, budget: int, hooks: dict[str, dict[str, Any]]
    ) -> list[Job]:
        """Due deliveries, oldest first, with at most per_endpoint `delivering` per endpoint ->
        delivering. Narrow statements: one wide join with the payloads costs several times more."""
        now = utcnow()
        chosen = webhooks_q.claim_due(cur, budget, self.per_endpoint, now)
        if not chosen:
            return []
        orphans = [row[0] for row in chosen if not hooks.get(row[1], {}).get("enabled")]
        if orphans:  # normally none: disabling or deleting an endpoint settles its deliveries
            webhooks_q.fail_deliveries(cur, orphans, "Not sent: the endpoint is disabled.")
            chosen = [row for row in chosen if hooks.get(row[1], {}).get("enabled")]
        payloads = webhooks_q.payloads(cur, [row[2] for row in chosen])
        return [
            self._job(hooks[webhook_id], delivery_id, event_id, attempts + 1, payloads[event_id], now)
            for delivery_id, webhook_id, event_id, attempts in chosen
        ]

    def _prune(self) -> None:
        try:
            self.db.write(webhooks_q.prune, utcnow() - RETENTION)
        except Exception:
            log.exception("webhooks: pruning the delivery log failed; will try again")

    def _record(
        self, cur: duckdb.DuckDBPyConnection, outcomes: list[Outcome], hooks: dict[str, dict[str, Any]]
    ) -> None:
        """All outcomes of a pump in a fixed handful of statements: the write lock is shared
        with the request path, so its hold time must not grow with the batch."""
        if not outcomes:
            return
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
                if hook["enabled"] and o.status_code != 410 and job.attempt <= len(SCHEDULE_S):
                    status, next_at = (
                        "pending",
                        now + timedelta(seconds=self._delay(job.attempt, o.retry_after_s)),
                    )
                if hook["enabled"] and o.status_code == 410:
                    to_disable[job.webhook_id] = "receiver answered 410 Gone"
                elif (
                    hook["enabled"]
                    and hook["streak"] >= DISABLE_AFTER_FAILURES
                    and (now - hook["since"] >= DISABLE_AFTER_QUIET * self.settings.webhook_backoff_scale)
                ):
                    to_disable.setdefault(
                        job.webhook_id,
                        f"{hook['streak']} consecutive failed attempts and no successful delivery for "
                        f"{self._quiet_text()}",
                    )
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

    def _delay(self, attempt: int, retry_after_s: float | None) -> float:
        delay = SCHEDULE_S[attempt - 1] * self.settings.webhook_backoff_scale
        delay *= random.uniform(1 - JITTER, 1 + JITTER)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
        return delay

    def _quiet_text(self) -> str:
        seconds = DISABLE_AFTER_QUIET.total_seconds() * self.settings.webhook_backoff_scale
        return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"

    # -- one attempt (pool thread) -------------------------------------------------
    def _run(self, job: Job) -> None:
        attempted_at = utcnow()
        try:
            answer = self._sender.send(job.url, job.event_id, job.secrets, job.body)
        except Exception as exc:  # never lose a claimed delivery to a bug: record it as a failure
            log.exception("webhooks: attempt of %s crashed", job.delivery_id)
            answer = Answer(0, error=f"internal error: {type(exc).__name__}")
        outcome = Outcome(
            job, attempted_at, answer.latency_ms, answer.status_code, answer.error, answer.retry_after_s
        )
        with self._lock:
            self._outcomes.append(outcome)
        # With a backlog, record at once so the freed slot takes the next delivery; otherwise the
        # next tick records this together with whatever it claims: one transaction, not two.
        if self._backlog:
            self.pump(settle=True)
