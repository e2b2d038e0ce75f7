"""The FAISS half of a ChatbotIndex: index kinds, filtered single-query search, cosines.

FAISS labels are the ChatbotIndex's row numbers (vectors are added without ids), so a
tombstone mask over rows doubles as the search filter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import faiss
import numpy as np
import numpy.typing as npt

from helpfaster_box.retrieval.index_files import IndexCorrupt, State

Kind = Literal["flat", "hnsw"]
# M=32 / efConstruction=80 / efSearch=128: recall@10 ~0.98 on clustered 384-d vectors
# at 100k (tests/bench/bench_search.py); M=16 stayed at ~0.93 even with efSearch=128.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


def new_index(kind: Kind, dim: int, ef_search: int = HNSW_EF_SEARCH) -> faiss.Index:
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = ef_search
    return index


@contextlib.contextmanager
def one_omp_thread() -> Iterator[None]:
    """A single query gains nothing from OpenMP, and while other work keeps both cores
    busy a 2-thread barrier costs 20-30 ms (measured: exact search over 20k vectors
    1.2 ms on one thread, 24-32 ms on two). omp_set_num_threads is per calling thread
    in libgomp, so index builds in other threads keep both cores."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def unit_query(query_vec: npt.ArrayLike, dim: int) -> npt.NDArray[np.float32]:
    q = np.array(query_vec, np.float32, copy=True).reshape(1, -1)
    if q.shape[1] != dim:
        raise ValueError(f"query vector has dim {q.shape[1]}, index has {dim}")
    faiss.normalize_L2(q)
    return q


class AliveFilter:
    """An IDSelectorBitmap over the live rows; FAISS reads the bits, so keep them here."""

    def __init__(self, alive: npt.NDArray[np.bool_]) -> None:
        self.bits = np.packbits(alive, bitorder="little")
        self.selector = faiss.IDSelectorBitmap(len(self.bits), faiss.swig_ptr(self.bits))


def search_rows(
    index: faiss.Index,
    q: npt.NDArray[np.float32],
    pool: int,
    alive: AliveFilter | None,
    ef_search: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The best `pool` live rows and their inner products (= cosines), best first."""
    if pool <= 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    params: faiss.SearchParameters | None = None
    if isinstance(index, faiss.IndexHNSWFlat):
        hnsw = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # not in faiss's stub
        # efSearch must cover the pool, or HNSW returns fewer good candidates than asked.
        hnsw.efSearch = max(ef_search, pool)
        params = hnsw
    elif alive is not None:
        params = faiss.SearchParameters()
    if params is not None and alive is not None:
        params.sel = alive.selector  # `alive` (its bits) outlives the search: caller holds it
    dist, rows = index.search(q, pool, params=params)
    found = rows[0] >= 0
    return rows[0][found], dist[0][found]


def cosines(
    index: faiss.Index, q: npt.NDArray[np.float32], rows: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    """Exact cosines of given rows (both kinds keep the raw float32 vectors)."""
    if not len(rows):
        return np.empty(0, np.float32)
    return index.reconstruct_batch(rows) @ q[0]


def from_state(state: State, directory: object) -> faiss.Index:
    """The saved FAISS index of `state`; IndexCorrupt unless it is the kind, size and
    dimension that meta.json says."""
    try:
        index = faiss.deserialize_index(np.array(state.dense))  # needs a writable copy
    except RuntimeError as exc:
        raise IndexCorrupt(f"{directory}: FAISS file unreadable: {exc}") from exc
    want = faiss.IndexHNSWFlat if state.kind == "hnsw" else faiss.IndexFlatIP
    if not isinstance(index, want) or index.d != state.dim or index.ntotal != len(state.ids):
        raise IndexCorrupt(f"{directory}: FAISS index does not match meta.json")
    return index
