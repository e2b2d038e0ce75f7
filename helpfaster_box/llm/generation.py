"""The consumer's side of one request: an async iterator of text pieces.

The request is queued by the first `await gen` or the first iteration, whichever
comes first; that is where EngineOverloaded / PromptTooLong / EngineClosed are
raised, before any waiting. So both `async for piece in engine.generate(...)`
and `gen = await engine.generate(...)` work.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Self

from helpfaster_box.llm.jobs import Event, GenerationStats, Job

if TYPE_CHECKING:
    from helpfaster_box.llm.engine import InferenceEngine


class Generation:
    """Text pieces of one request, as they are produced; `stats` after the end."""

    def __init__(self, engine: InferenceEngine, request: dict[str, Any]) -> None:
        self._engine = engine
        self._request = request
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._job: Job | None = None
        self._started = False
        self._finished = False
        self.prompt_tokens: int | None = None  # known once queued
        self.stats: GenerationStats | None = None

    async def start(self) -> Self:
        """Queue the request now (otherwise the first `await` or iteration does)."""
        if not self._started:
            self._started = True
            try:
                self._job = await self._engine._submit(self, self._request)
            except BaseException:
                self._finished = True
                raise
        return self

    def __await__(self) -> Generator[Any, None, Self]:
        return self.start().__await__()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        if not self._started:
            await self.start()
        if self._finished:
            raise StopAsyncIteration
        try:
            kind, value = await self._events.get()
        except BaseException:  # cancelled: the client is gone
            self._abandon()
            raise
        if kind == "text":
            return str(value)
        self._finished = True
        if kind == "done":
            self.stats = value
            self._engine._observe(value)
            raise StopAsyncIteration
        raise value

    async def text(self) -> str:
        """The whole completion, for callers that do not stream."""
        return "".join([piece async for piece in self])

    async def aclose(self) -> None:
        self._abandon()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._abandon()

    def __del__(self) -> None:
        # May run on any thread, even the worker's mid-step: only flag, never lock.
        if not self._finished and self._job is not None:
            self._job.cancelled = True

    def _receive(self, events: list[Event]) -> None:
        for event in events:
            self._events.put_nowait(event)

    def _abandon(self) -> None:
        if not self._finished:
            self._finished = True
            if self._job is not None:
                self._engine._cancel(self._job)


def deliver_to(loop: asyncio.AbstractEventLoop, gen: Generation) -> Callable[[list[Event]], None]:
    # A weak reference: the worker holding the job must not keep an abandoned
    # Generation alive, or its __del__ (our "client went away" signal) never runs.
    ref = weakref.ref(gen)

    def receive(events: list[Event]) -> None:
        target = ref()
        if target is not None:
            target._receive(events)

    def deliver(events: list[Event]) -> None:
        loop.call_soon_threadsafe(receive, events)

    return deliver
