"""The worker side of the engine: one llama.cpp context decoding many sequences.

Everything here runs on the engine's single worker thread, except `tokenize`
and `piece`, which only read the (immutable) vocabulary.

`n_seq` slots; slot i decodes as llama sequence id i. Each step is one
`llama_decode` holding the next token of every generating sequence plus prompt
chunks of newly admitted ones (the way llama.cpp's server batches).

KV layout. By default every sequence gets its own KV stream of n_ctx / n_seq
cells (`kv_unified=False`). Measured with llama.cpp 0.3.36: in one unified
pool, a sequence's cells land wherever there is room, attention then sums in
a different order, and greedy output changes with whatever else is running.
Separate streams give the same tokens as a lone `Llama.create_completion`
under any load, and attention only scans the sequence's own cells. The price:
one request can use at most n_ctx / n_seq tokens. `kv_unified=True` trades
that back (any request up to n_ctx, admission waits for room) for
load-dependent output.

Prefix reuse. A slot remembers which tokens its sequence holds in the KV
cache after its request ends. A new request goes to the free slot sharing
the longest prefix with its prompt; if a busy slot shares more, its cache is
copied over (a buffer copy between streams; tagging the same cells with a
second sequence id in a unified pool). Only the rest of the prompt is decoded.
Chatbot prompts start with the same instructions and a follow-up turn repeats
the previous conversation, so this skips most prompt work.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
import llama_cpp._internals as internals

from helpfaster_box.llm.jobs import EngineError, Event, FinishReason, GenerationStats, Job
from helpfaster_box.llm.sampling import PENALTY_LAST_N, greedy_token, make_sampler
from helpfaster_box.llm.textstream import TextStream

log = logging.getLogger("helpfaster_box.llm")


@dataclass(eq=False)
class Slot:
    seq_id: int
    cached: list[int] = field(default_factory=list)  # tokens at positions 0.. in the KV cache
    job: Job | None = None
    pending: list[int] = field(default_factory=list)  # prompt tokens still to decode
    next_token: int | None = None  # sampled, not yet decoded
    sampler: Any = None  # native chain when sampling at temperature > 0
    recent: deque[int] = field(default_factory=lambda: deque(maxlen=PENALTY_LAST_N))
    text: TextStream | None = None
    last_used: float = 0.0


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


SMALL_STEP_TOKENS = 16


class BatchDecoder:
    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int,
        n_threads: int,
        n_seq: int,
        n_threads_decode: int | None = None,
        n_batch: int = 512,
        kv_unified: bool = False,
        flash_attn: bool = False,
    ) -> None:
        llama_cpp.llama_backend_init()
        # verbose=True only stops llama-cpp-python from dup2()-ing fds 1 and 2 to
        # /dev/null while loading, which would swallow every other thread's output;
        # llama.cpp's own chatter is filtered by the logger level set by the engine.
        self.model = internals.LlamaModel(
            path_model=model_path, params=llama_cpp.llama_model_default_params(), verbose=True
        )
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = min(n_batch, n_ctx)
        params.n_seq_max = n_seq
        params.kv_unified = kv_unified
        params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if flash_attn
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        # llama.cpp uses n_threads for one-token steps and n_threads_batch for the rest
        # (prompts, several sequences at once). A small model's one-token step is too
        # little work to split: on 2 cores SmolLM2-135M made 119 tok/s on one thread
        # and 37 on two (thread hand-offs dominate).
        params.n_threads = n_threads_decode or n_threads
        params.n_threads_batch = n_threads
        self._threads = (params.n_threads, n_threads)  # (small steps, prompt-sized steps)
        self._threads_now = (params.n_threads, params.n_threads_batch)
        params.no_perf = True
        try:
            self.ctx = internals.LlamaContext(model=self.model, params=params, verbose=True)
        except Exception:
            self.model.close()
            raise
        self.kv_unified = kv_unified
        self.n_ctx = llama_cpp.llama_n_ctx(self.ctx.ctx)
        # The most one sequence can hold: prompt + completion must fit in this.
        self.seq_ctx = llama_cpp.llama_n_ctx_seq(self.ctx.ctx)
        self.n_batch = min(n_batch, n_ctx)
        self.batch = internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1)
        self.vocab = self.model.vocab
        self.n_vocab = self.model.n_vocab()
        self.add_bos = self.model.add_bos_token()
        self.slots = [Slot(seq_id=i) for i in range(n_seq)]
        self._pieces: dict[int, bytes] = {}

    # -- read-only helpers, safe from any thread -------------------------------------

    def tokenize(self, text: str) -> list[int]:
        # special=True: chat templates contain control tokens such as <|im_start|>
        return self.model.tokenize(text.encode("utf-8"), add_bos=self.add_bos, special=True)

    def token_text(self, token: int) -> str:
        return self.model.token_get_text(token) if token >= 0 else ""

    def piece(self, token: int) -> bytes:
        cached = self._pieces.get(token)
        if cached is None:
            buf = ctypes.create_string_buffer(64)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
            cached = self._pieces[token] = buf.raw[:n]
        return cached

    # -- admission ------------------------------------------------------------------

    @property
    def active(self) -> list[Slot]:
        return [s for s in self.slots if s.job is not None]

    def has_free_slot(self) -> bool:
        return any(s.job is None for s in self.slots)

    def active_count(self, tenant: str) -> int:
        return sum(1 for s in self.slots if s.job is not None and s.job.tenant == tenant)

    def can_admit(self, job: Job) -> bool:
        if not self.has_free_slot():
            return False
        if not self.kv_unified:
            return True  # a free slot is a free stream of seq_ctx cells
        # Shared pool: room for every active worst case once idle caches are evicted?
        reserved = sum(s.job.kv_need for s in self.slots if s.job is not None)
        return reserved + job.kv_need <= self.n_ctx

    def admit(self, job: Job) -> None:
        prompt = job.prompt_tokens
        # Reuse at most all-but-one prompt token: the last one must be decoded to get logits.
        limit = len(prompt) - 1

        def shared(s: Slot) -> int:
            return min(common_prefix(s.cached, prompt), limit)

        free = [s for s in self.slots if s.job is None]
        best_free = max(free, key=shared)
        best_any = max(self.slots, key=shared)
        reuse_free, reuse_any = shared(best_free), shared(best_any)
        if reuse_free > 0 and reuse_free >= reuse_any:
            slot, reuse = best_free, reuse_free
            if not self._memory_rm(slot.seq_id, reuse, -1):
                reuse = 0
                self._memory_rm(slot.seq_id, -1, -1)
            del slot.cached[reuse:]
        else:
            # Take an empty or the least recently used idle slot; borrow the prefix
            # from the busy slot that has it (shared cells, no copy of data).
            slot = min(free, key=lambda s: (len(s.cached) > 0, s.last_used))
            self._memory_rm(slot.seq_id, -1, -1)
            reuse = reuse_any
            if reuse > 0:
                mem = self.ctx.memory
                if self.kv_unified:
                    llama_cpp.llama_memory_seq_cp(mem, best_any.seq_id, slot.seq_id, 0, reuse)
                else:
                    # Between streams llama.cpp copies only whole sequences (else it aborts).
                    llama_cpp.llama_memory_seq_cp(mem, best_any.seq_id, slot.seq_id, -1, -1)
                    self._memory_rm(slot.seq_id, reuse, -1)
            slot.cached = prompt[:reuse]

        job.admitted_at = time.monotonic()
        job.cached_prefix_tokens = reuse
        slot.sampler = make_sampler(job, self.n_vocab)
        slot.text = TextStream(job.stop)
        slot.pending = prompt[reuse:]
        slot.next_token = None
        slot.job = job
        if self.kv_unified:
            self._evict_idle()

    def _evict_idle(self) -> None:
        """Drop idle prefix caches, least recently used first, until every active
        sequence's worst case fits in the context."""

        def used() -> int:
            return sum(s.job.kv_need if s.job is not None else len(s.cached) for s in self.slots)

        idle = sorted((s for s in self.slots if s.job is None and s.cached), key=lambda s: s.last_used)
        while idle and used() > self.n_ctx:
            victim = idle.pop(0)
            self._memory_rm(victim.seq_id, -1, -1)
            victim.cached = []

    def _sample(self, slot: Slot, index: int) -> int:
        job = slot.job
        assert job is not None
        if slot.sampler is not None:
            return int(slot.sampler.sample(self.ctx, index))  # records the token itself
        token = greedy_token(self.ctx.ctx, index, self.n_vocab, job.repeat_penalty, slot.recent)
        slot.recent.append(token)
        return token

    def _memory_rm(self, seq_id: int, p0: int, p1: int) -> bool:
        return bool(llama_cpp.llama_memory_seq_rm(self.ctx.memory, seq_id, p0, p1))

    # -- one decoding step ----------------------------------------------------------

    def step(self, timeout_s: float) -> None:  # noqa: C901 - the decode loop, kept in one piece on purpose (see module doc)
        now = time.monotonic()
        for slot in self.active:
            assert slot.job is not None
            if slot.job.cancelled:
                self._finish(slot, "cancelled")
            elif now - slot.job.admitted_at >= timeout_s:
                self._finish(slot, "timeout")

        b = self.batch.batch
        n = 0
        outputs: list[tuple[Slot, int]] = []
        decoded: list[tuple[Slot, list[int]]] = []

        def add(slot: Slot, tokens: list[int], want_logits: bool) -> None:
            nonlocal n
            pos = len(slot.cached)
            for j, token in enumerate(tokens):
                b.token[n] = token
                b.pos[n] = pos + j
                b.n_seq_id[n] = 1
                b.seq_id[n][0] = slot.seq_id
                b.logits[n] = 0
                n += 1
            if want_logits:
                b.logits[n - 1] = 1
                outputs.append((slot, n - 1))
            decoded.append((slot, tokens))

        # Generating sequences first: one token each, so they never wait on a prompt.
        for slot in self.active:
            if slot.next_token is not None:
                add(slot, [slot.next_token], True)
        for slot in sorted(self.active, key=lambda s: s.job.admitted_at if s.job else 0.0):
            room = self.n_batch - n
            if room <= 0:
                break
            if slot.next_token is None and slot.pending:
                chunk = slot.pending[:room]
                add(slot, chunk, len(chunk) == len(slot.pending))
        if n == 0:
            return
        b.n_tokens = n
        # A step of a few sequences' next tokens is as little work as one token: keep it
        # on the decode threads too; only prompt-sized steps are worth splitting.
        few, many = self._threads
        wanted = (few, few if n <= SMALL_STEP_TOKENS else many)
        if wanted != self._threads_now:
            llama_cpp.llama_set_n_threads(self.ctx.ctx, *wanted)
            self._threads_now = wanted

        rc = llama_cpp.llama_decode(self.ctx.ctx, b)
        if rc != 0:
            error = EngineError(f"llama_decode failed with code {rc}")
            log.error("%s; failing %d sequences", error, len(decoded))
            for slot, _ in decoded:
                self._fail(slot, error)
            return

        for slot, tokens in decoded:
            slot.cached.extend(tokens)
            if slot.next_token is not None:
                slot.next_token = None
            else:
                del slot.pending[: len(tokens)]
        for slot, index in outputs:
            try:
                self._accept(slot, index)
            except Exception as exc:  # one sequence's bug must not take the others down
                log.exception("sequence %d failed", slot.seq_id)
                self._fail(slot, EngineError(f"generation failed: {exc}"))

    def _accept(self, slot: Slot, index: int) -> None:
        job, text = slot.job, slot.text
        assert job is not None and text is not None
        token = self._sample(slot, index)
        if job.first_token_at is None:
            job.first_token_at = time.monotonic()
        if llama_cpp.llama_vocab_is_eog(self.vocab, token):
            self._finish(slot, "stop")
            return
        job.completion_tokens += 1
        out = text.feed(self.piece(token))
        if text.stopped:
            self._finish(slot, "stop", out)
        elif job.completion_tokens >= job.max_tokens:
            self._finish(slot, "length", out)
        else:
            slot.next_token = token
            if out:
                job.send([("text", out)])

    # -- ending a sequence ----------------------------------------------------------

    def _finish(self, slot: Slot, reason: FinishReason, out: str = "") -> None:
        job, text = slot.job, slot.text
        assert job is not None
        if reason != "cancelled" and text is not None:
            out += text.finish()
        now = time.monotonic()
        stats = GenerationStats(
            prompt_tokens=len(job.prompt_tokens),
            completion_tokens=job.completion_tokens,
            ttft_s=None if job.first_token_at is None else job.first_token_at - job.submitted_at,
            total_s=now - job.submitted_at,
            finish_reason=reason,
            cached_prefix_tokens=job.cached_prefix_tokens,
            queue_s=job.admitted_at - job.submitted_at,
        )
        events: list[Event] = [("text", out)] if out else []
        self._release(slot)
        if reason != "cancelled":
            job.send([*events, ("done", stats)])
        log.debug("sequence %d finished: %s", slot.seq_id, stats)

    def _fail(self, slot: Slot, error: Exception) -> None:
        job = slot.job
        self._release(slot)
        # Its cache state is unknown now; start that slot from scratch.
        self._memory_rm(slot.seq_id, -1, -1)
        slot.cached = []
        if job is not None:
            job.send([("error", error)])

    def _release(self, slot: Slot) -> None:
        if slot.sampler is not None:
            slot.sampler.close()
        slot.job, slot.sampler, slot.text = None, None, None
        slot.recent.clear()
        slot.pending, slot.next_token = [], None
        slot.last_used = time.monotonic()
        # A prompt cut short leaves positions beyond `cached` untouched; nothing to trim.

    def fail_all(self, error: Exception) -> None:
        for slot in self.active:
            self._fail(slot, error)

    def close(self) -> None:
        for slot in self.slots:
            if slot.sampler is not None:
                slot.sampler.close()
                slot.sampler = None
        self.batch.close()
        self.ctx.close()
        self.model.close()
