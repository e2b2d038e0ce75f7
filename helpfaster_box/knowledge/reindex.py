"""`helpfaster-box reindex`: rebuild chatbots' indexes from the database, offline.

The database is the truth (chunks and their vectors); the index files are derived
from it. This runs with the server stopped, so it does not go through the
knowledge worker; with an embedder it first embeds every chunk again (after a
switch of embedding model), writing passage and unit vectors in one transaction
per chatbot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from helpfaster_box.knowledge import queries as src_q
from helpfaster_box.knowledge.passages import embed_passages, passage_text
from helpfaster_box.retrieval.registry import IndexRegistry
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import Database

log = logging.getLogger("helpfaster_box.knowledge")


def reindex(
    settings: Settings,
    db: Database,
    chatbot_id: str | None = None,
    embedder: Any = None,
    log_fn: Callable[[str], Any] = log.info,
) -> dict[str, int]:
    """Rebuild chatbots' indexes from the database (the server must be stopped).

    With an embedder, every chunk is embedded again first: needed after switching
    to a different embedding model, whose vectors are not comparable.
    """
    bots = [chatbot_id] if chatbot_id else db.read(src_q.chatbots_with_chunks)
    done: dict[str, int] = {}
    registry: IndexRegistry | None = None
    for bot in bots:
        ids, vectors, sections, texts = db.read(src_q.all_chunks, bot)
        passages = [passage_text(s, t) for s, t in zip(sections, texts, strict=False)]
        if embedder is not None and len(ids):
            vectors, unit_texts, unit_vectors = embed_passages(embedder, sections, texts)
            owners = db.read(src_q.owners_of_chunks, [int(i) for i in ids])

            db.write(_write_embeddings, ids, vectors, owners, unit_texts, unit_vectors)
        if len(ids) == 0:
            vectors = np.zeros((0, embedder.dim if embedder else 384), np.float32)
        if registry is None:
            registry = IndexRegistry(settings.data_path / "indexes", vectors.shape[1])
        registry.rebuild(bot, ids, vectors, passages)
        done[bot] = len(ids)
        log_fn(f"{bot}: {len(ids)} chunks indexed")
    return done


def _write_embeddings(
    cur: Any,
    ids: np.ndarray,
    vectors: np.ndarray,
    owners: list[tuple[str, str]],
    unit_texts: list[list[str]],
    unit_vectors: list[np.ndarray],
) -> None:
    src_q.set_embeddings(cur, ids, vectors)
    src_q.replace_units(cur, [int(i) for i in ids], owners, unit_texts, unit_vectors)
