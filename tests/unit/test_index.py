"""ChatbotIndex / IndexRegistry: dense + BM25 hybrid retrieval, removal, persistence.

Synthetic unit vectors stand in for embeddings; no model is needed.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import bm25s
import numpy as np
import pytest

from helpfaster_box.retrieval import index_files
from helpfaster_box.retrieval.index import ChatbotIndex, IndexCorrupt
from helpfaster_box.retrieval.lexical import TokenStore, build_bm25, is_identifier, tokenize
from helpfaster_box.retrieval.registry import IndexRegistry

DIM = 32
WORDS = [f"w{i}" for i in range(400)]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def corpus(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    ids = np.arange(1000, 1000 + n, dtype=np.int64)
    vecs = unit(rng.standard_normal((n, DIM)))
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(5, 30)))) for _ in range(n)]
    return ids, vecs, texts


def ids_of(hits: list) -> list[int]:
    return [h.id for h in hits]


def with_cosine(q: np.ndarray, cos: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector whose cosine with unit vector q is exactly `cos`."""
    u = rng.standard_normal(DIM)
    u -= (u @ q) * q
    return unit(cos * q + np.sqrt(1 - cos**2) * unit(u))


# --- tokenizer and BM25 -------------------------------------------------------


def test_tokenizer_keeps_technical_terms_whole_and_split() -> None:
    toks = tokenize("E: Unable to locate. Run sudo apt-get update; see /etc/apt/sources.list")
    assert {
        "e:",
        "e:unable",
        "apt-get",
        "apt",
        "get",
        "etc/apt/sources.list",
        "sources.list",
    } <= set(toks)
    assert {"err_1234", "err", "1234", "0x80070005"} <= set(tokenize("ERR_1234 then 0x80070005."))
    assert tokenize("How do I reset my passwords?") == ["reset", "password"]
    assert [
        t for t in ["err_4711", "0x80070005", "sources.list", "apt-get", "404", "printer"] if is_identifier(t)
    ] == ["err_4711", "0x80070005", "sources.list", "apt-get"]


def test_bm25_scores_match_bm25s() -> None:
    _, _, texts = corpus(300)
    store = TokenStore()
    store.append(*store.encode([tokenize(t) for t in texts]))
    flat, offsets, n_vocab = store.snapshot()
    ours = build_bm25(flat, offsets, n_vocab, epoch=0)
    ref = bm25s.BM25(method="lucene")
    ref.index([tokenize(t) for t in texts], show_progress=False)
    for query in ["w1 w2", "w7 w250 w3", "w399"]:
        expected = ref.get_scores(tokenize(query))
        np.testing.assert_allclose(ours.scores(store.query_terms(query)), expected, atol=1e-5)


# --- add / search / remove ------------------------------------------------------


def test_add_search_remove_from_both_indexes() -> None:
    ids, vecs, texts = corpus(200)
    texts[17] = "printer shows ERR_4711 after the firmware update"
    index = ChatbotIndex(DIM)
    index.add(ids[:100], vecs[:100], texts[:100])
    index.add(ids[100:], vecs[100:], texts[100:])  # incremental
    target = int(ids[17])
    assert len(index) == 200 and target in index

    assert ids_of(index.dense_search(vecs[17], 3))[0] == target
    assert index.dense_search(vecs[17], 1)[0].dense == pytest.approx(1.0, abs=1e-5)
    assert ids_of(index.lexical_search("err_4711", 3)) == [target]
    hit = index.search(vecs[17], "ERR_4711", 5)[0]
    assert hit.id == target and hit.lexical and hit.dense == pytest.approx(1.0, abs=1e-5)

    assert index.remove([target, 999_999]) == 1  # unknown ids are ignored
    assert len(index) == 199 and target not in index
    assert target not in ids_of(index.dense_search(vecs[17], 50))
    assert index.lexical_search("err_4711", 3) == []
    assert target not in ids_of(index.search(vecs[17], "ERR_4711", 50))


def test_add_replaces_an_existing_id() -> None:
    ids, vecs, texts = corpus(50)
    index = ChatbotIndex(DIM)
    index.add(ids, vecs, texts)
    index.add(ids[:1], vecs[1:2], ["now about zebras"])
    assert len(index) == 50
    assert ids_of(index.lexical_search("zebras", 5)) == [int(ids[0])]
    assert set(ids_of(index.dense_search(vecs[1], 2))) == {int(ids[0]), int(ids[1])}


def test_add_rejects_mismatched_input() -> None:
    index = ChatbotIndex(DIM)
    with pytest.raises(ValueError):
        index.add([1, 2], np.zeros((2, DIM + 1), np.float32), ["a", "b"])
    with pytest.raises(ValueError):
        index.add([1, 1], np.ones((2, DIM), np.float32), ["a", "b"])
    assert index.search(np.ones(DIM), "anything", 5) == []


@pytest.mark.parametrize("lexical_weight", [1.0, 0.5])
@pytest.mark.parametrize("dense_rank", [40, 150])  # inside / outside the dense pool of 50
def test_exact_rare_term_beats_dense_neighbours_in_fusion(lexical_weight: float, dense_rank: int) -> None:
    """Vectors rank a wall of look-alike chunks first, and all of them share the query's
    plain words; only one chunk names the error code. Fusion puts that one on top."""
    rng = np.random.default_rng(1)
    q = unit(rng.standard_normal(DIM))
    n = 200
    cosines = np.linspace(0.8, 0.0, n)  # chunk i is dense rank i + 1
    vecs = np.stack([with_cosine(q, c, rng) for c in cosines])
    texts = [f"access denied while updating drivers, case {i}: reboot and retry" for i in range(n)]
    target = dense_rank - 1
    texts[target] = "Event 0x80070005: access denied while updating drivers. Run as admin."
    index = ChatbotIndex(DIM)
    index.add(np.arange(n), vecs, texts)
    assert target not in ids_of(index.dense_search(q, 10))
    assert ids_of(index.lexical_search("0x80070005", 3)) == [target]
    query = "access denied 0x80070005 when updating drivers"
    hits = index.search(q, query, 5, dense_weight=1.0, lexical_weight=lexical_weight)
    assert hits[0].id == target and hits[0].exact
    assert not any(h.exact for h in hits[1:])
    assert hits[0].dense == pytest.approx(cosines[target], abs=1e-4)  # exact cosine, for the gate
    assert ids_of(hits[1:]) == [0, 1, 2, 3]  # the rest keeps the fused order
    # A word every chunk has is no identifier: no bonus, plain fusion.
    assert ids_of(index.search(q, "updating drivers", 3, lexical_weight=lexical_weight)) == [
        0,
        1,
        2,
    ]


# --- persistence ----------------------------------------------------------------


@pytest.mark.parametrize("threshold", [10_000, 150])  # flat, then HNSW
def test_save_load_round_trip_gives_identical_results(tmp_path: Path, threshold: int) -> None:
    ids, vecs, texts = corpus(300)
    index = ChatbotIndex(DIM, approx_threshold=threshold)
    index.add(ids, vecs, texts)
    index.remove(ids[::10])  # tombstones must survive the round trip too
    index.save(tmp_path / "bot")
    loaded = ChatbotIndex.load(tmp_path / "bot", approx_threshold=threshold)
    assert (loaded.kind, len(loaded)) == (index.kind, len(index))
    assert loaded.kind == ("hnsw" if threshold == 150 else "flat")
    for i in range(0, 300, 13):
        query = " ".join(texts[i].split()[:3])
        assert loaded.search(vecs[i], query, 10) == index.search(vecs[i], query, 10)
        assert loaded.dense_search(vecs[i], 10) == index.dense_search(vecs[i], 10)
        assert loaded.lexical_search(query, 10) == index.lexical_search(query, 10)


def test_save_replaces_the_previous_generation(tmp_path: Path) -> None:
    ids, vecs, texts = corpus(60)
    index = ChatbotIndex(DIM)
    index.add(ids[:30], vecs[:30], texts[:30])
    index.save(tmp_path)
    index.add(ids[30:], vecs[30:], texts[30:])
    index.save(tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["meta.json", *(f["name"] for f in meta["files"].values())]
    )
    assert len(ChatbotIndex.load(tmp_path)) == 60


def test_interrupted_save_keeps_the_previous_index(tmp_path: Path, monkeypatch) -> None:
    ids, vecs, texts = corpus(60)
    index = ChatbotIndex(DIM)
    index.add(ids[:30], vecs[:30], texts[:30])
    index.save(tmp_path)
    index.add(ids[30:], vecs[30:], texts[30:])

    def crash(*args: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(index_files.os, "replace", crash)  # dies just before the commit
    with pytest.raises(OSError):
        index.save(tmp_path)
    monkeypatch.undo()
    assert len(ChatbotIndex.load(tmp_path)) == 30


def _break(directory: Path, how: str) -> None:
    meta = json.loads((directory / "meta.json").read_text())
    if how == "no meta":
        (directory / "meta.json").unlink()
        return
    if how == "bad meta":
        (directory / "meta.json").write_text("{not json")
        return
    if how == "meta rows":
        meta["rows"] += 1
        (directory / "meta.json").write_text(json.dumps(meta))
        return
    part = {"missing ids": "ids", "truncated dense": "dense", "flipped tokens": "tokens"}[how]
    path = directory / meta["files"][part]["name"]
    data = bytearray(path.read_bytes())
    if how.startswith("missing"):
        path.unlink()
    elif how.startswith("truncated"):
        path.write_bytes(data[: len(data) // 2])
    else:
        data[-3] ^= 0xFF
        path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "how",
    ["no meta", "bad meta", "meta rows", "missing ids", "truncated dense", "flipped tokens"],
)
def test_damaged_files_raise_index_corrupt(tmp_path: Path, how: str) -> None:
    ids, vecs, texts = corpus(40)
    index = ChatbotIndex(DIM)
    index.add(ids, vecs, texts)
    index.save(tmp_path)
    _break(tmp_path, how)
    with pytest.raises(IndexCorrupt):
        ChatbotIndex.load(tmp_path)


# --- flat -> HNSW switch, removal after it, compaction ----------------------------


def test_switch_to_hnsw_keeps_results_and_remove_still_works() -> None:
    ids, vecs, texts = corpus(400, seed=3)
    index = ChatbotIndex(DIM, approx_threshold=250, compact_share=0.25)
    index.add(ids[:200], vecs[:200], texts[:200])
    assert index.kind == "flat"
    queries = range(0, 200, 7)
    before = [ids_of(index.dense_search(vecs[i], 10)) for i in queries]
    index.add(ids[200:], vecs[200:], texts[200:])
    assert index.kind == "hnsw" and len(index) == 400

    exact = ChatbotIndex(DIM)  # the old rows' neighbours may now include new rows
    exact.add(ids, vecs, texts)
    recall = np.mean(
        [
            len(set(ids_of(index.dense_search(vecs[i], 10))) & set(ids_of(exact.dense_search(vecs[i], 10))))
            / 10
            for i in queries
        ]
    )
    assert recall >= 0.95
    assert all(
        b[0] == ids_of(index.dense_search(vecs[i], 1))[0] for b, i in zip(before, queries, strict=False)
    )

    gone = ids[:60]  # 15 % dead: tombstoned, not yet compacted
    assert index.remove(gone) == 60
    assert index.kind == "hnsw" and index.dead_rows == 60
    for i in range(0, 60, 5):
        query = " ".join(texts[i].split()[:4])
        for hits in (
            index.search(vecs[i], query, 20),
            index.dense_search(vecs[i], 20),
            index.lexical_search(query, 20),
        ):
            assert not set(ids_of(hits)) & set(gone.tolist())
    assert ids_of(index.dense_search(vecs[300], 1)) == [int(ids[300])]

    index.remove(ids[60:120])  # 30 % dead: compacted (still above half the threshold)
    assert index.dead_rows == 0 and index.kind == "hnsw" and len(index) == 280
    assert ids_of(index.search(vecs[300], texts[300], 1)) == [int(ids[300])]
    assert ids_of(index.lexical_search(texts[300], 1)) == [int(ids[300])]

    index.remove(ids[120:300])  # far below the threshold: back to exact search
    assert index.kind == "flat" and len(index) == 100
    assert ids_of(index.search(vecs[350], texts[350], 1)) == [int(ids[350])]


def test_concurrent_searches_during_writes_and_rebuilds() -> None:
    ids, vecs, texts = corpus(600, seed=5)
    index = ChatbotIndex(DIM, approx_threshold=300)
    index.add(ids[:100], vecs[:100], texts[:100])
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher() -> None:
        rng = np.random.default_rng()
        try:
            while not stop.is_set():
                i = int(rng.integers(0, 600))
                for hit in index.search(vecs[i], texts[i], 10):
                    assert hit.dense is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for start in range(100, 600, 50):  # crosses the threshold; removals force compactions
        index.add(ids[start : start + 50], vecs[start : start + 50], texts[start : start + 50])
        index.remove(ids[start - 100 : start - 60])
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors
    live = set(ids.tolist()) - {int(i) for s in range(100, 600, 50) for i in ids[s - 100 : s - 60]}
    assert len(index) == len(live)
    assert set(ids_of(index.search(vecs[590], texts[590], 50))) <= live


# --- registry -------------------------------------------------------------------


def test_registry_creates_saves_loads_and_drops(tmp_path: Path) -> None:
    ids, vecs, texts = corpus(80)
    registry = IndexRegistry(tmp_path, DIM)
    assert registry.load("bot_a") is None  # never saved
    index = registry.get("bot_a")
    assert registry.get("bot_a") is index and len(index) == 0
    index.add(ids, vecs, texts)
    registry.save("bot_a")

    fresh = IndexRegistry(tmp_path, DIM)
    assert fresh.get("bot_a").search(vecs[3], texts[3], 5) == index.search(vecs[3], texts[3], 5)
    with pytest.raises(IndexCorrupt):
        IndexRegistry(tmp_path, DIM + 1).get("bot_a")  # embedder changed: rebuild

    rebuilt = fresh.rebuild("bot_b", ids[:10], vecs[:10], texts[:10])
    assert len(IndexRegistry(tmp_path, DIM).get("bot_b")) == 10 and fresh.get("bot_b") is rebuilt

    held = fresh.get("bot_a")  # e.g. an ingestion thread still holds it
    fresh.drop("bot_a")
    assert not (tmp_path / "bot_a").exists()
    held.save(tmp_path / "bot_a")  # a late save must not bring the files back
    assert not (tmp_path / "bot_a").exists()
    assert len(fresh.get("bot_a")) == 0
    with pytest.raises(ValueError):
        fresh.get("../etc")


def test_registry_get_raises_on_corrupt_index(tmp_path: Path) -> None:
    ids, vecs, texts = corpus(20)
    registry = IndexRegistry(tmp_path, DIM)
    registry.rebuild("bot_c", ids, vecs, texts)
    meta = json.loads((tmp_path / "bot_c" / "meta.json").read_text())
    os.remove(tmp_path / "bot_c" / meta["files"]["vocab"]["name"])
    with pytest.raises(IndexCorrupt):
        IndexRegistry(tmp_path, DIM).get("bot_c")
