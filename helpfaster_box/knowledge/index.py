"""One chatbot's retrieval index: FAISS (dense) + BM25 (lexical), fused by weighted RRF.

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

import contextlib
import re
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np
import numpy.typing as npt

from . import index_files
from .index_files import IndexCorrupt
from .lexical import Bm25Matrix, TokenStore, build_bm25, tokenize

__all__ = ["ChatbotIndex", "IndexCorrupt", "IndexRegistry", "SearchHit"]

Kind = Literal["flat", "hnsw"]
RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al. 2009)
APPROX_THRESHOLD = 20_000  # exact search costs ~1 ms per query up to here on one core
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
COMPACT_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class SearchHit:
    id: int
    score: float  # ranking score: fused RRF (search), cosine (dense_search), BM25 (lexical_search)
    dense: float | None  # exact cosine(query, chunk); None only from lexical_search
    lexical: float | None  # BM25 score if the chunk was among the lexical candidates


@contextlib.contextmanager
def _one_omp_thread() -> Iterator[None]:
    """A single query gains nothing from OpenMP, and while llama.cpp keeps both cores busy
    a 2-thread barrier costs 20-30 ms. omp_set_num_threads is per calling thread in
    libgomp, so this does not slow index builds elsewhere."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _pool(k: int) -> int:
    return max(50, 4 * k)


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
        self._kind: Kind = "flat"
        self._faiss: faiss.Index = self._new_faiss("flat")
        self._ids = np.empty(0, np.int64)  # row -> chunk id
        self._alive = np.empty(0, np.bool_)
        self._live = 0
        self._tokens = TokenStore()
        self._bm25: Bm25Matrix | None = None
        self._epoch = 0  # bumped when rows are renumbered (compaction)
        self._selector: tuple[np.ndarray, faiss.IDSelector] | None = None

    # -- introspection ---------------------------------------------------------
    def __len__(self) -> int:
        return self._live

    @property
    def kind(self) -> Kind:
        return self._kind

    @property
    def dead_rows(self) -> int:
        return len(self._ids) - self._live

    def __contains__(self, chunk_id: int) -> bool:
        with self._lock:
            return bool(np.any(self._alive & (self._ids == chunk_id)))

    # -- writes ------------------------------------------------------------------
    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike, texts: Sequence[str]) -> None:
        """Add chunks; an id that is already present is replaced (upsert)."""
        ids_a = np.asarray(ids, np.int64).reshape(-1)
        vecs = np.array(vectors, np.float32, copy=True, ndmin=2)
        if vecs.shape != (len(ids_a), self.dim) or len(texts) != len(ids_a):
            raise ValueError(
                f"add: {len(ids_a)} ids, vectors {vecs.shape}, {len(texts)} texts (dim {self.dim})"
            )
        if len(np.unique(ids_a)) != len(ids_a):
            raise ValueError("add: duplicate ids in one batch")
        if not len(ids_a):
            return
        faiss.normalize_L2(vecs)  # cosine needs unit vectors; cheap insurance
        tokens = [tokenize(t) for t in texts]  # the slow part, done outside the lock
        with self._lock:
            self._tombstone(ids_a)
            if not len(self._ids) and len(ids_a) >= self.approx_threshold:
                self._kind, self._faiss = "hnsw", self._new_faiss("hnsw")  # bulk load
            self._faiss.add(vecs)
            self._ids = np.concatenate([self._ids, ids_a])
            self._alive = np.concatenate([self._alive, np.ones(len(ids_a), np.bool_)])
            self._live += len(ids_a)
            self._tokens.append_tokens(tokens)
            self._selector = None
        self._maybe_rebuild()

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
            self._selector = None
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

    def _new_faiss(self, kind: Kind) -> faiss.Index:
        if kind == "flat":
            return faiss.IndexFlatIP(self.dim)
        index = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = self.ef_search
        return index

    def _rebuild(self) -> None:
        """Caller holds _rebuild_lock, so rows are only appended or tombstoned meanwhile."""
        with self._lock:
            n0 = len(self._ids)
            keep = np.flatnonzero(self._alive)
            vecs = self._faiss.reconstruct_batch(keep) if len(keep) else None
            kind = self._target_kind(len(keep))
        fresh = self._new_faiss(kind)
        if vecs is not None:
            fresh.add(vecs)  # the slow part (HNSW: seconds per 100k), outside the lock
        with self._lock:
            n1 = len(self._ids)
            if n1 > n0:  # rows added during the build
                fresh.add(self._faiss.reconstruct_n(n0, n1 - n0))
            rows = np.concatenate([keep, np.arange(n0, n1)])
            self._kind, self._faiss = kind, fresh
            self._ids = self._ids[rows]
            self._alive = self._alive[rows]  # picks up removals made meanwhile
            self._live = int(self._alive.sum())
            self._tokens.take(rows)
            self._bm25, self._selector = None, None
            self._epoch += 1

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
        """Weighted RRF of the dense and BM25 rankings (each a pool of max(50, 4k))."""
        if k <= 0:
            return []
        q = self._query(query_vec)
        pool = _pool(k)
        while True:
            bm25 = self._fresh_bm25() if lexical_weight > 0 else None
            with self._lock, _one_omp_thread():
                if bm25 is not None and bm25.epoch != self._epoch:
                    continue  # compacted meanwhile: row numbers changed, build again
                fused: dict[int, float] = {}
                lex: dict[int, float] = {}
                if dense_weight > 0:
                    rows, _ = self._dense_rows(q, pool)
                    for rank, row in enumerate(rows.tolist()):
                        fused[row] = dense_weight / (RRF_K + rank + 1)
                if bm25 is not None:
                    rows, scores = self._lexical_rows(bm25, query_text, pool)
                    for rank, (row, s) in enumerate(zip(rows.tolist(), scores.tolist())):
                        fused[row] = fused.get(row, 0.0) + lexical_weight / (RRF_K + rank + 1)
                        lex[row] = s
                # Ties go to the older row so results are deterministic.
                best = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
                top = np.array([row for row, _ in best], np.int64)
                cos = self._cosines(q, top)
                return [
                    SearchHit(int(self._ids[row]), score, c, lex.get(row))
                    for (row, score), c in zip(best, cos.tolist())
                ]

    def dense_search(self, query_vec: npt.ArrayLike, k: int) -> list[SearchHit]:
        """Nearest chunks by cosine similarity (raw scores, for relevance gating)."""
        if k <= 0:
            return []
        q = self._query(query_vec)
        with self._lock, _one_omp_thread():
            rows, cos = self._dense_rows(q, k)
            return [
                SearchHit(int(self._ids[r]), c, c, None)
                for r, c in zip(rows.tolist(), cos.tolist())
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
                rows, scores = self._lexical_rows(bm25, query_text, k)
                return [
                    SearchHit(int(self._ids[r]), s, None, s)
                    for r, s in zip(rows.tolist(), scores.tolist())
                ]

    def _query(self, query_vec: npt.ArrayLike) -> npt.NDArray[np.float32]:
        q = np.array(query_vec, np.float32, copy=True).reshape(1, -1)
        if q.shape[1] != self.dim:
            raise ValueError(f"query vector has dim {q.shape[1]}, index has {self.dim}")
        faiss.normalize_L2(q)
        return q

    def _dense_rows(
        self, q: npt.NDArray[np.float32], pool: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        pool = min(pool, self._live)
        if pool <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        sel = None
        if self._live < len(self._ids):
            if self._selector is None:
                bits = np.packbits(self._alive, bitorder="little")
                self._selector = (bits, faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits)))
            sel = self._selector[1]
        if self._kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, pool), sel=sel)
        else:
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
        dist, rows = self._faiss.search(q, pool, params=params)
        found = rows[0] >= 0
        return rows[0][found], dist[0][found]

    def _lexical_rows(
        self, bm25: Bm25Matrix, query_text: str, pool: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        scores = bm25.scores(self._tokens.query_terms(query_text))
        rows = np.flatnonzero(scores > 0)
        rows = rows[self._alive[rows]]
        if len(rows) > pool:
            rows = rows[np.argpartition(-scores[rows], pool - 1)[:pool]]
        rows = rows[np.lexsort((rows, -scores[rows]))]  # by score, then older row first
        return rows.astype(np.int64), scores[rows]

    def _cosines(self, q: npt.NDArray[np.float32], rows: npt.NDArray[np.int64]) -> np.ndarray:
        if not len(rows):
            return np.empty(0, np.float32)
        return self._faiss.reconstruct_batch(rows) @ q[0]

    def _fresh_bm25(self) -> Bm25Matrix:
        """The BM25 matrix for the current rows, built outside the index lock after adds
        (removals need none: dead rows are masked at search time)."""
        with self._lock:
            bm25 = self._bm25
            if bm25 is not None and bm25.epoch == self._epoch and bm25.covers == len(self._ids):
                return bm25
        with self._bm25_lock:
            with self._lock:
                bm25 = self._bm25
                if bm25 is not None and bm25.epoch == self._epoch and bm25.covers == len(self._ids):
                    return bm25  # another thread built it while we waited
                flat, offsets, n_vocab = self._tokens.snapshot()
                epoch = self._epoch
            bm25 = build_bm25(flat, offsets, n_vocab, epoch)
            with self._lock:
                if epoch == self._epoch:
                    self._bm25 = bm25
            return bm25

    # -- persistence -------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write atomically: data files under a new generation name, then meta.json."""
        with self._save_lock:
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
        try:
            dense = faiss.deserialize_index(np.array(state.dense))  # needs a writable copy
        except RuntimeError as exc:
            raise IndexCorrupt(f"{directory}: FAISS file unreadable: {exc}") from exc
        want = faiss.IndexHNSWFlat if state.kind == "hnsw" else faiss.IndexFlatIP
        if not isinstance(dense, want) or dense.d != state.dim or dense.ntotal != len(state.ids):
            raise IndexCorrupt(f"{directory}: FAISS index does not match meta.json")
        index._kind, index._faiss = state.kind, dense
        index._ids, index._alive = state.ids, state.alive
        index._live = int(state.alive.sum())
        index._tokens = TokenStore(state.vocab, state.tokens, state.offsets)
        return index


_CHATBOT_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


class IndexRegistry:
    """One ChatbotIndex per chatbot under `root/<chatbot_id>/`, loaded on first use."""

    def __init__(
        self,
        root: str | Path,
        dim: int,
        *,
        approx_threshold: int = APPROX_THRESHOLD,
        ef_search: int = HNSW_EF_SEARCH,
        compact_share: float = COMPACT_SHARE,
    ) -> None:
        self.root = Path(root)
        self.dim = dim
        self.approx_threshold = approx_threshold
        self.ef_search = ef_search
        self.compact_share = compact_share
        self._lock = threading.Lock()
        self._indexes: dict[str, ChatbotIndex] = {}

    def path(self, chatbot_id: str) -> Path:
        if not _CHATBOT_ID.fullmatch(chatbot_id):  # it becomes a directory name
            raise ValueError(f"bad chatbot id {chatbot_id!r}")
        return self.root / chatbot_id

    def _new(self) -> ChatbotIndex:
        return ChatbotIndex(
            self.dim,
            approx_threshold=self.approx_threshold,
            ef_search=self.ef_search,
            compact_share=self.compact_share,
        )

    def get(self, chatbot_id: str) -> ChatbotIndex:
        """The cached index, else the saved one, else a new empty one. Raises IndexCorrupt
        if a saved index is unreadable (the caller rebuilds it from the database)."""
        with self._lock:
            index = self._indexes.get(chatbot_id)
            if index is None:
                index = self._read(chatbot_id) or self._new()
                self._indexes[chatbot_id] = index
            return index

    def load(self, chatbot_id: str) -> ChatbotIndex | None:
        """(Re)read the saved index, replacing the cached one; None if never saved."""
        with self._lock:
            index = self._read(chatbot_id)
            if index is not None:
                self._indexes[chatbot_id] = index
            return index

    def _read(self, chatbot_id: str) -> ChatbotIndex | None:
        directory = self.path(chatbot_id)
        if not index_files.exists(directory):
            return None
        index = ChatbotIndex.load(
            directory,
            approx_threshold=self.approx_threshold,
            ef_search=self.ef_search,
            compact_share=self.compact_share,
        )
        if index.dim != self.dim:
            raise IndexCorrupt(f"{directory}: dim {index.dim}, the embedder gives {self.dim}")
        return index

    def save(self, chatbot_id: str) -> None:
        with self._lock:
            index = self._indexes.get(chatbot_id)
        if index is not None:  # dropped meanwhile: nothing to keep
            index.save(self.path(chatbot_id))

    def rebuild(
        self, chatbot_id: str, ids: npt.ArrayLike, vectors: npt.ArrayLike, texts: Sequence[str]
    ) -> ChatbotIndex:
        """A fresh index from the database's chunks, saved, then swapped in."""
        index = self._new()
        index.add(ids, np.asarray(vectors, np.float32).reshape(-1, self.dim), texts)
        index.save(self.path(chatbot_id))
        with self._lock:
            self._indexes[chatbot_id] = index
        return index

    def drop(self, chatbot_id: str) -> None:
        """Forget the chatbot's index and delete its files."""
        with self._lock:
            self._indexes.pop(chatbot_id, None)
            shutil.rmtree(self.path(chatbot_id), ignore_errors=True)
