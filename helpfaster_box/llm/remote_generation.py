"""One request to an OpenAI-compatible server: admission, the stream, retries, stats.

RemoteEngine.generate returns a RemoteGeneration; like the local Generation
(generation.py) it is queued by the first `await` or iteration, which is where
PromptTooLong (counted with the local tokenizer) and EngineOverloaded are raised.

- Failures. Connection errors and 502/503/504 before the first token are retried
  (`retries` times, 0.25 s then 0.5 s ...); then, or when the server is down,
  EngineUnavailable, a domain `Unavailable` (503 `unavailable`). After the first
  token an error ends the request with EngineError: text cannot be unsent.
- Cancellation: `aclose()` (the client went away) closes the HTTP stream, which
  is how an OpenAI-compatible server learns to stop generating.
- Timeouts: `timeout_s` bounds a request from admission, like the local engine
  (finish_reason "timeout", text so far kept), and waiting in the queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Self

import httpx

from helpfaster_box.llm.engine import PromptTooLong
from helpfaster_box.llm.jobs import EngineError, GenerationStats
from helpfaster_box.llm.remote_wire import (
    RETRY_STATUS,
    EngineUnavailable,
    RetryableStatus,
    describe,
    event_piece,
    sse_events,
)

if TYPE_CHECKING:
    from helpfaster_box.llm.remote import RemoteEngine, _Ticket


class RemoteGeneration:
    """One request's text pieces, as an OpenAI-compatible server streams them."""

    def __init__(self, engine: RemoteEngine, tenant: str, prompt: str, path: str, body: dict[str, Any]):
        self._engine = engine
        self._tenant = tenant
        self._prompt = prompt
        self._path = path
        self._body = body
        self._ticket: _Ticket | None = None
        self._pieces: AsyncIterator[str] | None = None
        self._finished = False
        self.prompt_tokens: int | None = None
        self.stats: GenerationStats | None = None

    async def start(self) -> Self:
        """Check the size and take a place in the queue (EngineOverloaded if full)."""
        if self._ticket is None and not self._finished:
            engine = self._engine
            tokens = await asyncio.to_thread(engine.count_tokens, self._prompt)
            max_tokens = self._body["max_tokens"]
            if tokens + max_tokens > engine.seq_ctx:
                self._finished = True
                raise PromptTooLong(tokens, max_tokens, engine.seq_ctx)
            self.prompt_tokens = tokens
            self._ticket = engine._enqueue(self._tenant)
            self._pieces = self._run(self._ticket)
        return self

    def __await__(self) -> Any:
        return self.start().__await__()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        await self.start()
        if self._finished or self._pieces is None:
            raise StopAsyncIteration
        try:
            return await self._pieces.__anext__()
        except BaseException:
            self._finished = True
            raise

    async def text(self) -> str:
        return "".join([piece async for piece in self])

    async def aclose(self) -> None:
        self._finished = True
        if self._pieces is not None:
            await self._pieces.aclose()  # type: ignore[attr-defined]
        if self._ticket is not None:  # never iterated: _run's cleanup did not run
            self._engine._release(self._ticket)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _run(self, ticket: _Ticket) -> AsyncIterator[str]:
        engine = self._engine
        try:
            try:
                await asyncio.wait_for(asyncio.shield(ticket.admitted), engine.timeout_s)
            except TimeoutError:
                waited = time.monotonic() - ticket.submitted_at
                self.stats = self._stats(0, None, waited, "timeout", waited)
                return
            queue_s = time.monotonic() - ticket.submitted_at
            async for piece in self._stream(ticket, queue_s):
                yield piece
        finally:
            engine._release(ticket)
            if self.stats is not None:
                engine._observe(self.stats)

    async def _stream(self, ticket: _Ticket, queue_s: float) -> AsyncIterator[str]:
        engine = self._engine
        deadline = time.monotonic() + engine.timeout_s
        completion, first_at, finish = 0, None, "stop"
        attempt = 0
        while True:
            try:
                async with engine._http().stream("POST", self._path, json=self._body) as resp:
                    if resp.status_code != 200:
                        await self._refuse(resp)
                    engine._mark(True)
                    async for event in sse_events(resp):
                        piece, reason = event_piece(event)
                        usage = event.get("usage") or {}
                        if piece:
                            completion += 1
                            first_at = first_at or time.monotonic()
                            yield piece
                        completion = usage.get("completion_tokens", completion)
                        if reason:
                            finish = "length" if reason == "length" else "stop"
                        if time.monotonic() > deadline:
                            finish = "timeout"
                            break
                break
            except (httpx.TransportError, RetryableStatus) as exc:
                if first_at is not None:
                    raise EngineError(f"the inference engine failed mid-reply: {describe(exc)}") from exc
                attempt += 1
                if attempt > engine.retries:
                    engine._mark(False, describe(exc))
                    raise EngineUnavailable(
                        f"The inference engine at {engine.base_url} is not reachable ({describe(exc)})."
                    ) from None
                await asyncio.sleep(0.25 * 2 ** (attempt - 1))
        now = time.monotonic()
        ttft = first_at - ticket.submitted_at if first_at is not None else None
        self.stats = self._stats(completion, ttft, now - ticket.submitted_at, finish, queue_s)

    async def _refuse(self, resp: httpx.Response) -> None:
        text = (await resp.aread()).decode("utf-8", "replace")[:500]
        if resp.status_code in RETRY_STATUS:
            raise RetryableStatus(f"HTTP {resp.status_code}: {text}")
        if resp.status_code == 400 and "context" in text.lower():
            limit = self._engine.seq_ctx
            raise PromptTooLong(self.prompt_tokens or 0, self._body["max_tokens"], limit)
        raise EngineError(f"the inference engine answered HTTP {resp.status_code}: {text}")

    def _stats(
        self, completion: int, ttft: float | None, total: float, finish: Any, queue_s: float
    ) -> GenerationStats:
        return GenerationStats(
            prompt_tokens=self.prompt_tokens or 0,
            completion_tokens=completion,
            ttft_s=ttft,
            total_s=total,
            finish_reason=finish,
            cached_prefix_tokens=0,
            queue_s=queue_s,
        )
