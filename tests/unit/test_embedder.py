"""The converted MiniLM GGUF, run by llama.cpp, matches the original model.

Uses the real file in models/ (placed by `python -m helpfaster_box.cli.models
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
from helpfaster_box.llm.registry import default_models_dir, list_models

pytestmark = pytest.mark.models

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "minilm_reference.json"


def default_embedding_model() -> Path:
    models_dir = default_models_dir()
    entry = next(e for e in list_models(models_dir) if e.origin == "manifest" and e.role == "embedding")
    path = models_dir / entry.file
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `python -m helpfaster_box.cli.models provision`")
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
        except Exception as e:
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


# -- the converter, on a tiny synthetic BERT (no download needed) --------------


def tiny_bert(root: Path) -> Path:
    """A 2-layer BERT in the all-MiniLM-L6-v2 package layout, random weights."""
    from safetensors.numpy import save_file

    words = ["hello", "world", "reset", "pass", "##word", "the", "a", "?", "."]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    vocab += [f"[unused{i}]" for i in range(32 - len(vocab))]
    specials = [
        {"id": i, "content": t, "special": True, "normalized": False} for i, t in enumerate(vocab[:5])
    ]
    tokenizer = {
        "added_tokens": specials,
        "normalizer": {"type": "BertNormalizer", "lowercase": True, "strip_accents": None},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
            ],
        },
        "model": {"type": "WordPiece", "vocab": {t: i for i, t in enumerate(vocab)}},
    }
    hidden, ff, layers = 32, 64, 2
    config = {
        "model_type": "bert",
        "hidden_size": hidden,
        "intermediate_size": ff,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
        "vocab_size": len(vocab),
        "layer_norm_eps": 1e-12,
    }
    tok_config = {f"{k}_token": f"[{k.upper()}]" for k in ("unk", "sep", "pad", "cls", "mask")}
    rng = np.random.default_rng(0)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    tensors = {
        "embeddings.word_embeddings.weight": w(len(vocab), hidden),
        "embeddings.position_embeddings.weight": w(64, hidden),
        "embeddings.token_type_embeddings.weight": w(2, hidden),
        "embeddings.LayerNorm.weight": np.ones(hidden, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(hidden, np.float32),
        "embeddings.position_ids": np.arange(64, dtype=np.int64)[None],
        "pooler.dense.weight": w(hidden, hidden),
        "pooler.dense.bias": w(hidden),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ):
            tensors[p + name + ".weight"], tensors[p + name + ".bias"] = (
                w(hidden, hidden),
                w(hidden),
            )
        tensors[p + "intermediate.dense.weight"] = w(ff, hidden)
        tensors[p + "intermediate.dense.bias"] = w(ff)
        tensors[p + "output.dense.weight"] = w(hidden, ff)
        tensors[p + "output.dense.bias"] = w(hidden)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[p + norm + ".weight"] = np.ones(hidden, np.float32)
            tensors[p + norm + ".bias"] = np.zeros(hidden, np.float32)

    src = root / "tiny-bert"
    (src / "1_Pooling").mkdir(parents=True)
    save_file(tensors, str(src / "model.safetensors"))
    files = {
        "config.json": config,
        "tokenizer.json": tokenizer,
        "tokenizer_config.json": tok_config,
        "modules.json": [{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}],
        "1_Pooling/config.json": {"pooling_mode_mean_tokens": True},
    }
    for name, data in files.items():
        (src / name).write_text(json.dumps(data))
    return src


def test_converter_is_deterministic_and_llama_cpp_loads_it(tmp_path: Path) -> None:
    from helpfaster_box.llm.convert_minilm import convert

    src = tiny_bert(tmp_path)
    first = convert(src, tmp_path / "a.gguf").read_bytes()
    second = convert(src, tmp_path / "b.gguf").read_bytes()
    assert first == second

    with Embedder(str(tmp_path / "a.gguf")) as emb:
        assert emb.dim == 32
        # WordPiece through llama.cpp: [CLS] reset pass ##word ? [SEP], lowercased.
        assert emb._tokenize("Reset PASSWORD?") == [2, 7, 8, 9, 12, 3]
        vecs = emb.embed(["hello world", "reset password?"])
        assert np.all(np.isfinite(vecs))
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
