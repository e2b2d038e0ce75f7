"""The evaluation worker: answers a run's cases through the real chat pipeline, off the
request path, and scores them.

Runs on the app's one APScheduler BackgroundScheduler (shared with webhook delivery and
topics), in its own one-thread executor: one run at a time across the box, each case
answered by `ChatService.compose_only` (retrieve -> gate -> compose, nothing stored, no
webhook), so a run costs what that many first chat turns cost (extractive, measured: 40
cases in 1.7 s, progress write included, on the 2-core box) and never competes with
itself for the two cores. The async
pipeline runs in an event loop of the worker thread (`asyncio.run` per run); the engine
delivers tokens to whichever loop asked.

Restarts: a run is `queued` or `running` in the database until it is scored, and its
cases are stored with it. At start every `queued` run is scheduled again and every
`running` one (a crash, or a shutdown that stopped it between two cases) is re-queued
and answered again from its first case: a half run has no score, and answering is cheap
next to a restart. Without the models (chat None) runs stay queued for the next start.

Uploads with `evaluate: true`: `source_ingested` is the knowledge worker's hook (wired in
web/app.py, so knowledge never imports this package); it queues a run of the saved set.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime
from typing import Any

import msgspec
from apscheduler.executors.pool import ThreadPoolExecutor as SchedulerPool
from apscheduler.schedulers.base import BaseScheduler

from helpfaster_box.chatbots import queries as bots_q
from helpfaster_box.chatbots.schemas import Chatbot
from helpfaster_box.errors import Busy
from helpfaster_box.evaluations import queries as q
from helpfaster_box.evaluations import service
from helpfaster_box.evaluations.facts import compile_fact
from helpfaster_box.evaluations.schemas import CaseResult
from helpfaster_box.store.db import Database
from helpfaster_box.store.ids import utcnow

log = logging.getLogger("helpfaster_box.evaluations")

JOB_PREFIX = "evaluation-"
EXECUTOR = "evaluations"
BUSY_RETRIES = 10  # a full engine queue (generative modes): wait as told, this many times


class Stopped(Exception):
    """The app is shutting down: the run stays `running` and is re-queued at the next start."""


class EvaluationRunner:
    def __init__(self, db: Database, scheduler: BaseScheduler, chat: Any) -> None:
        self.db = db
        self.chat = chat  # ChatService, or None when the models are not loaded
        self._scheduler = scheduler
        self._running = False
        self._stopping = threading.Event()
        self._done = threading.Condition()
        self._finished = 0  # runs ended (done, failed or stopped), for wait()

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self._scheduler.add_executor(SchedulerPool(1), EXECUTOR)
        self._running = True
        if self.chat is None:
            return
        for run_id in self.db.read(q.unfinished_run_ids):
            self.db.write(q.requeue, run_id)
            self.queue(run_id)

    def close(self) -> None:
        if not self._running:
            return
        self._running = False
        self._stopping.set()  # a run under way stops after its current case
        for job in self._scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX):
                job.remove()
        self._scheduler.remove_executor(EXECUTOR)  # waits for that case

    @property
    def available(self) -> bool:
        return self._running and self.chat is not None

    def queue(self, run_id: str) -> None:
        """Answer the run in the background (no-op once closed: it stays queued in the DB)."""
        if not self.available:
            return
        self._scheduler.add_job(
            self._execute_logged,
            args=[run_id],
            id=f"{JOB_PREFIX}{run_id}",
            replace_existing=True,
            executor=EXECUTOR,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
        )

    def source_ingested(self, source: dict[str, Any]) -> None:
        """KnowledgeService.on_ingested hook: an upload with `evaluate: true` is ingested."""
        if not source.get("evaluate"):
            return
        run_id = self.db.write(service.queue_for_source, source)
        if run_id is not None:
            self.queue(run_id)

    def wait(self, runs: int, timeout: float = 120.0) -> bool:
        """For tests and tools: block until `runs` runs have ended since start."""
        with self._done:
            return self._done.wait_for(lambda: self._finished >= runs, timeout)

    # -- the work ---------------------------------------------------------------------
    def _execute_logged(self, run_id: str) -> None:
        try:
            self.execute(run_id)
        except Stopped:
            log.info("evaluation %s stopped by shutdown; re-queued at the next start", run_id)
        except Exception as exc:
            log.exception("evaluation %s failed", run_id)
            self.db.write(q.fail_run, run_id, f"{type(exc).__name__}: the run failed; see the server log")
        finally:
            with self._done:
                self._finished += 1
                self._done.notify_all()

    def execute(self, run_id: str) -> None:
        run = self.db.read(q.get_run_any, run_id)
        if run is None or not self.db.write(q.mark_running, run_id):
            return  # its chatbot was deleted, or it ran already
        bot = self.db.read(bots_q.get_chatbot, run["org_id"], run["chatbot_id"])
        if bot is None:
            return
        cases = msgspec.json.decode(run["cases"])
        results = asyncio.run(self._answer_all(run_id, bot, cases))
        previous = self.db.read(q.previous_done_run, bot.id, run_id, utcnow())
        before = service.decode_results(previous["results"]) if previous else []
        self.db.write(
            lambda cur: q.finish_run(
                cur,
                run_id,
                results=msgspec.json.encode(results),
                totals=msgspec.json.encode(service.totals_of(results)),
                regressions=msgspec.json.encode(service.regressions_of(before, results)),
                previous_run_id=previous["id"] if previous else None,
            )
        )
        log.info("evaluation %s of %s: %d cases", run_id, bot.id, len(results))

    async def _answer_all(self, run_id: str, bot: Chatbot, cases: list[dict[str, Any]]) -> list[CaseResult]:
        results = []
        for i, case in enumerate(cases):
            if self._stopping.is_set():
                raise Stopped()
            results.append(await self._answer(bot, case))
            await self.db.awrite(q.set_completed, run_id, i + 1)
        return results

    async def _answer(self, bot: Chatbot, case: dict[str, Any]) -> CaseResult:
        facts = [compile_fact(text) for text in case["expected"]]
        for attempt in range(BUSY_RETRIES + 1):
            try:
                composed, sources = await self.chat.compose_only(bot.org_id, bot, case["question"])
                break
            except Busy as exc:
                if attempt == BUSY_RETRIES or self._stopping.is_set():
                    raise
                await asyncio.sleep(exc.retry_after_s)
        # The grounding contract (confidence, declineReason) when this build's replies carry it.
        confidence = getattr(composed, "confidence", None)
        reason = getattr(composed, "decline_reason", None)
        return service.judge(case, facts, composed.reply, composed.answered, sources, confidence, reason)
