"""Retrieval benchmark: one chatbot with 100k chunks, hybrid (FAISS + BM25) search.

Run: .venv/bin/python tests/bench/bench_search.py [--n 100000] [--queries 300]
Prints one JSON line. Vectors are a clustered mixture (200 topics x 2000 sub-topics,
Zipf-sized, normalized), since uniform random vectors are a pathological case for
HNSW; texts are ~80-200 words drawn from a Zipf vocabulary mixed with the chunk's
topic words, with error codes and file paths sprinkled in.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from helpfaster_box.retrieval.index import ChatbotIndex
from helpfaster_box.retrieval.lexical import build_bm25, tokenize

T = TypeVar("T")
TOPICS, SUBTOPICS, VOCAB = 200, 2000, 30_000


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def pseudo_word(i: int) -> str:
    """Letters only (a digit would make it look like an error code to the tokenizer)."""
    letters = ""
    for _ in range(4):
        i, r = divmod(i, 26)
        letters += chr(97 + r)
    return "x" + letters


def make_corpus(n: int, dim: int, rng: np.random.Generator):
    topics = unit(rng.standard_normal((TOPICS, dim)))
    sub_topic = rng.integers(0, TOPICS, SUBTOPICS)
    centers = unit(topics[sub_topic] + 0.8 * unit(rng.standard_normal((SUBTOPICS, dim))))
    weights = 1.0 / np.arange(1, SUBTOPICS + 1) ** 0.8
    weights /= weights.sum()
    label = rng.choice(SUBTOPICS, size=n, p=weights)
    vecs = np.empty((n, dim), np.float32)
    for start in range(0, n, 20_000):  # bounded temporary memory
        lab = label[start : start + 20_000]
        noise = rng.standard_normal((len(lab), dim)).astype(np.float32) / np.sqrt(dim)
        vecs[start : start + len(lab)] = unit(centers[lab] + noise)

    words = np.array([pseudo_word(i) for i in range(VOCAB)])
    zipf = 1.0 / np.arange(1, VOCAB + 1) ** 1.07
    zipf /= zipf.sum()
    topic_words = rng.integers(1000, VOCAB, (TOPICS, 40))  # each topic's jargon
    lens = rng.integers(80, 200, n)
    general = words[rng.choice(VOCAB, size=int(lens.sum()), p=zipf)]
    texts: list[str] = []
    pos = 0
    for i in range(n):
        t = sub_topic[label[i]]
        body = list(general[pos : pos + lens[i]])
        pos += lens[i]
        body[::4] = words[rng.choice(topic_words[t], size=len(body[::4]))]
        if i % 20 == 0:
            body.append(f"ERR_{i:06d}")
        if i % 33 == 0:
            body.append(f"/etc/app{i % 500}/config.yaml")
        texts.append(" ".join(body))
    return vecs, texts, centers, label, sub_topic, topic_words, words


def make_queries(count: int, dim: int, rng, centers, label, sub_topic, topic_words, words, n):
    """A question about chunk i: near its sub-topic centre, with 3 of its topic's words
    and one common word; every 4th is about a chunk with an error code and quotes it."""
    picks = rng.integers(0, n, count)
    picks[::4] = picks[::4] // 20 * 20
    noise = rng.standard_normal((count, dim)).astype(np.float32) / np.sqrt(dim)
    qvecs = unit(centers[label[picks]] + 1.2 * noise)
    qtexts = []
    for j, i in enumerate(picks):
        terms = list(words[rng.choice(topic_words[sub_topic[label[i]]], size=3)])
        terms.append(words[rng.integers(20, 500)])
        if j % 4 == 0:
            terms.append(f"ERR_{i:06d}")
        qtexts.append("how do I fix " + " ".join(terms))
    return qvecs, qtexts


def percentiles(samples: list[float]) -> tuple[float, float]:
    ms = np.array(samples) * 1000
    return round(float(np.percentile(ms, 50)), 3), round(float(np.percentile(ms, 99)), 3)


def timed(fn: Callable[..., T], *args: Any, **kw: Any) -> tuple[float, T]:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    r: dict[str, object] = {"n": args.n, "dim": args.dim, "cores": os.cpu_count()}

    t_gen, data = timed(make_corpus, args.n, args.dim, rng)
    vecs, texts, centers, label, sub_topic, topic_words, words = data
    qvecs, qtexts = make_queries(
        args.queries, args.dim, rng, centers, label, sub_topic, topic_words, words, args.n
    )
    ids = np.arange(args.n, dtype=np.int64) * 7 + 3  # caller-assigned, not row numbers
    r["avg_tokens_per_chunk"] = round(float(np.mean([len(tokenize(t)) for t in texts[:2000]])), 1)

    index = ChatbotIndex(args.dim)
    r["build_s"], _ = timed(index.add, ids, vecs, texts)  # tokenize + HNSW + BM25
    r["kind"] = index.kind
    r["tokenize_s"], _ = timed(lambda: sum(len(tokenize(t)) for t in texts))
    flat, offsets, n_vocab = index._tokens.snapshot()  # what add() and load() build from
    r["bm25_build_s"], _ = timed(build_bm25, flat, offsets, n_vocab, 0)

    # Latency: one query at a time, as a chat request does it.
    hybrid, dense, lexical = [], [], []
    for q, text in zip(qvecs, qtexts, strict=False):
        hybrid.append(timed(index.search, q, text, 10, dense_weight=1.0, lexical_weight=0.5)[0])
        dense.append(timed(index.dense_search, q, 10)[0])
        lexical.append(timed(index.lexical_search, text, 10)[0])
    r["p50_ms"], r["p99_ms"] = percentiles(hybrid)
    r["dense_p50_ms"], r["dense_p99_ms"] = percentiles(dense)
    r["lexical_p50_ms"], r["lexical_p99_ms"] = percentiles(lexical)

    # Recall@10 of the index in use against exact inner-product search.
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(vecs)
    _, truth = exact.search(qvecs, 10)
    got = [[(h.id - 3) // 7 for h in index.dense_search(q, 10)] for q in qvecs]
    r["recall_at_10"] = round(
        float(np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, truth, strict=False)])), 4
    )
    exact.reset()

    # Questions quoting an error code: is the chunk naming it first? (hybrid vs dense)
    coded = [
        (q, t, int(t.split("ERR_")[1]) * 7 + 3) for q, t in zip(qvecs, qtexts, strict=False) if "ERR_" in t
    ]
    r["error_code_top1"] = round(
        float(
            np.mean(
                [
                    index.search(q, t, 10, dense_weight=1.0, lexical_weight=0.5)[0].id == want
                    for q, t, want in coded
                ]
            )
        ),
        3,
    )
    r["error_code_top1_dense_only"] = round(
        float(np.mean([index.dense_search(q, 10)[0].id == want for q, t, want in coded])), 3
    )

    # Persistence: save, then load + first search (the BM25 part is rebuilt at load).
    with tempfile.TemporaryDirectory() as tmp:
        r["save_s"], _ = timed(index.save, tmp)
        r["index_mb"] = round(sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20, 1)
        r["load_s"], loaded = timed(ChatbotIndex.load, tmp)
        r["first_search_after_load_s"], _ = timed(loaded.search, qvecs[0], qtexts[0], 10)
        del loaded

    # One new 100-chunk source: add() rebuilds BM25 itself, so the next search is fast.
    new_ids = np.arange(100, dtype=np.int64) + 10 * args.n
    r["add_100_s"], _ = timed(index.add, new_ids, vecs[:100], texts[:100])
    r["first_search_after_add_s"], _ = timed(index.search, qvecs[1], qtexts[1], 10)

    # Delete 30 % of the chunks: compaction rebuilds the index while searches continue.
    during: list[float] = []
    stop = threading.Event()

    def search_loop() -> None:
        i = 0
        while not stop.is_set():
            during.append(timed(index.search, qvecs[i % len(qvecs)], qtexts[i % len(qtexts)], 10)[0])
            i += 1
            time.sleep(0.005)

    searcher = threading.Thread(target=search_loop)
    searcher.start()
    r["remove_30pct_with_compaction_s"], _ = timed(index.remove, ids[: int(0.3 * args.n)])
    stop.set()
    searcher.join()
    r["searches_during_compaction"] = len(during)
    r["max_ms_during_compaction"] = round(max(during) * 1000, 1) if during else None
    r["loadavg_1m"] = round(os.getloadavg()[0], 2)
    r["gen_s"] = round(t_gen, 1)
    for key, value in r.items():
        if isinstance(value, float) and key.endswith("_s"):
            r[key] = round(value, 3)
    print(json.dumps(r))


if __name__ == "__main__":
    main()
