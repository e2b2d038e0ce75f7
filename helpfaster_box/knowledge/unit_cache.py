"""Answer units of hot chunks in memory, so an extractive chat turn does not read them
from DuckDB every time.

A turn reads the units of its top passages (texts, in-context vectors, standalone
vectors): one `chunk_sentences` query whose FLOAT[] columns come back as Python lists,
~5 % of the CPU of an extractive turn under 8 clients (py-spy, bench_chat_extractive),
more than the rest of the composition. The same few passages answer most questions.

Coherence, the way `Database.aread_cached` does it: this process is the database's only
writer. Entries are taken at `Database.generation` and dropped when it moves (any write
but a chat turn's bumps it: ingestion, source and chatbot deletion). A chat turn writes
standalone vectors (`chunk_sentences.alone`) with `keeps_cached=True`; the turn then
calls `forget` for those chunks. A read racing that write can put the row without the
new vectors back; the next turn then embeds those heads again and stores the same
vectors: extra work, never a wrong answer. Chunk ids come from a sequence and are never
reused, and callers check the unit texts against the passage anyway.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

from helpfaster_box.knowledge.queries import UnitRows

MAX_CHUNKS = 512  # ~10 units x 384 floats x 2 vectors each: ~15-30 MB at most


class UnitCache:
    def __init__(self, generation: Callable[[], int], max_chunks: int = MAX_CHUNKS) -> None:
        self._generation = generation
        self._max = max_chunks
        self._rows: OrderedDict[int, UnitRows | None] = OrderedDict()  # None: no units stored
        self._taken_at = -1
        self._lock = threading.Lock()

    def get(
        self, chunk_ids: list[int], read: Callable[[list[int]], dict[int, UnitRows]]
    ) -> dict[int, UnitRows]:
        """The units of these chunks: from memory, the missing ones through `read`."""
        generation = self._generation()
        with self._lock:
            if self._taken_at != generation:
                self._rows.clear()
                self._taken_at = generation
            found = {c: self._rows[c] for c in chunk_ids if c in self._rows}
            for c in found:
                self._rows.move_to_end(c)
        missing = [c for c in chunk_ids if c not in found]
        if missing:
            fresh = read(missing)
            with self._lock:
                if self._taken_at == generation == self._generation():  # nothing written meanwhile
                    for c in missing:
                        self._rows[c] = fresh.get(c)
                    while len(self._rows) > self._max:
                        self._rows.popitem(last=False)
            found.update({c: fresh.get(c) for c in missing})
        return {c: rows for c, rows in found.items() if rows is not None}

    def forget(self, chunk_ids: Iterable[int]) -> None:
        with self._lock:
            for c in chunk_ids:
                self._rows.pop(c, None)
