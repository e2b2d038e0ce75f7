"""The topics job: recompute a chatbot's topic clustering off the request path.

Runs on the app's one APScheduler BackgroundScheduler (opened in the lifespan, shared
with webhook delivery), in its own one-thread executor: clusterings run one at a time,
never beside another (they use both cores for a moment). Two triggers: an interval job
(`topics_refresh_minutes`) that refreshes every chatbot with questions newer than its
last clustering, and `queue(bot)` (POST .../topics/refresh), a one-off job due now.

A refresh reads the questions of the last `topics_window_days` (at most MAX_QUESTIONS,
newest first) with their stored vectors; questions stored before vectors were kept are
embedded once and their vectors saved, so later refreshes never re-embed.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from apscheduler.executors.pool import ThreadPoolExecutor as SchedulerPool
from apscheduler.schedulers.base import BaseScheduler

from helpfaster_box.analytics import queries as q
from helpfaster_box.analytics import topics
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import Database
from helpfaster_box.store.ids import new_id, utcnow

log = logging.getLogger("helpfaster_box.analytics")

MAX_QUESTIONS = 20_000
JOB_ID = "topics-refresh"
EXECUTOR = "topics"


class TopicRefresher:
    def __init__(self, settings: Settings, db: Database, scheduler: BaseScheduler, embedder: Any) -> None:
        self.settings = settings
        self.db = db
        self.embedder = embedder  # None without models: unembedded old questions are left out
        self._scheduler = scheduler
        self._running = False
        self._done = threading.Condition()
        self._runs = 0  # finished refreshes, for wait()

    def start(self) -> None:
        self._scheduler.add_executor(SchedulerPool(1), EXECUTOR)
        if self.settings.topics_refresh_minutes > 0:
            self._scheduler.add_job(
                self.refresh_all,
                "interval",
                minutes=self.settings.topics_refresh_minutes,
                id=JOB_ID,
                replace_existing=True,
                executor=EXECUTOR,
                coalesce=True,
                max_instances=1,
            )
        self._running = True

    def close(self) -> None:
        if not self._running:
            return
        self._running = False
        for job in self._scheduler.get_jobs():
            if job.id == JOB_ID or job.id.startswith(f"{JOB_ID}-"):
                job.remove()
        self._scheduler.remove_executor(EXECUTOR)  # waits for a clustering under way

    def queue(self, bot_id: str) -> None:
        """Refresh this chatbot's topics now, in the background (one pending run per chatbot)."""
        self._scheduler.add_job(
            self._refresh_logged,
            args=[bot_id],
            id=f"{JOB_ID}-{bot_id}",
            replace_existing=True,
            executor=EXECUTOR,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
        )

    def wait(self, runs: int, timeout: float = 60.0) -> bool:
        """For tests and tools: block until `runs` refreshes have finished since start."""
        with self._done:
            return self._done.wait_for(lambda: self._runs >= runs, timeout)

    # -- the work ------------------------------------------------------------------
    def refresh_all(self) -> None:
        for bot_id, new_questions, _ in self.db.read(q.active_chatbots):
            if new_questions:
                self._refresh_logged(bot_id)

    def _refresh_logged(self, bot_id: str) -> None:
        try:
            self.refresh(bot_id)
        except Exception:
            log.exception("topics: refresh of %s failed", bot_id)
        finally:
            with self._done:
                self._runs += 1
                self._done.notify_all()

    def refresh(self, bot_id: str) -> int:
        """Cluster the chatbot's recent questions and store the result; returns the topic count."""
        end = utcnow()
        start = end - timedelta(days=self.settings.topics_window_days)
        rows = self.db.read(q.questions, bot_id, start, end, MAX_QUESTIONS)
        texts, vectors, ids = self._vectors(bot_id, rows)
        clusters = topics.cluster_questions(texts, vectors)
        previous = self.db.read(q.previous_topics, bot_id)
        inherited = topics.match_ids(
            [c.centroid for c in clusters], [(p["id"], np.asarray(p["centroid"])) for p in previous]
        )
        first_seen = {p["id"]: p["created_at"] for p in previous}
        stored, member_ids, member_topics = [], [], []
        for cluster, old_id in zip(clusters, inherited, strict=True):
            topic_id = old_id or new_id("top")
            stored.append(
                {
                    "id": topic_id,
                    "label": cluster.label,
                    "keywords": cluster.keywords,
                    "examples": [texts[i] for i in cluster.examples],
                    "centroid": cluster.centroid.astype(np.float32).tolist(),
                    "created_at": first_seen.get(topic_id, end),
                }
            )
            member_ids += [ids[i] for i in cluster.members]
            member_topics += [topic_id] * len(cluster.members)
        self.db.write(q.replace_topics, bot_id, (start, end), len(texts), stored, (member_ids, member_topics))
        log.info("topics: %s: %d questions -> %d topics", bot_id, len(texts), len(stored))
        return len(stored)

    def _vectors(self, bot_id: str, rows: list[dict[str, Any]]) -> tuple[list[str], np.ndarray, list[str]]:
        missing = [r for r in rows if r["embedding"] is None]
        if missing and self.embedder is not None:
            vecs = self.embedder.embed([r["content"] for r in missing])
            self.db.write(q.save_vectors, bot_id, [r["id"] for r in missing], vecs)
            for r, v in zip(missing, vecs, strict=True):
                r["embedding"] = v
        rows = [r for r in rows if r["embedding"] is not None]
        if not rows:
            return [], np.zeros((0, 1), dtype=np.float32), []
        # One embedding model at a time: vectors of another size (a model swapped) are left out.
        dim = Counter(len(r["embedding"]) for r in rows).most_common(1)[0][0]
        rows = [r for r in rows if len(r["embedding"]) == dim]
        matrix = np.asarray([r["embedding"] for r in rows], dtype=np.float32)
        return [r["content"] for r in rows], matrix, [r["id"] for r in rows]
