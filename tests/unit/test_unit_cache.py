"""knowledge/unit_cache.py: hot chunks' answer units served from memory, coherent with writes."""

from __future__ import annotations

import numpy as np

from helpfaster_box.knowledge.unit_cache import UnitCache


def rows(text: str) -> tuple[list[str], np.ndarray, list[np.ndarray | None]]:
    return [text], np.zeros((1, 3), dtype=np.float32), [None]


def test_units_come_from_memory_until_a_write_or_a_forget():
    generation = [0]
    stored = {1: rows("one"), 2: rows("two")}
    reads: list[list[int]] = []

    def read(ids: list[int]) -> dict:
        reads.append(ids)
        return {i: stored[i] for i in ids if i in stored}

    cache = UnitCache(lambda: generation[0], max_chunks=3)
    assert cache.get([1, 2, 3], read).keys() == {1, 2}  # 3 has no units: remembered as such
    assert cache.get([2, 1, 3], read).keys() == {1, 2}
    assert reads == [[1, 2, 3]]
    stored[1] = rows("one, with its standalone vectors")
    cache.forget([1])  # a chat turn stored vectors of chunk 1
    assert cache.get([1], read)[1][0] == ["one, with its standalone vectors"]
    assert reads[-1] == [1]
    generation[0] += 1  # any other write (ingestion, deletion) empties it
    cache.get([2], read)
    assert reads[-1] == [2]
    cache.get([4, 5], read)
    cache.get([2], read)  # a hit: now the most recently used
    assert reads[-1] == [4, 5]
    cache.get([6], read)  # over max_chunks: the least recently used (4) goes
    cache.get([2], read)
    assert reads[-1] == [6]
    cache.get([4], read)
    assert reads[-1] == [4]
