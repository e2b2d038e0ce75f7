"""What is embedded for a chunk: its passage text, its vector, its answer units' vectors.

Ingestion (ingestion.py) and the offline rebuild with a new embedder (reindex.py)
must embed a chunk the same way, or the vectors of re-embedded chunks would not be
comparable with freshly ingested ones; both call `embed_passages`, and the index's
BM25 side reads the same `passage_text`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from helpfaster_box.knowledge.units import head, unit_pieces, units


def passage_text(section: str | None, text: str) -> str:
    """What is embedded and indexed: the heading gives a chunk its context."""
    return f"{section}\n{text}" if section else text


def embed_passages(
    embedder: Any, sections: list[str | None], texts: list[str]
) -> tuple[np.ndarray, list[list[str]], list[np.ndarray]]:
    """The passages' vectors, and per passage its answer units (`knowledge.units`) with
    their vectors, read from the same forward pass (`Embedder.embed_spans`): storing a
    vector per unit costs ingestion no extra model work. A unit cut off by the
    embedder's 256-token window (rare: chunks are ≤ chunk_tokens) is embedded alone."""
    cut = [unit_pieces(f"{s}\n" if s else "", t) for s, t in zip(sections, texts, strict=True)]
    unit_texts = [units(t) for t in texts]
    if hasattr(embedder, "embed_spans"):
        vectors, parts = embedder.embed_spans([pieces for pieces, _ in cut])
        unit_vectors = [part[which] for part, (_, which) in zip(parts, cut, strict=True)]
    else:  # an embedder without span vectors: each unit on its own
        vectors = embedder.embed([passage_text(s, t) for s, t in zip(sections, texts, strict=True)])
        unit_vectors = [embedder.embed([head(u) for u in us]) for us in unit_texts]
    for units_, vecs in zip(unit_texts, unit_vectors, strict=True):
        lost = [i for i in range(len(units_)) if not np.any(vecs[i])]
        if lost:
            vecs[lost] = embedder.embed([head(units_[i]) for i in lost])
    return vectors, unit_texts, unit_vectors
