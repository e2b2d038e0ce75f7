"""Retrieval quality per fusion weight: top-5 hit rate of dense, BM25 and hybrid.

    python tests/quality/eval_retrieval.py [--corpus debian-handbook] [--k 5]

A calibration tool for the dev corpus (debian-handbook, the default): its weight
recommendation must not be taken from a test corpus (eval.py reports their
retrieval through the search API). Ingests the corpus through the API the first
time (cached in tests/quality/.cache/<corpus>/), then for every answerable question
of questions/<corpus>.toml asks the chatbot's own index directly (ChatbotIndex from app.state.knowledge.indexes,
query vector from app.state.knowledge.embedder):

- dense only      index.dense_search
- BM25 only       index.lexical_search
- hybrid (1, w)   index.search(dense_weight=1, lexical_weight=w): weighted RRF plus the
                  index's rare-identifier bonus

A hit = one of the top k chunks comes from a page that answers the question (the
chunk's sourceId -> the uploaded file name). Also reports the rank of the first
right chunk (MRR@k) and the hit rate on the questions about rare exact terms (kind
`rare`: the answer is an option, a file, a tool name; kind `exact`: the question
quotes one). Prints a table and one JSON line; rewrites the
`retrieval:<corpus>` section of results.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus

WEIGHTS = [(1.0, 1.0), (1.0, 0.5), (1.0, 0.75), (1.0, 1.5), (1.0, 0.25), (1.0, 2.0)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=corpus.DEV)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--misses", action="store_true", help="list the questions each method misses")
    args = ap.parse_args()
    k = args.k
    c = corpus.corpus(args.corpus)
    qs = [q for q in corpus.questions(c.name) if q.answerable]
    src_q = corpus.app_api().source_queries

    with corpus.harness(c) as h:
        knowledge = h.app.state.knowledge
        index = knowledge.indexes.get(h.bot_id)
        embed = knowledge.embedder.embed
        settings = h.app.state.knowledge.settings
        vecs = embed([q.question for q in qs])

        def pages_of(ids: list[int]) -> list[str | None]:
            rows = knowledge.db.read(src_q.chunks_by_ids, ids)
            return [h.page_of_source.get(rows[i]["source_id"]) if i in rows else None for i in ids]

        methods: dict[str, object] = {
            "dense": lambda q, v: index.dense_search(v, k),
            "bm25": lambda q, v: index.lexical_search(q.question, k),
        }
        for dw, lw in WEIGHTS:
            methods[f"hybrid {dw:g}/{lw:g}"] = lambda q, v, dw=dw, lw=lw: index.search(
                v, q.question, k, dense_weight=dw, lexical_weight=lw
            )

        results: dict[str, dict[str, object]] = {}
        for name, fn in methods.items():
            hits, rr, rare_hits, misses, t = 0, 0.0, 0, [], 0.0
            for q, v in zip(qs, vecs):
                t0 = time.perf_counter()
                found = fn(q, v)  # type: ignore[operator]
                t += time.perf_counter() - t0
                pages = pages_of([r.id for r in found])
                rank = next((i for i, p in enumerate(pages) if p in q.pages), None)
                if rank is not None:
                    hits += 1
                    rr += 1 / (rank + 1)
                    rare_hits += q.kind in ("rare", "exact")
                else:
                    misses.append(q.question)
            n_rare = sum(q.kind in ("rare", "exact") for q in qs)
            results[name] = {
                "hit": round(hits / len(qs), 3),
                "mrr": round(rr / len(qs), 3),
                "rare_hit": round(rare_hits / max(n_rare, 1), 3),
                "ms": round(1000 * t / len(qs), 1),
                "misses": misses,
            }

    n_rare = sum(q.kind in ("rare", "exact") for q in qs)
    rows = [
        [name, f"{r['hit']:.3f}", f"{r['mrr']:.3f}", f"{r['rare_hit']:.3f}", r["ms"]]
        for name, r in results.items()
    ]
    header = [
        "method (dense/lexical weight)",
        f"top-{k} hit",
        f"MRR@{k}",
        f"exact terms ({n_rare})",
        "ms/query",
    ]
    table = corpus.md_table(header, rows)
    hybrids = {n: r for n, r in results.items() if n.startswith("hybrid")}
    best = max(
        hybrids, key=lambda n: (hybrids[n]["hit"], hybrids[n]["rare_hit"], hybrids[n]["mrr"])
    )
    dense_w, lexical_w = (float(x) for x in best.split()[1].split("/"))
    current = f"hybrid {settings.dense_weight:g}/{settings.lexical_weight:g}"
    summary = (
        f"{len(qs)} answerable questions, top-{k} over {len(h.page_of_source)} pages. "
        f"Best hybrid: {best} (hit {hybrids[best]['hit']:.3f}, MRR {hybrids[best]['mrr']:.3f}) "
        f"vs dense alone {results['dense']['hit']:.3f}; current setting {current}."
    )
    print(table)
    print()
    print(summary)
    if args.misses:
        for name, r in results.items():
            print(f"\n{name} misses:")
            for m in r["misses"]:  # type: ignore[union-attr]
                print("  -", m)
    line = {
        "questions": len(qs),
        "k": k,
        **{name: {kk: v for kk, v in r.items() if kk != "misses"} for name, r in results.items()},
        "recommended": {"dense_weight": dense_w, "lexical_weight": lexical_w},
    }
    print(json.dumps(line))
    corpus.write_section(
        f"retrieval:{c.name}",
        "\n".join(
            [
                f"## Retrieval by fusion weight on {c.name} ({c.role}; eval_retrieval.py)",
                "",
                f"Top-{k} hit rate: a hit = one of the top {k} chunks comes from a page that answers the question.",
                "",
                table,
                "",
                summary,
                "",
            ]
        ),
    )


if __name__ == "__main__":
    main()
