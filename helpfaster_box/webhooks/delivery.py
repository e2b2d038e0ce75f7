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
import threading
import time
from datetime import UTC, datetime, timedelta

import duckdb
from apscheduler.executors.pool import ThreadPoolExecutor as SchedulerPool
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from helpfaster_box.observability.metrics import Metrics
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import Database, rows_as_dicts
from helpfaster_box.store.ids import utcnow
from helpfaster_box.store.secretbox import SecretBox
from helpfaster_box.webhooks import ledger
from helpfaster_box.webhooks import queries as webhooks_q
from helpfaster_box.webhooks.ledger import Job, Outcome
from helpfaster_box.webhooks.policy import RetryPolicy
from helpfaster_box.webhooks.sender import Answer, Sender

log = logging.getLogger("helpfaster_box.webhooks")

POOL_SIZE = 32
PER_ENDPOINT = 8  # a hanging receiver holds at most this many of the POOL_SIZE slots
TICK_S = 0.5
SETTLE_S = 0.005
OUTCOMES = {"succeeded": "succeeded", "pending": "retrying", "failed": "failed"}  # status -> metric
RETENTION = timedelta(days=30)  # the delivery log (and the events it sent) is kept this long
JOB_ID = "webhook-delivery"
PRUNE_JOB_ID = "webhook-log-prune"
EXECUTOR = "webhooks"


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
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.policy = RetryPolicy(scale=settings.webhook_backoff_scale)
        self.db = db
        self.metrics = metrics or Metrics()
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
        self.box = SecretBox.load(settings.secret_key_path)
        self._opened: dict[str, str] = {}  # sealed value -> plaintext, for the pump's reads
        self._sender = Sender(
            timeout_s=settings.webhook_timeout_s,
            allow_private=settings.webhook_allow_private,
            max_idle=per_endpoint,
        )

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        sealed = self.db.write(webhooks_q.seal_plaintext_secrets, self.box)
        if sealed:
            log.info(
                "webhooks: sealed %d plaintext signing secrets with %s", sealed, self.settings.secret_key_path
            )
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
        for hook in hooks.values():
            hook["secret"] = self._open(hook["secret"])
            if hook["previous_secret"]:
                hook["previous_secret"] = self._open(hook["previous_secret"])
        for status in ledger.record(cur, outcomes, hooks, self.policy):
            # (a pump whose transaction rolls back records its outcomes again: rare, counted twice)
            self.metrics.webhook_attempt(OUTCOMES[status])
        if budget <= 0:
            return [], True
        jobs = ledger.fan_out(cur, hooks, budget, busy, self.per_endpoint)
        if not webhooks_q.work_waiting(cur, events=False):
            return jobs, False
        if len(jobs) < budget:
            jobs += ledger.claim(cur, budget - len(jobs), self.per_endpoint, hooks)
        return jobs, webhooks_q.work_waiting(cur, events=False)

    def _open(self, value: str) -> str:
        """A stored secret in plaintext; opened once per sealed value (AES-GCM, ~2 us, but
        the pump reads every endpoint twice a second)."""
        plain = self._opened.get(value)
        if plain is None:
            if len(self._opened) > 10_000:
                self._opened.clear()
            plain = self._opened[value] = self.box.open(value)
        return plain

    def _prune(self) -> None:
        try:
            self.db.write(webhooks_q.prune, utcnow() - RETENTION)
        except Exception:
            log.exception("webhooks: pruning the delivery log failed; will try again")

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
