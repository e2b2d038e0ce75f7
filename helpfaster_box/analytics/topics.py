"""Topic clustering of visitor questions: k-means (faiss) on their stored embeddings, k
chosen by silhouette, labels by class-based TF-IDF, ids kept across refreshes.

- k-means: `faiss.Kmeans(spherical=True)` on the normalized MiniLM vectors (cosine
  k-means), fixed seed, so the same questions give the same clusters.
- k: the best mean silhouette (cosine distance) for k in 2..min(MAX_TOPICS, n // 3),
  scored on at most SILHOUETTE_SAMPLE questions; fewer than 2 * MIN_TOPIC_SIZE questions
  make one topic, none make none (an honest small or empty result).
- labels: c-TF-IDF (BERTopic's): the words of a cluster's questions as one document,
  tf_{t,c} * log(1 + A / f_t) with A the average words per cluster and f_t the word's
  frequency over all clusters, English stop words and question words out. The label is
  the top three keywords; the examples are the questions nearest the centroid.
- ids: each new centroid takes the id of the most similar previous one (greedy, cosine
  >= MATCH_MIN); a cluster with no such predecessor gets a new id.

Measured (tests/bench/bench_analytics.py, 2-core VM): 10,000 questions cluster in
~2 s, nearly all of it the k-means runs of the k search.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import faiss
import numpy as np

MAX_TOPICS = 12
MIN_TOPIC_SIZE = 3
SILHOUETTE_SAMPLE = 2000
KEYWORDS = 5
EXAMPLES = 3
MATCH_MIN = 0.8
SEED = 1234

_STOP_TEXT = """
    a about above after again against all also am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
    don't down during each few for from further get gets getting got had hadn't has hasn't have
    haven't having he her here hers herself him himself his how i i'd i'll i'm i've if in into is
    isn't it it's its itself just let me more most much must my myself need needs no nor not now of
    off on once one only or other our ours ourselves out over own please same she should shouldn't
    so some such than thank thanks that that's the their theirs them themselves then there there's
    these they this those through to too under until up us very want was wasn't way we were weren't
    what what's when where which while who whom why will with won't would wouldn't you your yours
    yourself hi hello hey help tell know possible anyone someone something ok okay still yet
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
_WORD = re.compile(r"[a-z][a-z0-9'-]*[a-z0-9]|[a-z]")


@dataclass(slots=True)
class Cluster:
    members: np.ndarray  # indexes into the questions
    centroid: np.ndarray  # unit length
    keywords: list[str]
    examples: list[int]  # indexes into the questions, nearest the centroid first

    @property
    def label(self) -> str:
        return ", ".join(self.keywords[:3]) or "(no distinctive words)"


def words(text: str) -> list[str]:
    return [
        w for w in _WORD.findall(text.lower().replace("\u2019", "'")) if w not in STOP_WORDS and len(w) > 2
    ]


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def kmeans(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(centroids, labels) of spherical k-means."""
    if k == 1:
        return _normalize(x.mean(axis=0, keepdims=True)), np.zeros(len(x), dtype=np.int64)
    km = faiss.Kmeans(
        x.shape[1],
        k,
        niter=25,
        nredo=2,
        seed=SEED,
        spherical=True,
        verbose=False,
        min_points_per_centroid=1,  # small inputs are fine: no faiss warning
        max_points_per_centroid=len(x) // k + 1,  # train on every question, no subsampling
    )
    km.train(x)
    _, labels = km.index.search(x, 1)
    return _normalize(np.asarray(km.centroids)), labels[:, 0].astype(np.int64)


def silhouette(x: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean silhouette with cosine distance (x unit rows); singleton points score 0."""
    dist = 1.0 - x @ x.T
    sums = np.zeros((len(x), k), dtype=np.float64)
    for c in range(k):
        sums[:, c] = dist[:, labels == c].sum(axis=1)
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    rows = np.arange(len(x))
    own = sizes[labels]
    a = np.where(own > 1, sums[rows, labels] / np.maximum(own - 1, 1), 0.0)
    means = sums / np.maximum(sizes, 1)
    means[rows, labels] = np.inf
    means[:, sizes == 0] = np.inf
    b = means.min(axis=1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def choose_k(x: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(k, centroids, labels) of the k with the best silhouette."""
    top = min(MAX_TOPICS, len(x) // MIN_TOPIC_SIZE)
    if top < 2:
        return (1, *kmeans(x, 1))
    rng = np.random.default_rng(SEED)
    sample = rng.choice(len(x), SILHOUETTE_SAMPLE, replace=False) if len(x) > SILHOUETTE_SAMPLE else None
    best: tuple[float, int, np.ndarray, np.ndarray] | None = None
    for k in range(2, top + 1):
        centroids, labels = kmeans(x, k)
        xs, ls = (x, labels) if sample is None else (x[sample], labels[sample])
        score = silhouette(xs, ls, k)
        if best is None or score > best[0] + 1e-9:
            best = (score, k, centroids, labels)
    assert best is not None
    return best[1], best[2], best[3]


def ctfidf_keywords(texts: list[str], labels: np.ndarray, k: int, top: int = KEYWORDS) -> list[list[str]]:
    counts = [Counter() for _ in range(k)]  # type: list[Counter[str]]
    for text, label in zip(texts, labels, strict=True):
        counts[int(label)].update(words(text))
    vocab = sorted(set().union(*counts))
    if not vocab:
        return [[] for _ in range(k)]
    index = {w: i for i, w in enumerate(vocab)}
    tf = np.zeros((k, len(vocab)), dtype=np.float64)
    for c, counter in enumerate(counts):
        for w, n in counter.items():
            tf[c, index[w]] = n
    avg_words = tf.sum() / k
    idf = np.log(1.0 + avg_words / tf.sum(axis=0))
    score = tf / np.maximum(tf.sum(axis=1, keepdims=True), 1) * idf
    out = []
    for c in range(k):
        order = np.argsort(-score[c], kind="stable")[:top]
        out.append([vocab[i] for i in order if score[c, i] > 0])
    return out


def _examples(texts: list[str], x: np.ndarray, members: np.ndarray, centroid: np.ndarray) -> list[int]:
    order = members[np.argsort(-(x[members] @ centroid), kind="stable")]
    picked: list[int] = []
    seen: set[str] = set()
    for i in order:
        key = " ".join(texts[i].lower().split())
        if key not in seen:
            seen.add(key)
            picked.append(int(i))
        if len(picked) == EXAMPLES:
            break
    return picked


def cluster_questions(texts: list[str], vectors: np.ndarray) -> list[Cluster]:
    """Topics of the questions, biggest first; [] for no questions."""
    if not texts:
        return []
    x = _normalize(np.ascontiguousarray(vectors, dtype=np.float32))
    k, centroids, labels = choose_k(x)
    keywords = ctfidf_keywords(texts, labels, k)
    clusters = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        if len(members):
            clusters.append(
                Cluster(members, centroids[c], keywords[c], _examples(texts, x, members, centroids[c]))
            )
    clusters.sort(key=lambda cl: -len(cl.members))
    return clusters


def match_ids(new: list[np.ndarray], old: list[tuple[str, np.ndarray]]) -> list[str | None]:
    """The previous id each new centroid inherits (None: a new topic). Greedy by similarity."""
    result: list[str | None] = [None] * len(new)
    if not new or not old:
        return result
    a = _normalize(np.asarray(new, dtype=np.float32))
    b = _normalize(np.asarray([c for _, c in old], dtype=np.float32))
    sims = a @ b.T
    taken_new: set[int] = set()
    taken_old: set[int] = set()
    for flat in np.argsort(-sims, axis=None, kind="stable"):
        i, j = divmod(int(flat), len(old))
        if sims[i, j] < MATCH_MIN:
            break
        if i not in taken_new and j not in taken_old:
            result[i] = old[j][0]
            taken_new.add(i)
            taken_old.add(j)
    return result
