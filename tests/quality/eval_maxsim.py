"""Sentence-level max-sim as a retrieval ranking: top-5 hit rate and MRR per variant.

    python tests/quality/eval_maxsim.py [--corpus debian-handbook] [--k 5] [--alone] [--grid]

A dev-only experiment beside eval_retrieval.py (same harness, same hit rule: one of
the top k chunks comes from a page that answers the question). Ingestion already
stores a vector per answer unit of each chunk (`chunk_sentences.embedding`: the unit's
head read in the chunk's own forward pass, knowledge/units.py). Max-sim scores a
chunk by the best cosine between the query and any of its units. The variants are
computed here in numpy over the index's rows, with the index's own BM25 candidates,
pool (fusion.candidate_pool) and rare-identifier bonus:

- hybrid 1/0.5             index.search as production runs it (the baseline)
- re-fused 1/0.5           the same fusion recomputed here: must equal the baseline
- 1/0.5/maxsim[s] w        a third RRF list, the pool best rows by max-sim, weight w
- maxsim[s]/0.5            max-sim in place of the chunk vectors' ranking
- max(cos,s)/0.5           dense ranking by max(chunk cosine, best unit cosine)
- mean(cos,s)/0.5          dense ranking by (chunk cosine + best unit cosine) / 2

s = ctx: the stored in-context head vectors (free: no extra embedding). `--alone`
adds s = alone (each head embedded on its own, as chat's `alone` column) and s = unit
(each whole unit embedded on its own); ingestion pays for neither today (10k units of
the handbook's heads: 3-5 min on this machine). `--grid` adds the third list at lexical
weights 0.25, 0.75 and 1. Prints a table and one JSON line; rewrites the
`maxsim:<corpus>` section of results.md.

Result (dev, hit@5 of the baseline 49/51 handbook, 66/69 LibreOffice): no variant
gains 2 questions over both. The best, a third list over the stored in-context
vectors at weight 0.5 (or 0.25-1 with BM25 at 0.25; MRR then 0.892-0.904 and
0.812-0.832 against 0.882 and 0.807), rescues one LibreOffice question ("something
like wordart") and none of the handbook's two misses; at weights >= 0.75 with BM25
at 0.5 it loses one of the handbook's. Replacing or mixing the chunk vectors'
ranking with max-sim loses 1-3 questions, and vectors embedded alone (heads or whole
units) do no better than the free in-context ones. Cost of the third list: ~5 unit
vectors per chunk (10,334 for 2,077 chunks: 16 MB, 5x the chunk vectors); a flat
inner-product search over them, random vectors on this 2-core machine under load:
faiss IndexFlatIP top-400, one thread, 0.6-0.7 ms a query; numpy matvec + reduceat
(exact max per chunk) 1.4-1.5 ms; at 100k units 10 / 18 ms (the hybrid today: 0.7 ms).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus

THIRD_WEIGHTS = [0.25, 0.5, 0.75, 1.0]
Lists = list[tuple[list[int], float]]  # ranked rows (best first) and their RRF weight


def unit_rows(db: Any, bot_id: str) -> list[tuple[int, list[float], str]]:
    """(chunk id, in-context vector, text) of every answer unit of the chatbot."""
    return db.read(
        lambda cur: cur.execute(
            "SELECT chunk_id, embedding, text FROM chunk_sentences WHERE chatbot_id = ? "
            "ORDER BY chunk_id, position",
            [bot_id],
        ).fetchall()
    )


class MaxSim:
    """Per index row, the best cosine of the query with that row's unit vectors."""

    def __init__(self, row_ids: np.ndarray, owners: np.ndarray, vecs: np.ndarray) -> None:
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        row_of = {c: r for r, c in enumerate(row_ids.tolist())}
        rows = np.array([row_of.get(c, -1) for c in owners.tolist()], np.int64)
        order = np.argsort(rows, kind="stable")[np.sum(rows < 0) :]  # units of index rows only
        self.vecs = np.ascontiguousarray(vecs[order], np.float32)
        unit_row = rows[order]
        self.starts = np.flatnonzero(np.r_[True, unit_row[1:] != unit_row[:-1]])
        self.rows = unit_row[self.starts]
        self.n_rows = len(row_ids)

    def scores(self, q: np.ndarray) -> np.ndarray:
        """Best unit cosine per row; -1 for a row without units (it never ranks)."""
        out = np.full(self.n_rows, -1.0, np.float32)
        out[self.rows] = np.maximum.reduceat(self.vecs @ q, self.starts)
        return out


def ranked(scores: np.ndarray, alive: np.ndarray, pool: int) -> list[int]:
    """The pool best live rows by score, best first, older row first on ties."""
    rows = np.flatnonzero(alive & (scores > -1))
    if len(rows) > pool:
        rows = rows[np.argpartition(-scores[rows], pool - 1)[:pool]]
    return rows[np.lexsort((rows, -scores[rows]))].tolist()


def rrf(lists: Lists, identifiers: list[int], k: int) -> list[int]:
    """fusion.fuse for any number of weighted lists (same RRF constant, same bonus rule)."""
    rrf_k = corpus.app_api().fusion.RRF_K
    fused: dict[int, float] = {}
    for rows, w in lists:
        for rank, row in enumerate(rows):
            fused[row] = fused.get(row, 0.0) + w / (rrf_k + rank + 1)
    bonus = 2 * sum(w for _, w in lists) / (rrf_k + 1)
    for row in identifiers:
        fused[row] = fused.get(row, 0.0) + bonus
    return [row for row, _ in sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def variants(sides: dict[str, MaxSim], grid: bool) -> dict[str, Callable[..., Lists]]:
    """Name -> (chunk cosines, query vector, ranked rows, pool best BM25 rows) -> lists."""
    out: dict[str, Callable[..., Lists]] = {
        "re-fused 1/0.5": lambda cos, v, rank, lex: [(rank(cos), 1.0), (lex, 0.5)]
    }
    for s, ms in sides.items():
        lexical_weights = (0.5, 0.25, 0.75, 1.0) if grid and s == "ctx" else (0.5,)
        for lw in lexical_weights:
            for w in THIRD_WEIGHTS:
                out[f"1/{lw:g}/maxsim[{s}] {w:g}"] = lambda cos, v, rank, lex, ms=ms, lw=lw, w=w: [
                    (rank(cos), 1.0),
                    (lex, lw),
                    (rank(ms.scores(v)), w),
                ]
        out[f"maxsim[{s}]/0.5"] = lambda cos, v, rank, lex, ms=ms: [
            (rank(ms.scores(v)), 1.0),
            (lex, 0.5),
        ]
        out[f"max(cos,{s})/0.5"] = lambda cos, v, rank, lex, ms=ms: [
            (rank(np.maximum(cos, ms.scores(v))), 1.0),
            (lex, 0.5),
        ]
        out[f"mean(cos,{s})/0.5"] = lambda cos, v, rank, lex, ms=ms: [
            (rank(np.where((u := ms.scores(v)) > -1, (cos + u) / 2, cos)), 1.0),
            (lex, 0.5),
        ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=corpus.DEV)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--alone", action="store_true", help="also heads and units embedded alone")
    ap.add_argument("--grid", action="store_true", help="also the third list at other BM25 weights")
    ap.add_argument("--misses", action="store_true", help="list the questions each method misses")
    args = ap.parse_args()
    k = args.k
    c = corpus.corpus(args.corpus)
    qs = [q for q in corpus.questions(c.name) if q.answerable]
    api = corpus.app_api()
    src_q, head, fusion = api.source_queries, api.unit_head, api.fusion

    with corpus.harness(c) as h:
        knowledge = h.app.state.knowledge
        index = knowledge.indexes.get(h.bot_id)
        embed = knowledge.embedder.embed
        qvecs = embed([q.question for q in qs])
        pool = fusion.candidate_pool(k)
        # The index's internals, read once: nothing writes to it during the run.
        row_ids, alive, bm25 = index._ids, index._alive, index._fresh_bm25()
        chunk_vecs = index._faiss.reconstruct_n(0, len(row_ids))

        units = unit_rows(knowledge.db, h.bot_id)
        owners = np.array([u[0] for u in units], np.int64)
        sides = {"ctx": MaxSim(row_ids, owners, np.asarray([u[1] for u in units], np.float32))}
        cost: dict[str, float] = {"chunks": int(alive.sum()), "units": len(sides["ctx"].vecs)}
        if args.alone:
            t0 = time.perf_counter()
            sides["alone"] = MaxSim(row_ids, owners, embed([head(u[2]) for u in units]))
            cost["embed_heads_s"] = round(time.perf_counter() - t0, 1)
            sides["unit"] = MaxSim(row_ids, owners, embed([u[2] for u in units]))

        def pages_of(ids: list[int]) -> list[str | None]:
            rows = knowledge.db.read(src_q.chunks_by_ids, ids)
            return [h.page_of_source.get(rows[i]["source_id"]) if i in rows else None for i in ids]

        def refused(q: Any, v: np.ndarray, lists_of: Callable[..., Lists]) -> list[int]:
            terms = index._tokens.query_terms(q.question)
            lex = fusion.lexical_rows(bm25, terms, pool, alive)[0].tolist()
            ident = fusion.identifier_rows(bm25, terms, index._tokens.vocab, alive)
            lists = lists_of(chunk_vecs @ v, v, lambda s: ranked(s, alive, pool), lex)
            return row_ids[rrf(lists, ident, k)].tolist()

        methods: dict[str, Callable[[Any, np.ndarray], list[int]]] = {
            "hybrid 1/0.5": lambda q, v: [
                r.id for r in index.search(v, q.question, k, dense_weight=1, lexical_weight=0.5)
            ]
        }
        for name, lists_of in variants(sides, args.grid).items():
            methods[name] = functools.partial(refused, lists_of=lists_of)

        results: dict[str, dict[str, Any]] = {}
        for name, fn in methods.items():
            hits, rr, misses = 0, 0.0, []
            for q, v in zip(qs, qvecs, strict=True):
                pages = pages_of(fn(q, v))
                rank = next((i for i, p in enumerate(pages) if p in q.pages), None)
                if rank is None:
                    misses.append(q.question)
                else:
                    hits, rr = hits + 1, rr + 1 / (rank + 1)
            results[name] = {"hits": hits, "mrr": round(rr / len(qs), 3), "misses": misses}

        t0 = time.perf_counter()
        for v in qvecs:
            sides["ctx"].scores(v)
        cost["maxsim_numpy_ms"] = round(1000 * (time.perf_counter() - t0) / len(qvecs), 2)

    n = len(qs)
    base = results["hybrid 1/0.5"]["hits"]
    rows = [
        [name, f"{r['hits']}/{n} = {r['hits'] / n:.3f}", f"{r['hits'] - base:+d}", f"{r['mrr']:.3f}"]
        for name, r in results.items()
    ]
    table = corpus.md_table(
        ["method (dense/lexical/third weight)", f"top-{k} hit", "vs base", f"MRR@{k}"], rows
    )
    summary = (
        f"{n} answerable questions, top-{k}; {cost['chunks']} chunks, {cost['units']} unit vectors"
        + (f"; heads embedded alone in {cost['embed_heads_s']} s" if "embed_heads_s" in cost else "")
        + "."
    )
    print(table, "\n", summary, sep="\n")
    if args.misses:
        for name, r in results.items():
            print(f"\n{name} misses:", *(f"  - {m}" for m in r["misses"]), sep="\n")
    print(
        json.dumps(
            {
                "corpus": c.name,
                "questions": n,
                "cost": cost,
                **{name: {kk: v for kk, v in r.items() if kk != "misses"} for name, r in results.items()},
            }
        )
    )
    corpus.write_section(
        f"maxsim:{c.name}",
        "\n".join(
            [f"## Sentence max-sim on {c.name} ({c.role}; eval_maxsim.py)", "", table, "", summary, ""]
        ),
    )


if __name__ == "__main__":
    main()
