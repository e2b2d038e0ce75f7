"""The chat engine interface of engine.py, served by an OpenAI-compatible server.

`llm_backend = "openai"` sends generation to `llm_base_url` (llama.cpp's
llama-server, `python -m llama_cpp.server`, vLLM, or a load balancer in front of
several) instead of the in-process llama.cpp. The chat service cannot tell the
two apart: `generate(tenant=..., prompt=...)` is the same async iterator with
`.stats`, with the same EngineOverloaded / PromptTooLong and the same
cancellation; `format_chat`, `count_tokens` and `status` have the same meaning.

- Prompts. `format_chat` returns a `ChatPrompt`: the text the local engine would
  get (rendered with the chat template of the local chat GGUF, else ChatML) that
  also carries the messages. With `llm_api = "chat"` (default) the messages go to
  `/v1/chat/completions` and the server applies its own model's template, the
  only correct choice for a model this box has no file of; with "completions"
  the rendered text goes to `/v1/completions`, byte for byte the local prompt.
- Token counts (passage budget, the prompt + max_tokens check) come from the
  local chat GGUF's tokenizer, loaded with `vocab_only=True` (~0.1 s, a few MB,
  no weights); without one, `len(text) / 3`, which over-counts English BPE text
  (~4 characters a token). A server that still finds the context too small
  answers 400, which becomes PromptTooLong like a local overflow. (Asking the
  server's `/tokenize` would put a network round trip inside the synchronous
  prompt assembly, three times a turn.)
- Admission. At most `max_sequences` requests stream from the server at once;
  the rest wait in the same FairQueue as the local engine (an idle org's request
  goes before a busy org's backlog); a full queue is EngineOverloaded (503 busy).
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
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import httpx

from helpfaster_box.errors import Unavailable
from helpfaster_box.llm.engine import CHATML, EngineOverloaded, PromptTooLong
from helpfaster_box.llm.fairqueue import FairQueue, QueueFull
from helpfaster_box.llm.jobs import EngineError, GenerationStats, check_sampling
from helpfaster_box.llm.tokenizer import LocalTokenizer

log = logging.getLogger("helpfaster_box.llm")

_RETRY_STATUS = {502, 503, 504}
_PROBE_TTL_S = 1.0  # probes within a second share one answer
_WATCH_S = 2.0  # how often the server is asked whether it is up (health reads the answer)


class EngineUnavailable(Unavailable):
    """The external inference engine cannot be reached (503 `unavailable`)."""


class ChatPrompt(str):
    """A rendered prompt that also remembers the messages it was rendered from."""

    messages: list[dict[str, Any]]

    def __new__(cls, text: str, messages: Sequence[dict[str, Any]]) -> Self:
        obj = super().__new__(cls, text)
        obj.messages = [dict(m) for m in messages]
        return obj


@dataclass(eq=False)
class _Ticket:
    tenant: str
    admitted: asyncio.Future[None]
    submitted_at: float = field(default_factory=time.monotonic)
    released: bool = False


class RemoteEngine:
    def __init__(
        self,
        base_url: str,
        model: str = "",
        api_key: str = "",
        *,
        api: str = "chat",
        tokenizer_path: str | None = None,
        seq_ctx: int = 8192,
        max_sequences: int = 4,
        queue_size: int = 32,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        retries: int = 2,
    ) -> None:
        if api not in ("chat", "completions"):
            raise ValueError("api must be 'chat' or 'completions'")
        if max_sequences < 1 or queue_size < 1 or timeout_s <= 0:
            raise ValueError("max_sequences, queue_size and timeout_s must be positive")
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.model = model
        self.api = api
        self.max_sequences = max_sequences
        self.timeout_s = timeout_s
        self.retries = retries
        self.seq_ctx = seq_ctx
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._tokenizer_path = tokenizer_path
        self._tokenizer: LocalTokenizer | None = None
        self._client: httpx.AsyncClient | None = None
        self._queue: FairQueue[_Ticket] = FairQueue(queue_size)
        self._active: dict[str, int] = {}
        self._service_s = 5.0
        self._last_error: str | None = None
        self._probe: tuple[float, bool] = (0.0, False)
        self._watcher: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------

    async def astart(self) -> None:
        """Open the connection pool and load the local tokenizer. A server that is down
        is not fatal here: it is reported by health and answered with 503 until it is up."""
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=self._timeout,
            # Keep-alive for every slot plus health probes; no proxy from the environment.
            limits=httpx.Limits(max_connections=self.max_sequences + 4),
            trust_env=False,
        )
        if self._tokenizer_path:
            self._tokenizer = await asyncio.to_thread(LocalTokenizer, self._tokenizer_path)
        if await self.check():
            log.info("external chat engine at %s is up (model %r)", self.base_url, self.model or "default")
        else:
            log.warning("external chat engine at %s is not reachable: %s", self.base_url, self._last_error)
        self._watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(_WATCH_S)
            await self.check()

    async def aclose(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        for ticket in self._queue.drain():
            if not ticket.admitted.done():
                ticket.admitted.set_exception(EngineUnavailable("The inference engine is shutting down."))
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def check(self) -> bool:
        """Is the server answering? GET /v1/models, at most once a second."""
        at, ok = self._probe
        if time.monotonic() - at < _PROBE_TTL_S:
            return ok
        try:
            r = await self._http().get("/v1/models", timeout=2.0)
            ok = r.status_code < 500
            self._last_error = None if ok else f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            ok, self._last_error = False, _describe(exc)
        self._probe = (time.monotonic(), ok)
        return ok

    def readiness(self) -> str:
        """/v1/health's check: the last answer of the watcher or of a request (<= 2 s old)."""
        return "ok" if self.running else "unavailable"

    # -- facts and helpers for callers ----------------------------------------------

    @property
    def running(self) -> bool:
        return self._client is not None and self._probe[1]

    def status(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "queued": len(self._queue),
            "active": sum(self._active.values()),
            "max_sequences": self.max_sequences,
            "error": self._last_error,
            "backend": "openai",
            "base_url": self.base_url,
        }

    def format_chat(self, messages: Sequence[dict[str, Any]]) -> ChatPrompt:
        if self._tokenizer is not None:
            text = self._tokenizer.format_chat(messages)
        else:
            text = LocalTokenizer.render(CHATML, messages)
        return ChatPrompt(text, messages)

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is not None:
            return self._tokenizer.count(text)
        return max(1, math.ceil(len(text) / 3))

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
    ) -> RemoteGeneration:
        check_sampling(max_tokens, temperature, top_p, repeat_penalty, stop)
        self._http()
        body: dict[str, Any] = {
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "repeat_penalty": repeat_penalty,  # llama.cpp's name; vLLM: repetition_penalty
            "repetition_penalty": repeat_penalty,
            "seed": seed,
            "stream": True,
        }
        if stop:
            body["stop"] = list(stop)
        if self.model:
            body["model"] = self.model
        if self.api == "chat" and isinstance(prompt, ChatPrompt):
            path, body["messages"] = "/v1/chat/completions", prompt.messages
        else:
            path, body["prompt"] = "/v1/completions", str(prompt)
        return RemoteGeneration(self, tenant, str(prompt), path, body)

    # -- admission (all on the event loop: no lock needed) -----------------------------

    def _enqueue(self, tenant: str) -> _Ticket:
        ticket = _Ticket(tenant, asyncio.get_running_loop().create_future())
        try:
            self._queue.put(ticket)
        except QueueFull:
            rounds = (len(self._queue) + self.max_sequences) / self.max_sequences
            raise EngineOverloaded(max(1, min(60, math.ceil(rounds * self._service_s)))) from None
        self._dispatch()
        return ticket

    def _dispatch(self) -> None:
        while sum(self._active.values()) < self.max_sequences:
            nxt = self._queue.peek(lambda t: self._active.get(t, 0))
            if nxt is None:
                return
            self._queue.pop(nxt)
            if nxt.admitted.done():  # cancelled while waiting
                continue
            self._active[nxt.tenant] = self._active.get(nxt.tenant, 0) + 1
            nxt.admitted.set_result(None)

    def _release(self, ticket: _Ticket) -> None:
        """Give back the ticket's slot, or its place in the queue; once."""
        if ticket.released:
            return
        ticket.released = True
        fut = ticket.admitted
        if not fut.done():
            fut.cancel()
        if not fut.cancelled() and fut.exception() is None:
            left = self._active.get(ticket.tenant, 1) - 1
            if left:
                self._active[ticket.tenant] = left
            else:
                self._active.pop(ticket.tenant, None)
        else:
            self._queue.remove(ticket)
        self._dispatch()

    def _observe(self, stats: GenerationStats) -> None:
        self._service_s = 0.8 * self._service_s + 0.2 * (stats.total_s - stats.queue_s)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise EngineUnavailable("The external inference engine client is not started.")
        return self._client

    def _mark(self, ok: bool, error: str | None = None) -> None:
        self._probe = (time.monotonic(), ok)
        self._last_error = error


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
                    async for event in _sse_events(resp):
                        piece, reason = _piece(event)
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
            except (httpx.TransportError, _Retry) as exc:
                if first_at is not None:
                    raise EngineError(f"the inference engine failed mid-reply: {_describe(exc)}") from exc
                attempt += 1
                if attempt > engine.retries:
                    engine._mark(False, _describe(exc))
                    raise EngineUnavailable(
                        f"The inference engine at {engine.base_url} is not reachable ({_describe(exc)})."
                    ) from None
                await asyncio.sleep(0.25 * 2 ** (attempt - 1))
        now = time.monotonic()
        ttft = first_at - ticket.submitted_at if first_at is not None else None
        self.stats = self._stats(completion, ttft, now - ticket.submitted_at, finish, queue_s)

    async def _refuse(self, resp: httpx.Response) -> None:
        text = (await resp.aread()).decode("utf-8", "replace")[:500]
        if resp.status_code in _RETRY_STATUS:
            raise _Retry(f"HTTP {resp.status_code}: {text}")
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


class _Retry(Exception):
    """A status worth another try (the server or its load balancer is restarting)."""


async def _sse_events(resp: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON payloads of `data:` lines, until `data: [DONE]`."""
    async for line in resp.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, comments (": ping"), event names
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError:
            raise EngineError(f"the inference engine sent a malformed event: {data[:200]}") from None
        if "error" in event:
            raise EngineError(f"the inference engine failed: {event['error']}")
        yield event


def _piece(event: dict[str, Any]) -> tuple[str, str | None]:
    """(text, finish_reason) of one chat.completion.chunk or text_completion event."""
    choices = event.get("choices") or [{}]
    choice = choices[0]
    delta = choice.get("delta")
    text = (delta.get("content") if delta is not None else choice.get("text")) or ""
    return text, choice.get("finish_reason")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
