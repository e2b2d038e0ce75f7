"""The converted MiniLM GGUF, run by llama.cpp, matches the original model.

Uses the real file in models/ (placed by `python -m helpfaster_box.models
provision`); a missing model is a failure, not a skip: the appliance cannot
retrieve anything without it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from helpfaster_box.llm.embedder import MAX_TOKENS, Embedder
from helpfaster_box.models import default_models_dir, list_models

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "minilm_reference.json"


def default_embedding_model() -> Path:
    models_dir = default_models_dir()
    entry = next(
        e for e in list_models(models_dir) if e.origin == "manifest" and e.role == "embedding"
    )
    path = models_dir / entry.file
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `python -m helpfaster_box.models provision`")
    return path


@pytest.fixture(scope="module")
def embedder() -> Iterator[Embedder]:
    emb = Embedder(str(default_embedding_model()))
    yield emb
    emb.close()


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def test_matches_reference_vectors(embedder: Embedder, reference: dict) -> None:
    texts = [item["text"] for item in reference["items"]]
    want = np.array([item["vector"] for item in reference["items"]], dtype=np.float32)
    # The fixture must exercise truncation, or the [SEP]-keeping path goes untested.
    assert max(embedder.count_tokens(t) for t in texts) > reference["max_tokens"] == MAX_TOKENS

    got = embedder.embed(texts)

    sims = cosines(got, want)
    worst = int(np.argmin(sims))
    assert sims.min() >= 0.999, f"cosine {sims[worst]:.6f} for {texts[worst][:60]!r}"


def test_vectors_are_normalized_float32(embedder: Embedder) -> None:
    vecs = embedder.embed(["refund policy", "x", ""])
    assert embedder.dim == 384
    assert vecs.dtype == np.float32 and vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_batch_equals_single(embedder: Embedder, reference: dict) -> None:
    texts = [item["text"] for item in reference["items"]]
    batch = embedder.embed(texts)
    single = np.stack([embedder.embed_one(t) for t in texts])
    # Packed sequences go through differently shaped matmuls: equal up to float noise.
    np.testing.assert_allclose(batch, single, atol=1e-4)
    assert cosines(batch, single).min() >= 0.99999


def test_truncation_keeps_closing_sep(embedder: Embedder) -> None:
    long_text = " ".join(f"word{i}" for i in range(400))
    assert embedder.count_tokens(long_text) > MAX_TOKENS
    tokens = embedder._tokenize(long_text)
    assert len(tokens) == MAX_TOKENS
    assert tokens[-1] == embedder._tokenize("")[-1]  # [SEP]


def test_concurrent_callers_get_their_own_vectors(embedder: Embedder, reference: dict) -> None:
    texts = [item["text"] for item in reference["items"]]
    expected = embedder.embed(texts)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            order = texts[i % len(texts) :] + texts[: i % len(texts)]
            results[i] = np.roll(embedder.embed(order), i % len(texts), axis=0)
        except Exception as e:  # noqa: BLE001 -- surfaced by the assert below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got in results.values():
        assert cosines(got, expected).min() >= 0.99999


def test_closed_embedder_refuses_work() -> None:
    emb = Embedder(str(default_embedding_model()))
    emb.close()
    emb.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        emb.embed_one("hello")
