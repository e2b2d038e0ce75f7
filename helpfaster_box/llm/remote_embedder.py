"""The Embedder interface of embedder.py, served by an OpenAI-compatible `/v1/embeddings`.

`embedding_backend = "openai"`. Same contract as the local embedder: `dim`,
`embed(texts)` -> L2-normalized float32 rows in input order (called from worker
threads, so this client is synchronous), `count_tokens` for chunk sizes,
`close()`. The dimension is asked of the server at start (one embedding of a
probe text); the caller refuses to start when it differs from the stored indexes
(backends.check_index_dim), since vectors of another size or space cannot be
searched together with the stored ones.

Token counts come from the local embedding GGUF's tokenizer (vocab only) when the
configured model file exists, else from the chunker's WordPiece over-estimate:
chunks then come out a little smaller than the server's window, never larger.
Connection errors are retried like the chat client's; then EngineUnavailable.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from typing import Any, Self

import httpx
import numpy as np

from helpfaster_box.llm.remote_wire import EngineUnavailable
from helpfaster_box.llm.tokenizer import LocalTokenizer

# knowledge/chunker.py's over-estimate of WordPiece tokens (a word is 1, long words split).
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]|\w+|[^\w\s]")
BATCH = 64  # texts per request: one ingestion batch, well under servers' input limits


class RemoteEmbedder:
    def __init__(
        self,
        base_url: str,
        model: str = "",
        api_key: str = "",
        *,
        tokenizer_path: str | None = None,
        timeout_s: float = 60.0,
        retries: int = 2,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.model = model
        self.retries = retries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            trust_env=False,
        )
        self._tokenizer = LocalTokenizer(tokenizer_path) if tokenizer_path else None
        self._dim = int(self._request(["dimension probe"]).shape[1])
        self._up = True
        self._stop = threading.Event()
        threading.Thread(target=self._watch, name="embedding-engine-watch", daemon=True).start()

    @property
    def dim(self) -> int:
        return self._dim

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is not None:
            return self._tokenizer.count(text, add_bos=True)
        return 2 + sum(1 + (len(m) - 1) // 6 for m in _WORD.findall(text))  # + [CLS], [SEP]

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            part = self._request(list(texts[start : start + BATCH]))
            if part.shape[1] != self._dim:
                raise EngineUnavailable(
                    f"The embedding engine now returns {part.shape[1]}-dimensional vectors, not {self._dim}."
                )
            out[start : start + len(part)] = part
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _request(self, texts: list[str]) -> np.ndarray:
        body: dict[str, Any] = {"input": texts}
        if self.model:
            body["model"] = self.model
        attempt = 0
        while True:
            try:
                r = self._client.post("/v1/embeddings", json=body)
                if r.status_code in (502, 503, 504):
                    raise httpx.TransportError(f"HTTP {r.status_code}")
                break
            except httpx.TransportError as exc:
                attempt += 1
                if attempt > self.retries:
                    self._up = False
                    raise EngineUnavailable(
                        f"The embedding engine at {self.base_url} is not reachable ({type(exc).__name__}: {exc})."
                    ) from None
                time.sleep(0.25 * 2 ** (attempt - 1))
        self._up = True
        if r.status_code != 200:
            raise RuntimeError(f"the embedding engine answered HTTP {r.status_code}: {r.text[:300]}")
        rows = sorted(r.json()["data"], key=lambda d: d["index"])
        vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise RuntimeError(f"the embedding engine returned {vectors.shape} for {len(texts)} texts")
        return vectors

    def readiness(self) -> str:
        """/v1/health's check: the watcher's last answer (<= 2 s old) or the last request's."""
        return "ok" if self._up else "unavailable"

    def _watch(self) -> None:
        while not self._stop.wait(2.0):
            try:
                self._up = self._client.get("/v1/models", timeout=2.0).status_code < 500
            except Exception:  # down, or the client closed under us at shutdown
                self._up = False

    def close(self) -> None:
        self._stop.set()
        self._client.close()
        if self._tokenizer is not None:
            self._tokenizer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
