"""The knowledge engine: background ingestion of sources and hybrid retrieval.

One worker thread ingests sources (parsing and embedding use both cores already; more
workers would only contend), taking organizations in turn (knowledge/jobs.py). Each
document is parsed in a child process with memory and time limits (knowledge/sandbox.py),
stopped at once when its source is deleted; a source is tried at most
`ingest_max_attempts` times, crashes of the whole process included. The database is the
truth: chunks and their vectors are written there first, then added to the chatbot's
index, so an index that is missing, corrupt or out of step is rebuilt from the database.
What is embedded for a chunk is passages.py; the offline rebuild (`reindex`) is reindex.py.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from helpfaster_box.knowledge import chunker, parsers, sandbox
from helpfaster_box.knowledge import queries as src_q
from helpfaster_box.knowledge.fetch import FetchError, fetch_url
from helpfaster_box.knowledge.jobs import FairJobs
from helpfaster_box.knowledge.passages import embed_passages, passage_text
from helpfaster_box.knowledge.unit_cache import UnitCache
from helpfaster_box.observability.metrics import Metrics
from helpfaster_box.retrieval.index_files import IndexCorrupt
from helpfaster_box.retrieval.registry import IndexRegistry
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import Database
from helpfaster_box.store.files import fsync_dir, private_dir, write_durably

log = logging.getLogger("helpfaster_box.knowledge")
T = TypeVar("T")


@dataclass(slots=True)
class Hit:
    chunk_id: int
    source_id: str
    title: str | None
    section: str | None
    url: str | None
    text: str
    score: float
    dense: float | None  # cosine similarity of the passage to the query
    exact: bool = False  # holds a rare identifier of the query (error code, path, command)
    position: int = -1  # of the chunk in its source (-1: not known)


def _hit(row: dict[str, Any], score: float, dense: float | None, exact: bool = False) -> Hit:
    """A passage from its chunk row (`queries.chunks_by_ids` / `chunks_at`)."""
    return Hit(
        row["id"],
        row["source_id"],
        row["title"],
        row["section"],
        row["url"],
        row["text"],
        score,
        dense,
        exact,
        row["position"],
    )


class KnowledgeService:
    def __init__(
        self, settings: Settings, db: Database, embedder: Any, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self.embedder = embedder
        self.metrics = metrics or Metrics()
        self.uploads = settings.data_path / "uploads"
        private_dir(self.uploads)
        self.indexes = IndexRegistry(settings.data_path / "indexes", embedder.dim)
        self.unit_cache = UnitCache(lambda: db.generation)  # answer units of hot chunks
        # Ingestion and index removals share one worker so index changes never interleave.
        self._queue = FairJobs()
        self._limits = sandbox.Limits(
            settings.ingest_parse_memory_mb, settings.ingest_parse_timeout_s, settings.ingest_max_pdf_pages
        )
        self._parsing: str | None = None  # the source whose document is being parsed now
        self._cancelled: set[str] = set()  # deleted while queued or parsing
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="ingest", daemon=True)
        # Jobs submitted and not yet finished; _idle is set exactly when it is 0. A bare
        # "queue empty" check races with a submit between its clear() and put().
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        # Called on the worker with the source row once its ingestion ended (ready or
        # failed), before the worker's next job; features hook in here (app.py wires them).
        self.on_ingested: list[Callable[[dict[str, Any]], None]] = []

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        self.check_indexes()
        for source_id, org_id in self.db.read(src_q.pending_sources):
            self.enqueue(source_id, org_id)
        self._thread.start()

    def close(self) -> None:
        # Queued ingestions stay `queued` in the database and resume at the next start;
        # running them now would hold a shutdown for as long as the backlog takes, and
        # past the join timeout the worker would go on using a closed embedder and DB.
        # A parse under way is stopped. Index tidying jobs are quick and are kept.
        self._closing = True
        for _job in self._queue.close(keep=lambda job: not _is_ingestion(job, self)):
            self._job_done()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def enqueue(self, source_id: str, org_id: str = "") -> None:
        self._submit(functools.partial(self._ingest_safely, source_id), org_id or "-")

    def run_exclusive(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run fn on the knowledge worker, between jobs: no index file changes meanwhile
        (a backup copies the indexes this way)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self._submit(job)
        return future

    def _submit(self, job: Callable[[], None], org: str | None = None) -> None:
        with self._pending_lock:
            self._pending += 1
            self._idle.clear()
        if org is None:
            self._queue.put(job)
        else:
            self._queue.put(job, org)

    def _job_done(self) -> None:
        with self._pending_lock:
            self._pending = max(0, self._pending - 1)
            if self._pending == 0:
                self._idle.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """For tests and tools: block until every queued source is processed."""
        return self._idle.wait(timeout)

    # -- originals -----------------------------------------------------------
    def upload_path(self, chatbot_id: str, source_id: str) -> Path:
        return self.uploads / chatbot_id / source_id

    def save_original(self, chatbot_id: str, source_id: str, data: bytes) -> None:
        path = self.upload_path(chatbot_id, source_id)
        private_dir(path.parent)
        tmp = path.with_name(f".{source_id}.tmp")
        # Durable before the source row is committed: after a power cut an acknowledged
        # upload must not be an empty file that fails its ingestion.
        write_durably(tmp, data)
        tmp.replace(path)
        fsync_dir(path.parent)

    def _stop_parsing(self, source_id: str) -> bool:
        return self._closing or source_id in self._cancelled

    # -- ingestion -----------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            except Exception:  # one bad job must never kill the worker
                log.exception("background knowledge job failed")
            finally:
                self._job_done()

    def _ingest_safely(self, source_id: str) -> None:
        try:
            self.ingest(source_id)
        except sandbox.Cancelled:
            if self._closing:  # not the document's fault: queued again, the attempt not counted
                self.db.write(src_q.requeue, source_id)
            log.info("ingesting %s stopped: %s", source_id, "shutdown" if self._closing else "deleted")
        except Exception:  # a bad source ends failed, never stuck processing
            log.exception("ingesting %s failed unexpectedly", source_id)
            self._fail(source_id, "internal error while ingesting; see the server log")
        self._notify_ingested(source_id)

    def _notify_ingested(self, source_id: str) -> None:
        if not self.on_ingested:
            return
        try:
            source = self.db.read(src_q.get_source_any, source_id)
        except Exception:
            log.exception("could not read %s after ingestion", source_id)
            return
        if source is None or source["status"] not in ("ready", "failed"):
            return  # deleted meanwhile
        for callback in self.on_ingested:
            try:
                callback(source)
            except Exception:  # a hook's failure is its own; ingestion is done
                log.exception("on_ingested hook failed for %s", source_id)

    def _fail(self, source_id: str, reason: str) -> None:
        try:
            # Database.write passes positional args only: a keyword here raised TypeError,
            # which this handler swallowed, leaving every failed source stuck `processing`.
            self.db.write(functools.partial(src_q.set_status, error=reason[:500]), source_id, "failed")
            self.metrics.source_ingested(None)
        except Exception:
            log.exception("could not mark %s failed", source_id)

    def ingest(self, source_id: str) -> None:
        source = self.db.read(src_q.get_source_any, source_id)
        if source is None or source["status"] not in ("queued", "processing"):
            return  # deleted meanwhile, or already done
        attempts = self.db.write(src_q.start_attempt, source_id)
        if attempts > self.settings.ingest_max_attempts:
            self._fail(
                source_id,
                f"gave up after {attempts - 1} attempts: ingesting this document stopped the "
                "server or never finished (ingest_max_attempts)",
            )
            return
        self._parsing = source_id
        try:
            fmt, doc = self._parse(source)
        except (parsers.ParseError, FetchError, OSError) as exc:
            self._fail(source_id, str(exc) or type(exc).__name__)
            return
        finally:
            self._parsing = None
        chunks = chunker.chunk(
            doc,
            source_url=source["url"],
            max_tokens=self.settings.chunk_tokens,
            overlap_tokens=self.settings.chunk_overlap_tokens,
            count_tokens=self.embedder.count_tokens,
        )
        if not chunks:
            self._fail(source_id, "the document has no text to index")
            return
        title = source["title"] or doc.title
        rows = [
            {"position": c.position, "title": title, "section": c.section, "url": c.url, "text": c.text}
            for c in chunks
        ]
        texts = [passage_text(c.section, c.text) for c in chunks]
        vectors, unit_texts, unit_vectors = embed_passages(
            self.embedder, [c.section for c in chunks], [c.text for c in chunks]
        )

        def commit(cur: Any) -> list[int] | None:
            current = src_q.get_source_any(cur, source_id)
            if current is None:  # deleted while we embedded
                return None
            src_q.set_status(cur, source_id, "processing", fmt=fmt, title=title)
            old = src_q.chunk_ids_of_source(cur, source_id)
            new = src_q.replace_chunks(cur, current, rows, vectors)
            src_q.add_units(cur, current, new, unit_texts, unit_vectors)
            return [*old, -1, *new]

        result = self.db.write(commit)
        if result is None:
            return
        split = result.index(-1)
        old_ids, new_ids = result[:split], result[split + 1 :]
        index = self.indexes.get(source["chatbot_id"])
        if old_ids:
            index.remove(np.array(old_ids, dtype=np.int64))
        index.add(np.array(new_ids, dtype=np.int64), vectors, texts)
        self.indexes.save(source["chatbot_id"])
        # Only now: `ready` promises the text is searchable. A crash before this line
        # leaves the source `processing`, so it is ingested again at the next start.
        self.db.write(src_q.mark_ready, source_id)
        self.metrics.source_ingested(len(new_ids))
        log.info("ingested %s: %d chunks", source_id, len(new_ids))

    def _parse(self, source: dict[str, Any]) -> tuple[str, parsers.ParsedDocument]:
        if source["type"] == "url":
            data, ctype, _final = fetch_url(
                source["url"],
                allowed_hosts=self.settings.url_allowed_hosts,
                max_bytes=self.settings.url_fetch_max_bytes,
                timeout_s=self.settings.url_fetch_timeout_s,
            )
        else:
            data = self.upload_path(source["chatbot_id"], source["id"]).read_bytes()
            ctype = source["content_type"]
        fmt = parsers.detect_type(data, source["filename"], ctype)
        doc = sandbox.parse(
            data,
            fmt,
            title_hint=source["title"],
            limits=self._limits,
            cancelled=lambda: self._stop_parsing(source["id"]),
        )
        return fmt, doc

    # -- deletion ------------------------------------------------------------
    # The rows are already gone from the database (searches skip missing rows), so
    # these only tidy the index and the originals, in the worker's order.
    def source_deleted(self, chatbot_id: str, source_id: str, chunk_ids: list[int]) -> None:
        self._cancelled.add(source_id)  # a parse under way stops within sandbox.POLL_S

        def job() -> None:
            self._cancelled.discard(source_id)
            if chunk_ids:
                self.indexes.get(chatbot_id).remove(np.array(chunk_ids, dtype=np.int64))
                self.indexes.save(chatbot_id)
            self.upload_path(chatbot_id, source_id).unlink(missing_ok=True)

        self._submit(job)

    def chatbot_deleted(self, chatbot_id: str) -> None:
        def job() -> None:
            self.indexes.drop(chatbot_id)
            shutil.rmtree(self.uploads / chatbot_id, ignore_errors=True)

        self._submit(job)

    # -- index maintenance -----------------------------------------------------
    def rebuild(self, chatbot_id: str) -> int:
        """Rebuild a chatbot's indexes from the database; returns the chunk count."""
        ids, vectors, sections, texts = self.db.read(src_q.all_chunks, chatbot_id)
        passages = [passage_text(s, t) for s, t in zip(sections, texts, strict=False)]
        self.indexes.rebuild(chatbot_id, ids, vectors, passages)
        return len(ids)

    def check_indexes(self) -> list[str]:
        """Rebuild every index that is missing, corrupt or out of step with the database."""
        rebuilt = []
        for chatbot_id in self.db.read(src_q.chatbots_with_chunks):
            expected = self.db.read(src_q.chunk_count, chatbot_id)
            try:
                index = self.indexes.load(chatbot_id)
                ok = index is not None and len(index) == expected
            except IndexCorrupt as exc:
                log.warning("index of %s is corrupt (%s); rebuilding", chatbot_id, exc)
                ok = False
            if not ok:
                self.rebuild(chatbot_id)
                rebuilt.append(chatbot_id)
        return rebuilt

    # -- retrieval -----------------------------------------------------------
    def units_of(self, chunk_ids: list[int]) -> dict[int, src_q.UnitRows]:
        """The stored answer units of these chunks with their vectors (chunks ingested
        before migration 010 have none: chat embeds theirs on the fly)."""
        return self.unit_cache.get(chunk_ids, functools.partial(self.db.read, src_q.units_of_chunks))

    def neighbours(self, hits: list[Hit]) -> list[tuple[int, Hit]]:
        """The chunks right before and after each hit in its source that are not hits
        themselves, as (index of the hit they neighbour, passage), in the hits' order:
        where a page's answer continues past the chunk that matched (the configuration
        example after the sentence that describes it). A neighbour carries its hit's
        cosine (it was not ranked itself)."""
        wanted = [(h.source_id, h.position + d) for h in hits if h.position >= 0 for d in (-1, 1)]
        found = {(r["source_id"], r["position"]): r for r in self.db.read(src_q.chunks_at, wanted)}
        seen = {h.chunk_id for h in hits}
        out: list[tuple[int, Hit]] = []
        for i, h in enumerate(hits):
            for d in (-1, 1):
                row = found.get((h.source_id, h.position + d))
                if row is None or h.position < 0 or row["id"] in seen:
                    continue
                seen.add(row["id"])
                out.append((i, _hit(row, 0.0, h.dense)))
        return out

    def search(self, chatbot_id: str, query: str, k: int, qvec: np.ndarray | None = None) -> list[Hit]:
        """Hybrid search; runs in a worker thread (embedding is CPU work). Pass the query's
        vector when it is already known."""
        index = self.indexes.get(chatbot_id)
        if len(index) == 0:
            return []
        if qvec is None:
            qvec = self.embedder.embed([query])[0]
        results = index.search(
            qvec,
            query,
            k,
            dense_weight=self.settings.dense_weight,
            lexical_weight=self.settings.lexical_weight,
        )
        rows = self.db.read(src_q.chunks_by_ids, [r.id for r in results])
        hits = []
        for r in results:
            row = rows.get(r.id)
            if row is None:  # removed between index and DB read
                continue
            hits.append(_hit(row, float(r.score), None if r.dense is None else float(r.dense), r.exact))
        return hits


def _is_ingestion(job: Callable[[], None], service: KnowledgeService) -> bool:
    return isinstance(job, functools.partial) and job.func == service._ingest_safely
