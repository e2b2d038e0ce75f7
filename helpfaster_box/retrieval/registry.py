"""One index per chatbot, kept in memory and on disk under `data_dir/indexes/<chatbot id>/`."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from helpfaster_box.retrieval import index_files
from helpfaster_box.retrieval.dense import HNSW_EF_SEARCH
from helpfaster_box.retrieval.index import APPROX_THRESHOLD, COMPACT_SHARE, ChatbotIndex
from helpfaster_box.retrieval.index_files import IndexCorrupt

_CHATBOT_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


class IndexRegistry:
    """One ChatbotIndex per chatbot under `root/<chatbot_id>/`, loaded on first use."""

    def __init__(
        self,
        root: str | Path,
        dim: int,
        *,
        approx_threshold: int = APPROX_THRESHOLD,
        ef_search: int = HNSW_EF_SEARCH,
        compact_share: float = COMPACT_SHARE,
    ) -> None:
        self.root = Path(root)
        self.dim = dim
        self.approx_threshold = approx_threshold
        self.ef_search = ef_search
        self.compact_share = compact_share
        self._lock = threading.Lock()
        self._indexes: dict[str, ChatbotIndex] = {}

    def path(self, chatbot_id: str) -> Path:
        if not _CHATBOT_ID.fullmatch(chatbot_id):  # it becomes a directory name
            raise ValueError(f"bad chatbot id {chatbot_id!r}")
        return self.root / chatbot_id

    def _new(self) -> ChatbotIndex:
        return ChatbotIndex(
            self.dim,
            approx_threshold=self.approx_threshold,
            ef_search=self.ef_search,
            compact_share=self.compact_share,
        )

    def get(self, chatbot_id: str) -> ChatbotIndex:
        """The cached index, else the saved one, else a new empty one. Raises IndexCorrupt
        if a saved index is unreadable (the caller rebuilds it from the database)."""
        with self._lock:
            index = self._indexes.get(chatbot_id)
            if index is None:
                index = self._read(chatbot_id) or self._new()
                self._indexes[chatbot_id] = index
            return index

    def load(self, chatbot_id: str) -> ChatbotIndex | None:
        """(Re)read the saved index, replacing the cached one; None if never saved."""
        with self._lock:
            index = self._read(chatbot_id)
            if index is not None:
                self._indexes[chatbot_id] = index
            return index

    def _read(self, chatbot_id: str) -> ChatbotIndex | None:
        directory = self.path(chatbot_id)
        if not index_files.exists(directory):
            return None
        index = ChatbotIndex.load(
            directory,
            approx_threshold=self.approx_threshold,
            ef_search=self.ef_search,
            compact_share=self.compact_share,
        )
        if index.dim != self.dim:
            raise IndexCorrupt(f"{directory}: dim {index.dim}, the embedder gives {self.dim}")
        return index

    def save(self, chatbot_id: str) -> None:
        with self._lock:
            index = self._indexes.get(chatbot_id)
        if index is not None:  # dropped meanwhile: nothing to keep
            index.save(self.path(chatbot_id))

    def rebuild(
        self, chatbot_id: str, ids: npt.ArrayLike, vectors: npt.ArrayLike, texts: Sequence[str]
    ) -> ChatbotIndex:
        """A fresh index from the database's chunks, saved, then swapped in."""
        index = self._new()
        index.add(ids, np.asarray(vectors, np.float32).reshape(-1, self.dim), texts)
        index.save(self.path(chatbot_id))
        with self._lock:
            self._indexes[chatbot_id] = index
        return index

    def drop(self, chatbot_id: str) -> None:
        """Forget the chatbot's index and delete its files."""
        with self._lock:
            index = self._indexes.pop(chatbot_id, None)
            if index is not None:
                index.discard()  # waits for a save under way; later saves do nothing
            shutil.rmtree(self.path(chatbot_id), ignore_errors=True)
