"""One chatbot's retrieval index: FAISS (dense) + BM25 (lexical), fused by weighted RRF
(the ranking policy: fusion.py).

Rows: every added chunk gets the next row number; FAISS labels ARE row numbers and the
BM25 token store is aligned to them, so both halves share one tombstone mask and one
row -> chunk id array. Removal only clears the row's `alive` flag (FAISS HNSW cannot
delete, and BM25 has no incremental update); searches filter dead rows (an
IDSelectorBitmap inside FAISS, a mask in BM25). When dead rows pass `compact_share`
of all rows, the index is rebuilt without them.

Index kind: exact IndexFlatIP below `approx_threshold` live vectors, IndexHNSWFlat
(inner product) above it; HNSW supports incremental add, and with M=32 and
efSearch >= 128 keeps recall@10 >= 0.95 (see tests/bench/bench_search.py). The raw
vectors live inside FAISS only (both kinds store them as float32, and
`reconstruct_n` gives them back for rebuilds), which avoids a second 150 MB copy per
100k chunks; they are saved as part of the FAISS file.

Heavy rebuilds (flat -> HNSW switch, compaction, BM25 after adds) run outside the
index lock on a snapshot and are swapped in under it, replaying rows added or removed
meanwhile, so searches never wait seconds for a rebuild.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from helpfaster_box.retrieval import dense, index_files
from helpfaster_box.retrieval.dense import HNSW_EF_SEARCH, AliveFilter, Kind, one_omp_thread
from helpfaster_box.retrieval.fusion import candidate_pool, fuse, identifier_rows, lexical_rows
from helpfaster_box.retrieval.index_files import IndexCorrupt
from helpfaster_box.retrieval.lexical import (
    Bm25Matrix,
    TokenStore,
    Vocabulary,
    build_bm25,
    take_rows,
    tokenize,
)

__all__ = ["ChatbotIndex", "IndexCorrupt", "SearchHit"]

APPROX_THRESHOLD = 20_000  # exact search costs ~1 ms per query up to here on one core
COMPACT_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class SearchHit:
    id: int
    score: float  # ranking score: fused RRF (search), cosine (dense_search), BM25 (lexical_search)
    dense: float | None  # exact cosine(query, chunk); None only from lexical_search
    lexical: float | None  # BM25 score if the chunk was among the lexical candidates
    exact: bool = False  # holds a rare identifier of the query (search() ranks these first)


class ChatbotIndex:
    def __init__(
        self,
        dim: int,
        *,
        approx_threshold: int = APPROX_THRESHOLD,
        ef_search: int = HNSW_EF_SEARCH,
        compact_share: float = COMPACT_SHARE,
    ) -> None:
        self.dim = dim
        self.approx_threshold = approx_threshold
        self.ef_search = ef_search
        self.compact_share = compact_share
        self._lock = threading.RLock()
        self._rebuild_lock = threading.Lock()  # one snapshot rebuild at a time
        self._bm25_lock = threading.Lock()  # one BM25 build at a time
        self._save_lock = threading.Lock()
        self._discarded = False  # set when its chatbot is deleted: never save again
        self._kind: Kind = "flat"
        self._faiss: faiss.Index = dense.new_index("flat", dim)
        self._ids = np.empty(0, np.int64)  # row -> chunk id
        self._alive = np.empty(0, np.bool_)
        self._live = 0
        self._tokens = TokenStore()
        self._bm25: Bm25Matrix | None = None
        self._epoch = 0  # bumped when rows are renumbered (compaction)
        self._filter: AliveFilter | None = None  # None: rebuild it on next search
        self._vocabulary: Vocabulary | None = None  # built on first use (chat's decline)

    # -- introspection ---------------------------------------------------------
    def __len__(self) -> int:
        return self._live

    @property
    def kind(self) -> Kind:
        return self._kind

    @property
    def dead_rows(self) -> int:
        return len(self._ids) - self._live

    def vocabulary(self) -> Vocabulary:
        """The documents' vocabulary (see lexical.Vocabulary), rebuilt when it grew."""
        with self._lock:
            vocab, cached = self._tokens.vocab, self._vocabulary
            if cached is not None and cached.size == len(vocab):
                return cached
            words = list(vocab)
        cached = Vocabulary(words)  # ~0.1 s for 20k terms: outside the lock
        self._vocabulary = cached
        return cached

    def rarity(self, terms: Sequence[str]) -> list[float]:
        """Per lexical term (`lexical.tokenize` output): its BM25 idf over the chunks,
        divided by the idf of a term no chunk holds, so 1.0 = never used, ~0 = in
        every chunk. What the extractive answer weighs the question's words by: the
        rare ones say what it is about. Reads the cached BM25 matrix (no rebuild
        unless the index changed), O(len(terms))."""
        bm25 = self._fresh_bm25()
        with self._lock:
            ids = [self._tokens.term_id.get(t) for t in terms]
        return bm25.rarity(ids)

    def __contains__(self, chunk_id: int) -> bool:
        with self._lock:
            return bool(np.any(self._alive & (self._ids == chunk_id)))

    # -- writes ------------------------------------------------------------------
    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike, texts: Sequence[str]) -> None:
        """Add chunks; an id that is already present is replaced (upsert)."""
        ids_a = np.asarray(ids, np.int64).reshape(-1)
        if not len(ids_a) and not len(texts):
            return
        vecs = np.array(vectors, np.float32, copy=True, ndmin=2)
        if vecs.shape != (len(ids_a), self.dim) or len(texts) != len(ids_a):
            raise ValueError(
                f"add: {len(ids_a)} ids, vectors {vecs.shape}, {len(texts)} texts (dim {self.dim})"
            )
        if len(np.unique(ids_a)) != len(ids_a):
            raise ValueError("add: duplicate ids in one batch")
        faiss.normalize_L2(vecs)  # cosine needs unit vectors; cheap insurance
        flat, lens = self._encode(texts)
        with self._lock:
            self._tombstone(ids_a)
            if not len(self._ids) and len(ids_a) >= self.approx_threshold:
                self._kind, self._faiss = "hnsw", self._new_index("hnsw")  # bulk load
            self._faiss.add(vecs)
            self._ids = np.concatenate([self._ids, ids_a])
            self._alive = np.concatenate([self._alive, np.ones(len(ids_a), np.bool_)])
            self._live += len(ids_a)
            self._tokens.append(flat, lens)
            self._filter = None
        self._maybe_rebuild()
        self._fresh_bm25(wait=True)  # the writer pays for BM25 (~0.5 s per 100k), not a search

    def _encode(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        """Tokenize outside the lock (the slow part), in batches so a 100k-chunk rebuild
        never holds millions of token strings at once; only the vocabulary needs the lock."""
        parts = []
        for start in range(0, len(texts), 2000):
            docs = [tokenize(t) for t in texts[start : start + 2000]]
            with self._lock:
                parts.append(self._tokens.encode(docs))
        return np.concatenate([f for f, _ in parts]), np.concatenate([n for _, n in parts])

    def remove(self, ids: npt.ArrayLike) -> int:
        """Remove chunks (unknown ids are ignored); returns how many were removed."""
        ids_a = np.asarray(ids, np.int64).reshape(-1)
        with self._lock:
            removed = self._tombstone(ids_a)
        if removed:
            self._maybe_rebuild()
        return removed

    def compact(self) -> None:
        """Rebuild without dead rows (and pick the index kind for the live count)."""
        with self._rebuild_lock:
            self._rebuild()

    def _tombstone(self, ids: npt.NDArray[np.int64]) -> int:
        hit = self._alive & np.isin(self._ids, ids)
        count = int(hit.sum())
        if count:
            self._alive = self._alive & ~hit  # new array: BM25 snapshots keep theirs
            self._live -= count
            self._filter = None
        return count

    def _target_kind(self, live: int) -> Kind:
        # Hysteresis: once approximate, stay so until well below the threshold.
        if self._kind == "hnsw":
            return "hnsw" if live >= self.approx_threshold // 2 else "flat"
        return "hnsw" if live >= self.approx_threshold else "flat"

    def _rebuild_needed(self) -> bool:
        with self._lock:
            rows = len(self._ids)
            dead = rows - self._live
            return self._target_kind(self._live) != self._kind or dead > self.compact_share * rows

    def _maybe_rebuild(self) -> None:
        if self._rebuild_needed():
            with self._rebuild_lock:
                if self._rebuild_needed():  # not done by another writer while we waited
                    self._rebuild()

    def _new_index(self, kind: Kind) -> faiss.Index:
        return dense.new_index(kind, self.dim, self.ef_search)

    def _rebuild(self) -> None:
        """Caller holds _rebuild_lock, so meanwhile rows are only appended or tombstoned,
        and the epoch is ours to bump."""
        with self._lock:
            n0, epoch = len(self._ids), self._epoch + 1
            keep = np.flatnonzero(self._alive)
            kind = self._target_kind(len(keep))
            flat, offsets, n_vocab = self._tokens.snapshot()
        vecs = np.empty((len(keep), self.dim), np.float32)
        for i in range(0, len(keep), 4096):  # rows < n0 never change; short lock holds
            with self._lock:
                vecs[i : i + 4096] = self._faiss.reconstruct_batch(keep[i : i + 4096])
        # The slow part, outside the lock (HNSW: seconds per 100k vectors).
        fresh = self._new_index(kind)
        fresh.add(vecs)
        flat, offsets = take_rows(flat, offsets, keep)
        bm25 = build_bm25(flat, offsets, n_vocab, epoch)
        with self._lock:
            n1 = len(self._ids)
            if n1 > n0:  # rows added during the build go on the end, as they were
                fresh.add(self._faiss.reconstruct_n(n0, n1 - n0))
                cur_flat, cur_offsets, _ = self._tokens.snapshot()
                start = cur_offsets[n0]
                flat = np.concatenate([flat, cur_flat[start:]])
                offsets = np.concatenate([offsets, offsets[-1] + cur_offsets[n0 + 1 :] - start])
            rows = np.concatenate([keep, np.arange(n0, n1)])
            self._kind, self._faiss = kind, fresh
            self._ids = self._ids[rows]
            self._alive = self._alive[rows]  # picks up removals made meanwhile
            self._live = int(self._alive.sum())
            self._tokens.flat, self._tokens.offsets = flat, offsets
            self._bm25, self._filter, self._epoch = bm25, None, epoch

    # -- search ------------------------------------------------------------------
    def search(
        self,
        query_vec: npt.ArrayLike,
        query_text: str,
        k: int,
        *,
        dense_weight: float = 1.0,
        lexical_weight: float = 1.0,
    ) -> list[SearchHit]:
        """Weighted RRF of the dense and BM25 rankings plus a bonus per rare identifier
        of the query (error code, path, command) that a chunk contains: fusion.py."""
        if k <= 0:
            return []
        q = dense.unit_query(query_vec, self.dim)
        pool = candidate_pool(k)
        while True:
            bm25 = self._fresh_bm25() if lexical_weight > 0 else None
            with self._lock, one_omp_thread():
                if bm25 is not None and bm25.epoch != self._epoch:
                    continue  # compacted meanwhile: row numbers changed, build again
                dense_rows = self._dense_rows(q, pool)[0].tolist() if dense_weight > 0 else []
                lexical: tuple[list[int], list[float]] | None = None
                identifiers: list[int] = []
                if bm25 is not None:
                    terms = self._tokens.query_terms(query_text)
                    rows, scores = lexical_rows(bm25, terms, pool, self._alive)
                    lexical = (rows.tolist(), scores.tolist())
                    identifiers = identifier_rows(bm25, terms, self._tokens.vocab, self._alive)
                best, lex, exact = fuse(
                    dense_rows,
                    lexical,
                    identifiers,
                    k,
                    dense_weight=dense_weight,
                    lexical_weight=lexical_weight,
                )
                top = np.array([row for row, _ in best], np.int64)
                cos = dense.cosines(self._faiss, q, top)
                return [
                    SearchHit(int(self._ids[row]), score, c, lex.get(row), row in exact)
                    for (row, score), c in zip(best, cos.tolist(), strict=False)
                ]

    def dense_search(self, query_vec: npt.ArrayLike, k: int) -> list[SearchHit]:
        """Nearest chunks by cosine similarity (raw scores, for relevance gating)."""
        if k <= 0:
            return []
        q = dense.unit_query(query_vec, self.dim)
        with self._lock, one_omp_thread():
            rows, cos = self._dense_rows(q, k)
            return [
                SearchHit(int(self._ids[r]), c, c, None)
                for r, c in zip(rows.tolist(), cos.tolist(), strict=False)
            ]

    def lexical_search(self, query_text: str, k: int) -> list[SearchHit]:
        """Best chunks by BM25 alone."""
        if k <= 0:
            return []
        while True:
            bm25 = self._fresh_bm25()
            with self._lock:
                if bm25.epoch != self._epoch:
                    continue
                terms = self._tokens.query_terms(query_text)
                rows, scores = lexical_rows(bm25, terms, k, self._alive)
                return [
                    SearchHit(int(self._ids[r]), s, None, s)
                    for r, s in zip(rows.tolist(), scores.tolist(), strict=False)
                ]

    def _dense_rows(
        self, q: npt.NDArray[np.float32], pool: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        if self._live < len(self._ids) and self._filter is None:
            self._filter = AliveFilter(self._alive)
        alive = self._filter if self._live < len(self._ids) else None
        return dense.search_rows(self._faiss, q, min(pool, self._live), alive, self.ef_search)

    def _fresh_bm25(self, *, wait: bool = False) -> Bm25Matrix:
        """The BM25 matrix for the current rows, built outside the index lock after adds
        (removals need none: dead rows are masked at search time). Unless `wait`, a
        search takes the previous matrix (only the newest rows missing) rather than wait
        for another thread's build."""
        with self._lock:
            current = self._bm25
            if current is None or current.epoch != self._epoch:
                current = None  # nothing usable: must wait or build
            elif current.covers == len(self._ids):
                return current
        if not self._bm25_lock.acquire(blocking=wait or current is None):
            assert current is not None
            return current
        try:
            with self._lock:
                bm25 = self._bm25
                if bm25 is not None and bm25.epoch == self._epoch and bm25.covers == len(self._ids):
                    return bm25  # another thread built it while we waited
                flat, offsets, n_vocab = self._tokens.snapshot()
                epoch = self._epoch
            bm25 = build_bm25(flat, offsets, n_vocab, epoch)
            with self._lock:
                if epoch == self._epoch and (self._bm25 is None or self._bm25.covers <= bm25.covers):
                    self._bm25 = bm25
            return bm25
        finally:
            self._bm25_lock.release()

    # -- persistence -------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write atomically: data files under a new generation name, then meta.json."""
        with self._save_lock:
            if self._discarded:
                return
            with self._lock:
                flat, offsets, _ = self._tokens.snapshot()
                state = index_files.State(
                    dim=self.dim,
                    kind=self._kind,
                    dense=faiss.serialize_index(self._faiss),
                    ids=self._ids,
                    alive=self._alive,
                    tokens=flat,
                    offsets=offsets,
                    vocab=list(self._tokens.vocab),
                )
            index_files.write(Path(directory), state)  # disk I/O outside the lock

    def discard(self) -> None:
        """Make later saves no-ops (its chatbot is being deleted)."""
        with self._save_lock:
            self._discarded = True

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        approx_threshold: int = APPROX_THRESHOLD,
        ef_search: int = HNSW_EF_SEARCH,
        compact_share: float = COMPACT_SHARE,
    ) -> ChatbotIndex:
        """Read a saved index; IndexCorrupt if anything is missing or inconsistent."""
        state = index_files.read(Path(directory))
        index = cls(
            state.dim,
            approx_threshold=approx_threshold,
            ef_search=ef_search,
            compact_share=compact_share,
        )
        index._kind, index._faiss = state.kind, dense.from_state(state, directory)
        index._ids, index._alive = state.ids, state.alive
        index._live = int(state.alive.sum())
        index._tokens = TokenStore(state.vocab, state.tokens, state.offsets)
        # BM25 is derived from the saved token ids, not saved itself (smaller files, one
        # format less); building it here, ~1-2 s per 100k chunks, spares the first
        # question after a restart.
        index._bm25 = build_bm25(state.tokens, state.offsets, len(state.vocab), index._epoch)
        return index
