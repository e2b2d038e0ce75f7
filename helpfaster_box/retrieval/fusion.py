"""How one chatbot's two rankings become one: weighted RRF plus an identifier bonus.

ChatbotIndex (index.py) owns the rows, their tombstones, rebuilds and files; this
module is the ranking policy it applies under its lock, kept apart so the policy
can be read (and tuned) without the concurrency around it.

- Pools: each side contributes its best max(100, 4k) rows, so a chunk ranked well by
  one side only still reaches the fused top k.
- Reciprocal-rank fusion with k = 60 (Cormack et al. 2009), each side weighted
  (`dense_weight`, `lexical_weight`); ties go to the older row so results are
  deterministic.
- Identifiers: RRF alone cannot let an exact `ERR_4711` match outrank a chunk that is
  1st by vectors and 2nd by BM25 (1/61 vs 1/61 + 1/62); a user who quotes a code
  wants the chunk naming it. A query term that looks like an identifier
  (lexical.is_identifier) and is held by at most 0.5 % of the chunks (at least 10)
  gives each live row holding it a bonus above anything RRF can give, so such
  chunks go first, in fused order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from helpfaster_box.retrieval.lexical import Bm25Matrix, is_identifier

RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al. 2009)


# Dev (eval_retrieval.py, hybrid 1/0.5): a pool of 50 let a row ranked 51st-80th by BM25
# or by vectors add nothing to its fused score, and the page with the answer dropped
# out of the top 5 for 2 of 69 LibreOffice questions (hit@5 0.928 -> 0.957 with 80-400,
# MRR 0.801 -> 0.807); the handbook is the same from 50 to 400 (0.961, MRR 0.882). The
# cost is a longer argpartition and a 100-row heap in faiss: below 0.1 ms a query.
MIN_POOL = 100


def candidate_pool(k: int) -> int:
    return max(MIN_POOL, 4 * k)


def lexical_rows(
    bm25: Bm25Matrix, terms: npt.NDArray[np.int64], pool: int, alive: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The `pool` best live rows by BM25, best first (older row first on ties)."""
    scores = bm25.scores(terms)
    rows = np.flatnonzero(scores > 0)
    rows = rows[alive[rows]]
    if len(rows) > pool:
        rows = rows[np.argpartition(-scores[rows], pool - 1)[:pool]]
    rows = rows[np.lexsort((rows, -scores[rows]))]  # by score, then older row first
    return rows.astype(np.int64), scores[rows]


def identifier_rows(
    bm25: Bm25Matrix, terms: npt.NDArray[np.int64], vocab: list[str], alive: npt.NDArray[np.bool_]
) -> list[int]:
    """Live rows holding a rare identifier of the query, once per identifier held."""
    rare = max(10, bm25.covers // 200)  # in <= 0.5 % of chunks: a code, not a habit
    out: list[int] = []
    for t in terms[terms < len(bm25.indptr) - 1].tolist():
        a, b = int(bm25.indptr[t]), int(bm25.indptr[t + 1])
        if 0 < b - a <= rare and is_identifier(vocab[t]):
            rows = bm25.rows[a:b]
            out.extend(rows[alive[rows]].tolist())
    return out


def fuse(
    dense: list[int],
    lexical: tuple[list[int], list[float]] | None,
    identifiers: list[int],
    k: int,
    *,
    dense_weight: float,
    lexical_weight: float,
) -> tuple[list[tuple[int, float]], dict[int, float], set[int]]:
    """The k best (row, fused score), the BM25 score of each lexical candidate, and the
    rows that hold a rare identifier. `dense` and `lexical` rows come best first."""
    fused: dict[int, float] = {}
    lex: dict[int, float] = {}
    exact: set[int] = set()
    for rank, row in enumerate(dense):
        fused[row] = dense_weight / (RRF_K + rank + 1)
    if lexical is not None:
        rows, scores = lexical
        for rank, (row, s) in enumerate(zip(rows, scores, strict=False)):
            fused[row] = fused.get(row, 0.0) + lexical_weight / (RRF_K + rank + 1)
            lex[row] = s
        # Above anything RRF can give a chunk without the identifier.
        bonus = 2 * (dense_weight + lexical_weight) / (RRF_K + 1)
        for row in identifiers:
            fused[row] = fused.get(row, 0.0) + bonus
            exact.add(row)
    # Ties go to the older row so results are deterministic.
    best = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return best, lex, exact
