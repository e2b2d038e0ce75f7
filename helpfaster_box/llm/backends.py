"""Which chat engine and embedder the server runs: in-process llama.cpp or a server.

`open_chat_engine` / `open_embedder` read `llm_backend` / `embedding_backend` and
return an object with the interface of engine.InferenceEngine / embedder.Embedder,
started, with a `readiness()` for /v1/health (kept current by a watcher every 2 s). The embeddings server's
settings fall back to the chat server's (`embedding_base_url` -> `llm_base_url`,
`embedding_api_key` -> `llm_api_key`): one llama-server or vLLM host often serves
both. The local GGUF files, when present, still give token counts and the chat
template (vocab only, no weights; see tokenizer.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpfaster_box.llm.registry import ModelError, resolve_model
from helpfaster_box.settings import Settings

log = logging.getLogger("helpfaster_box.llm")


class IndexDimensionMismatch(RuntimeError):
    """The embedding model's vectors are not the size of the stored indexes'."""


def _local_file(settings: Settings, role: str) -> str | None:
    """The local GGUF of `role`, if one is configured and present (for its tokenizer)."""
    try:
        path = resolve_model(settings, role)
    except ModelError:
        return None
    return str(path) if path.is_file() else None


def stored_dims(indexes_dir: Path) -> dict[int, list[str]]:
    """Vector size -> chatbot ids, from each saved index's meta.json."""
    dims: dict[int, list[str]] = {}
    for meta in sorted(indexes_dir.glob("*/meta.json")):
        try:
            dim = int(json.loads(meta.read_text())["dim"])
        except (OSError, ValueError, KeyError):
            continue  # unreadable: the index is rebuilt from the database when used
        dims.setdefault(dim, []).append(meta.parent.name)
    return dims


def check_index_dim(settings: Settings, dim: int, what: str) -> None:
    """Refuse to start with an embedder whose vectors cannot be searched with the stored ones."""
    other = {d: bots for d, bots in stored_dims(settings.data_path / "indexes").items() if d != dim}
    if other:
        d, bots = next(iter(other.items()))
        raise IndexDimensionMismatch(
            f"{what} gives {dim}-dimensional vectors but the stored indexes of {len(bots)} chatbot(s) "
            f"(e.g. {bots[0]}) hold {d}-dimensional ones. Use an embedding model of dimension {d}, "
            "or re-embed with `helpfaster-box reindex --reembed` using the new model."
        )


async def open_embedder(settings: Settings) -> Any:
    if settings.embedding_backend == "openai":
        from helpfaster_box.llm.remote_embedder import RemoteEmbedder

        url = settings.embedding_base_url or settings.llm_base_url
        embedder: Any = await asyncio.to_thread(
            RemoteEmbedder,
            url,
            settings.embedding_remote_model,
            settings.embedding_api_key or settings.llm_api_key,
            tokenizer_path=_local_file(settings, "embedding"),
            timeout_s=settings.llm_timeout_s,
            retries=settings.llm_retries,
        )
        what = f"the embedding server at {url}"
    else:
        from helpfaster_box.llm.embedder import Embedder

        path = resolve_model(settings, "embedding")
        embedder = await asyncio.to_thread(Embedder, str(path), settings.llm_threads or None)
        what = f"the embedding model {path.name}"
    try:
        check_index_dim(settings, embedder.dim, what)
    except IndexDimensionMismatch:
        embedder.close()
        raise
    return embedder


async def open_chat_engine(settings: Settings) -> Any:
    """The started chat engine; the caller closes it with `await engine.aclose()`."""
    if settings.llm_backend == "openai":
        from helpfaster_box.llm.remote import RemoteEngine

        remote = RemoteEngine(
            settings.llm_base_url,
            settings.llm_model,
            settings.llm_api_key,
            api=settings.llm_api,
            tokenizer_path=_local_file(settings, "chat"),
            seq_ctx=settings.llm_context_size,
            max_sequences=settings.llm_max_sequences,
            queue_size=settings.llm_queue_size,
            timeout_s=settings.llm_timeout_s,
            retries=settings.llm_retries,
        )
        await remote.astart()
        return remote
    from helpfaster_box.llm.engine import InferenceEngine

    engine = InferenceEngine(
        str(resolve_model(settings, "chat")),
        n_ctx=settings.llm_context_size,
        n_threads=settings.llm_threads or None,
        n_threads_decode=settings.llm_decode_threads or None,
        max_sequences=settings.llm_max_sequences,
        queue_size=settings.llm_queue_size,
        timeout_s=settings.llm_timeout_s,
    )
    await asyncio.to_thread(engine.start)
    return engine


def readiness(engine: Any) -> Callable[[], str]:
    """The /v1/health probe of a chat engine (synchronous: /metrics reads it too)."""
    remote: Callable[[], str] | None = getattr(engine, "readiness", None)
    if remote is not None:
        return remote
    return lambda: "ok" if engine.status()["running"] else "stopped"
