"""Sentence embeddings with llama.cpp (all-MiniLM-L6-v2 GGUF by default).

Texts are tokenized here, truncated the way sentence-transformers does it, and
packed several to a llama.cpp batch through the low-level API: the high-level
`Llama.embed()` only takes strings and its truncation cuts the closing [SEP],
which moves the vector away from the original model's.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import llama_cpp
import numpy as np

# MiniLM was trained on at most 256 tokens; one llama.cpp batch holds that much,
# so the longest text is one decode and shorter ones share a decode.
MAX_TOKENS = 256


class Embedder:
    """Thread-safe embedder: one model, one lock, callers run it in worker threads."""

    def __init__(
        self, model_path: str | os.PathLike[str], n_threads: int | None = None, batch_size: int = 32
    ) -> None:
        if not Path(model_path).is_file():
            raise FileNotFoundError(f"embedding model not found: {model_path}")
        threads = n_threads or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._llama: llama_cpp.Llama | None = llama_cpp.Llama(
            model_path=str(model_path),
            embedding=True,
            n_ctx=MAX_TOKENS,
            n_batch=MAX_TOKENS,
            n_ubatch=MAX_TOKENS,  # non-causal models need a whole batch in one ubatch
            # Embedding is all prompt processing, which uses n_threads_batch.
            n_threads=threads,
            n_threads_batch=threads,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            verbose=False,
        )
        self._dim = self._llama.n_embd()
        self._max_seqs = max(1, min(batch_size, self._llama.context_params.n_seq_max))
        self._batch = llama_cpp.llama_batch_init(MAX_TOKENS, 0, 1)
        self._n_suffix = _closing_special_tokens(self._llama)
        # Encoder-only models have no KV memory; llama_decode would log and fall
        # back to llama_encode on every call.
        self._encoder_only = not llama_cpp.llama_get_memory(self._llama.ctx)

    @property
    def dim(self) -> int:
        return self._dim

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text` including special tokens, before truncation."""
        with self._lock:
            return len(self._model().tokenize(text.encode("utf-8"), add_bos=True))

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalized float32 vectors, shape (len(texts), dim), in input order."""
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if not texts:
            return out
        with self._lock:
            tokens = [self._tokenize(t) for t in texts]
        start = 0
        while start < len(tokens):
            end = self._pack(tokens, start)
            # The lock is taken per batch, not per call, so a short search query
            # waits for one batch of a large ingestion, not for all of it.
            with self._lock:
                out[start:end] = self._encode(tokens[start:end])
            start = end
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def close(self) -> None:
        with self._lock:
            if self._llama is not None:
                llama_cpp.llama_batch_free(self._batch)
                self._llama.close()
                self._llama = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals (callers hold the lock where the model is touched) --

    def _model(self) -> llama_cpp.Llama:
        if self._llama is None:
            raise RuntimeError("Embedder is closed")
        return self._llama

    def _tokenize(self, text: str) -> list[int]:
        tokens = self._model().tokenize(text.encode("utf-8"), add_bos=True)
        if len(tokens) <= MAX_TOKENS:
            return tokens
        keep = MAX_TOKENS - self._n_suffix
        return tokens[:keep] + tokens[len(tokens) - self._n_suffix :]

    def _pack(self, tokens: list[list[int]], start: int) -> int:
        """End index of the longest run from `start` that fits one batch."""
        end, used = start, 0
        while end < len(tokens) and end - start < self._max_seqs and used + len(tokens[end]) <= MAX_TOKENS:
            used += len(tokens[end])
            end += 1
        return end

    def _encode(self, seqs: list[list[int]]) -> np.ndarray:
        llama = self._model()
        b = self._batch
        i = 0
        for seq_id, toks in enumerate(seqs):
            for pos, tok in enumerate(toks):
                b.token[i] = tok
                b.pos[i] = pos
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = seq_id
                b.logits[i] = 1  # mean pooling reads every token's output
                i += 1
        b.n_tokens = i
        ctx = llama.ctx
        if self._encoder_only:
            rc = llama_cpp.llama_encode(ctx, b)
        else:
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
            rc = llama_cpp.llama_decode(ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama.cpp failed to embed a batch (code {rc})")
        vecs = np.empty((len(seqs), self._dim), dtype=np.float32)
        for seq_id in range(len(seqs)):
            ptr = llama_cpp.llama_get_embeddings_seq(ctx, seq_id)
            if not ptr:
                raise RuntimeError("llama.cpp returned no pooled embedding; is pooling enabled?")
            ctypes.memmove(vecs[seq_id].ctypes.data, ptr, self._dim * 4)
        return vecs


def _closing_special_tokens(llama: llama_cpp.Llama) -> int:
    """How many special tokens the tokenizer appends ([SEP] for BERT: 1).

    Truncation must keep them: the model saw every training text end that way.
    """
    full = llama.tokenize(b"x", add_bos=True)
    bare = llama.tokenize(b"x", add_bos=False)
    if not bare or bare[0] not in full:
        return 0
    return len(full) - len(bare) - full.index(bare[0])
