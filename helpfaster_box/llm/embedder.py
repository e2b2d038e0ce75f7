"""Sentence embeddings with llama.cpp (all-MiniLM-L6-v2 GGUF by default).

Texts are tokenized here, truncated the way sentence-transformers does it, and
packed several to a llama.cpp batch through the low-level API: the high-level
`Llama.embed()` only takes strings and its truncation cuts the closing [SEP],
which moves the vector away from the original model's.

The context returns every token's output (pooling NONE) and the mean pooling is done
here: the same vector llama.cpp's MEAN pooling gives (max |diff| ~1e-6), and the same
forward pass also yields a vector per *span* of a text (`embed_spans`: the mean of its
tokens' outputs, read in the context of the whole passage). Ingestion uses it to store
a vector per answer sentence at no extra model cost: embedding each sentence on its
own costs as much again as embedding the chunks (measured on 120 handbook chunks:
24.1 s for their 1,126 sentences against 25.1 s for the chunks).
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
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_NONE,  # pooled here, see the docstring
            verbose=False,
        )
        self._dim = self._llama.n_embd()
        self._max_seqs = max(1, min(batch_size, self._llama.context_params.n_seq_max))
        self._batch = llama_cpp.llama_batch_init(MAX_TOKENS, 0, 1)
        self._n_suffix = _closing_special_tokens(self._llama)
        self._prefix, self._suffix = _special_tokens(self._llama)
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
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        with self._lock:
            tokens = [self._tokenize(t) for t in texts]
        return self._run(tokens, None)[0]

    def embed_spans(self, pieces: Sequence[Sequence[str]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each text given as its pieces (their concatenation is the text): the texts'
        vectors, as `embed` gives them, and per text a (len(pieces), dim) array of its
        pieces' vectors in context (L2-normalized; a zero row for a piece cut off by
        truncation). One forward pass per text, as for `embed`."""
        if not pieces:
            return np.zeros((0, self._dim), dtype=np.float32), []
        tokens: list[list[int]] = []
        spans: list[list[tuple[int, int]]] = []
        with self._lock:
            model = self._model()
            for parts in pieces:
                seq, bounds = list(self._prefix), []
                for part in parts:
                    start = len(seq)
                    seq.extend(model.tokenize(part.encode("utf-8"), add_bos=False) if part.strip() else [])
                    bounds.append((start, len(seq)))
                seq.extend(self._suffix)
                if len(seq) > MAX_TOKENS:
                    keep = MAX_TOKENS - len(self._suffix)
                    seq = seq[:keep] + list(self._suffix)
                    bounds = [(min(a, keep), min(b, keep)) for a, b in bounds]
                tokens.append(seq)
                spans.append(bounds)
        return self._run(tokens, spans)

    def _run(
        self, tokens: list[list[int]], spans: list[list[tuple[int, int]]] | None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        out = np.zeros((len(tokens), self._dim), dtype=np.float32)
        parts: list[np.ndarray] = []
        start = 0
        while start < len(tokens):
            end = self._pack(tokens, start)
            # The lock is taken per batch, not per call, so a short search query
            # waits for one batch of a large ingestion, not for all of it.
            with self._lock:
                per_token = self._encode(tokens[start:end])
            offset = 0
            for i in range(start, end):
                n = len(tokens[i])
                rows = per_token[offset : offset + n]
                out[i] = rows.mean(axis=0)
                if spans is not None:
                    vecs = np.zeros((len(spans[i]), self._dim), dtype=np.float32)
                    for j, (a, b) in enumerate(spans[i]):
                        if b > a:
                            vecs[j] = rows[a:b].mean(axis=0)
                    parts.append(_normalized(vecs))
                offset += n
            start = end
        return _normalized(out), parts

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
                b.logits[i] = 1  # the pooling reads every token's output
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
        ptr = llama_cpp.llama_get_embeddings(ctx)
        if not ptr:
            raise RuntimeError("llama.cpp returned no token embeddings")
        rows = np.empty((i, self._dim), dtype=np.float32)
        ctypes.memmove(rows.ctypes.data, ptr, i * self._dim * 4)
        return rows


def _normalized(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _special_tokens(llama: llama_cpp.Llama) -> tuple[list[int], list[int]]:
    """The tokens the tokenizer puts before and after a text ([CLS] and [SEP] for BERT)."""
    full = llama.tokenize(b"x", add_bos=True)
    bare = llama.tokenize(b"x", add_bos=False)
    if not bare or bare[0] not in full:
        return [], []
    at = full.index(bare[0])
    return full[:at], full[at + len(bare) :]


def _closing_special_tokens(llama: llama_cpp.Llama) -> int:
    """How many special tokens the tokenizer appends ([SEP] for BERT: 1).

    Truncation must keep them: the model saw every training text end that way.
    """
    full = llama.tokenize(b"x", add_bos=True)
    bare = llama.tokenize(b"x", add_bos=False)
    if not bare or bare[0] not in full:
        return 0
    return len(full) - len(bare) - full.index(bare[0])
