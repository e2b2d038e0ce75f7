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
- Each request (the stream, retries before the first token, cancellation,
  timeouts) is a RemoteGeneration: remote_generation.py. The server's event
  format and its failures: remote_wire.py.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import httpx

from helpfaster_box.llm.engine import CHATML, EngineOverloaded
from helpfaster_box.llm.fairqueue import FairQueue, QueueFull
from helpfaster_box.llm.jobs import GenerationStats, check_sampling
from helpfaster_box.llm.remote_generation import RemoteGeneration
from helpfaster_box.llm.remote_wire import EngineUnavailable, describe
from helpfaster_box.llm.tokenizer import LocalTokenizer

log = logging.getLogger("helpfaster_box.llm")

_PROBE_TTL_S = 1.0  # probes within a second share one answer
_WATCH_S = 2.0  # how often the server is asked whether it is up (health reads the answer)


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
            ok, self._last_error = False, describe(exc)
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
