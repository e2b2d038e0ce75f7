"""The one owner of the chat model. HTTP handlers never touch llama.cpp; they call

    gen = engine.generate(tenant=org_id, prompt=engine.format_chat(messages),
                          max_tokens=300, temperature=0.2)
    async for piece in gen:     # or first `gen = await engine.generate(...)`
        ...
    gen.stats                   # GenerationStats once the iteration has ended

The request is queued by the first `await` or iteration (generation.py); that is
where EngineOverloaded (queue full: 503 + Retry-After), PromptTooLong and
EngineClosed are raised, before any waiting. Waiting requests are admitted
fairly across tenants (fairqueue.py) into at most `max_sequences` slots and are
decoded together, one `llama_decode` per step, on ONE worker thread (batch.py).
ctypes releases the GIL for every foreign call, so the event loop keeps running
while llama.cpp computes; text comes back through `loop.call_soon_threadsafe`
into a per-request asyncio.Queue.

Too long: a prompt whose tokens plus `max_tokens` exceed `seq_ctx` (the most one
sequence may hold; n_ctx / max_sequences by default, see batch.py) is rejected
with `PromptTooLong`, never truncated here: only the caller knows what may go
(old turns, a retrieved chunk) and what must stay (instructions, question).

Timeouts: `timeout_s` bounds a generation from its admission to a slot; it ends
with finish_reason "timeout" and keeps the text produced so far. A request still
waiting in the queue after `timeout_s` also ends "timeout", with no text.

Cancellation: when the consumer stops (its task is cancelled, it calls
`aclose()`, leaves `async with`, or drops the object), a waiting request leaves
the queue and an active one is removed at the next step, freeing its slot.

Errors: a failure in one sequence fails only that request (EngineError); a
failed llama_decode fails the sequences of that batch; a worker that dies fails
every waiting and running request and later calls raise EngineClosed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from helpfaster_box.llm.batch import BatchDecoder
from helpfaster_box.llm.fairqueue import FairQueue, QueueFull
from helpfaster_box.llm.generation import Generation, deliver_to
from helpfaster_box.llm.jobs import EngineError, GenerationStats, Job, check_sampling

__all__ = [
    "EngineClosed",
    "EngineError",
    "EngineOverloaded",
    "Generation",
    "GenerationStats",
    "InferenceEngine",
    "PromptTooLong",
]

log = logging.getLogger("helpfaster_box.llm")

# Used when the GGUF carries no chat template.
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_MAX_STEP_FAILURES = 3  # consecutive failing steps before the worker gives up
_INLINE_TOKENIZE_CHARS = 2000  # longer prompts are tokenized off the event loop


class EngineOverloaded(Exception):
    """The waiting queue is full; answer 503 with Retry-After."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"The chat model is busy; retry in {retry_after_s} s.")
        self.retry_after_s = retry_after_s


class PromptTooLong(ValueError):
    """prompt tokens + max_tokens exceed what one sequence may hold; trim and retry."""

    def __init__(self, prompt_tokens: int, max_tokens: int, limit: int) -> None:
        super().__init__(
            f"Prompt of {prompt_tokens} tokens plus max_tokens={max_tokens} exceeds "
            f"the {limit}-token context of one request; shorten it by "
            f"{prompt_tokens + max_tokens - limit} tokens."
        )
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.limit = limit


class EngineClosed(EngineError):
    """The engine is not running (not started yet, closed, or its worker died)."""


class InferenceEngine:
    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_threads_decode: int | None = None,
        max_sequences: int = 4,
        queue_size: int = 32,
        timeout_s: float = 60.0,
        n_batch: int = 512,
        kv_unified: bool = False,
        flash_attn: bool = False,
    ) -> None:
        if max_sequences < 1 or queue_size < 1 or timeout_s <= 0:
            raise ValueError("max_sequences, queue_size and timeout_s must be positive")
        self.model_path = model_path
        self.n_threads = n_threads or len(os.sched_getaffinity(0)) or 1
        self.n_threads_decode = min(n_threads_decode or self.n_threads, self.n_threads)
        self.max_sequences = max_sequences
        self.timeout_s = timeout_s
        self._n_ctx = n_ctx
        self._n_batch = n_batch
        self._kv_unified = kv_unified
        self._flash_attn = flash_attn
        # Jobs wait here until the decoder thread admits them, also while a slot is free:
        # room for queue_size waiting jobs beyond the free slots (see submit).
        self.queue_size = queue_size
        self._queue: FairQueue[Job] = FairQueue(queue_size + max_sequences)
        self._cond = threading.Condition(threading.RLock())
        self._decoder: BatchDecoder | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._failure: BaseException | None = None
        self._readers = 0  # tokenize() calls in flight on other threads
        self._formatter: Jinja2ChatFormatter | None = None
        self._service_s = 5.0  # running estimate of one generation's duration

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Load the model (seconds; call it off the event loop) and start the worker."""
        if self._decoder is not None:
            return
        llama_logger = logging.getLogger("llama-cpp-python")
        if llama_logger.level == logging.NOTSET:
            # What Llama(verbose=False) sets. llama-cpp-python 0.3.36 maps ggml's log
            # levels off by one, so WARNING would still print every INFO load line.
            llama_logger.setLevel(logging.ERROR)
        decoder = BatchDecoder(
            self.model_path,
            n_ctx=self._n_ctx,
            n_threads=self.n_threads,
            n_threads_decode=self.n_threads_decode,
            n_seq=self.max_sequences,
            n_batch=self._n_batch,
            kv_unified=self._kv_unified,
            flash_attn=self._flash_attn,
        )
        template = llama_cpp.llama_model_chat_template(decoder.model.model, None)
        self._formatter = Jinja2ChatFormatter(
            template=template.decode("utf-8") if template else CHATML,
            eos_token=decoder.token_text(decoder.model.token_eos()),
            bos_token=decoder.token_text(decoder.model.token_bos()),
            add_generation_prompt=True,
        )
        self._decoder = decoder
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="inference-worker", daemon=True)
        self._thread.start()
        log.info(
            "chat model loaded: %s (n_ctx=%d, %d per request, %d sequences, %d threads)",
            os.path.basename(self.model_path),
            decoder.n_ctx,
            decoder.seq_ctx,
            self.max_sequences,
            self.n_threads,
        )

    def close(self) -> None:
        """Stop the worker, fail waiting and running requests with EngineClosed, free
        the model. Blocks until the current decoding step ends."""
        with self._cond:
            self._stopping = True
            waiting = self._queue.drain()
            self._cond.notify_all()
            while self._readers:
                self._cond.wait()
        closed = EngineClosed("The inference engine is shutting down.")
        for job in waiting:
            job.send([("error", closed)])
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._decoder is not None:
            self._decoder.fail_all(closed)
            self._decoder.close()
            self._decoder = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # -- facts and helpers for callers ----------------------------------------------

    @property
    def running(self) -> bool:
        return self._decoder is not None and self._failure is None and not self._stopping

    @property
    def n_ctx(self) -> int:
        return self._running_decoder().n_ctx

    @property
    def seq_ctx(self) -> int:
        """The most tokens (prompt + max_tokens) one request may use."""
        d = self._running_decoder()
        return d.n_ctx if d.kv_unified else d.seq_ctx

    def status(self) -> dict[str, Any]:
        """Snapshot for health checks and metrics."""
        with self._cond:
            d = self._decoder
            return {
                "running": self.running,
                "queued": len(self._queue),
                "active": len(d.active) if d else 0,
                "max_sequences": self.max_sequences,
                "error": repr(self._failure) if self._failure else None,
            }

    def format_chat(self, messages: Sequence[dict[str, Any]]) -> str:
        """Render messages ({"role", "content"}) with the model's chat template,
        ending with the assistant turn opener."""
        self._running_decoder()
        assert self._formatter is not None
        return self._formatter(messages=list(messages)).prompt  # type: ignore[arg-type]

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes as (part of) a prompt. Thread-safe; ~2 us a token, so
        call it from a thread for long texts."""
        return len(self._tokenize(text))

    # -- generation -----------------------------------------------------------------

    def generate(
        self,
        *,
        tenant: str,
        prompt: str,
        max_tokens: int,
        temperature: float,
        top_p: float = 0.95,
        repeat_penalty: float = 1.1,
        stop: Sequence[str] = (),
        seed: int = 0,
    ) -> Generation:
        """A request for a completion of `prompt`, queued by the first `await` of the
        result or the first iteration over it; see generation.py. Bad arguments raise
        ValueError and a stopped engine EngineClosed here, at once."""
        check_sampling(max_tokens, temperature, top_p, repeat_penalty, stop)
        self._running_decoder()
        request = {
            "tenant": tenant,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "repeat_penalty": repeat_penalty,
            "stop": tuple(stop),
            "seed": seed,
        }
        return Generation(self, request)

    async def _submit(self, gen: Generation, request: dict[str, Any]) -> Job:
        prompt: str = request["prompt"]
        if len(prompt) <= _INLINE_TOKENIZE_CHARS:
            tokens = self._tokenize(prompt)
        else:  # ~3 ms for 1,300 tokens: not on the event loop
            tokens = await asyncio.to_thread(self._tokenize, prompt)
        if not tokens:
            raise ValueError("prompt is empty")
        limit = self.seq_ctx
        if len(tokens) + request["max_tokens"] > limit:
            raise PromptTooLong(len(tokens), request["max_tokens"], limit)
        fields = {k: v for k, v in request.items() if k != "prompt"}
        job = Job(prompt_tokens=tokens, deliver=deliver_to(asyncio.get_running_loop(), gen), **fields)
        with self._cond:
            self._running_decoder()
            # A job the decoder has not picked up yet still has a free slot waiting for it:
            # only jobs beyond the free slots count against queue_size (under load the
            # decoder thread can lag a request or two behind the event loop).
            d = self._decoder
            free = max(0, self.max_sequences - (len(d.active) if d else 0))
            if len(self._queue) >= self.queue_size + free:
                raise EngineOverloaded(self._retry_after())
            try:
                self._queue.put(job)
            except QueueFull:
                raise EngineOverloaded(self._retry_after()) from None
            self._cond.notify()
        gen.prompt_tokens = len(tokens)
        return job

    def _tokenize(self, text: str) -> list[int]:
        # close() waits for tokenizations in flight before it frees the model.
        with self._cond:
            decoder = self._running_decoder()
            self._readers += 1
        try:
            return decoder.tokenize(text)
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    def _running_decoder(self) -> BatchDecoder:
        if self._failure is not None:
            raise EngineClosed(f"The inference engine stopped after an error: {self._failure!r}")
        if self._decoder is None or self._stopping:
            raise EngineClosed("The inference engine is not running.")
        return self._decoder

    def _retry_after(self) -> int:
        rounds = (len(self._queue) + self.max_sequences) / self.max_sequences
        return max(1, min(60, math.ceil(rounds * self._service_s)))

    def _observe(self, stats: GenerationStats) -> None:
        self._service_s = 0.8 * self._service_s + 0.2 * (stats.total_s - stats.queue_s)

    def _cancel(self, job: Job) -> None:
        with self._cond:
            if not self._queue.remove(job):
                job.cancelled = True  # active: the worker drops it at its next step

    # -- the worker thread ----------------------------------------------------------

    def _run(self) -> None:
        decoder = self._decoder
        assert decoder is not None
        failures = 0
        try:
            while True:
                with self._cond:
                    while not self._stopping and not decoder.active and not len(self._queue):
                        self._cond.wait()
                    if self._stopping:
                        return
                    self._admit(decoder)
                    if not decoder.active:
                        # Waiters but none admissible: should not happen (sizes are
                        # checked at submit); never spin on it.
                        self._cond.wait(timeout=0.05)
                        continue
                try:
                    decoder.step(self.timeout_s)
                    failures = 0
                except Exception as exc:
                    failures += 1
                    log.exception("decoding step failed (%d in a row)", failures)
                    decoder.fail_all(EngineError(f"generation failed: {exc}"))
                    if failures >= _MAX_STEP_FAILURES:
                        raise
        except BaseException as exc:
            log.critical("inference worker died; failing all requests", exc_info=True)
            with self._cond:
                self._failure = exc
                waiting = self._queue.drain()
            error = EngineError(f"The inference engine stopped after an error: {exc!r}")
            for job in waiting:
                job.send([("error", error)])
            decoder.fail_all(error)

    def _admit(self, decoder: BatchDecoder) -> None:
        """Under the lock: drop abandoned or expired waiters, fill free slots fairly."""
        now = time.monotonic()
        for job in list(self._queue):
            if job.cancelled:
                self._queue.remove(job)
            elif now - job.submitted_at >= self.timeout_s:
                self._queue.remove(job)
                job.send([("done", _queue_timeout_stats(job, now))])
        while True:
            nxt = self._queue.peek(decoder.active_count)
            if nxt is None or not decoder.can_admit(nxt):
                return
            self._queue.pop(nxt)
            try:
                decoder.admit(nxt)
            except Exception as exc:
                log.exception("admitting a request failed")
                nxt.send([("error", EngineError(f"admission failed: {exc}"))])


def _queue_timeout_stats(job: Job, now: float) -> GenerationStats:
    waited = now - job.submitted_at
    return GenerationStats(
        prompt_tokens=len(job.prompt_tokens),
        completion_tokens=0,
        ttft_s=None,
        total_s=waited,
        finish_reason="timeout",
        cached_prefix_tokens=0,
        queue_s=waited,
    )
