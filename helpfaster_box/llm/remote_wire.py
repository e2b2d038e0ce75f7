"""What an OpenAI-compatible server sends back, and how its failures read.

The server streams Server-Sent Events (`data: {json}` lines, `data: [DONE]` last);
`sse_events` yields the payloads and turns a malformed one or an `{"error": ...}`
event into EngineError. `event_piece` reads the text and finish reason of either
kind of chunk (`/v1/chat/completions` deltas, `/v1/completions` text), so the
request code does not care which API is configured. `RETRY_STATUS` are the
statuses of a server or load balancer that is restarting (worth another try);
EngineUnavailable is the domain error once retries are spent, shared by the chat
client (remote.py, remote_generation.py) and the embeddings client
(remote_embedder.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from helpfaster_box.errors import Unavailable
from helpfaster_box.llm.jobs import EngineError

RETRY_STATUS = {502, 503, 504}


class EngineUnavailable(Unavailable):
    """The external inference engine cannot be reached (503 `unavailable`)."""


class RetryableStatus(Exception):
    """A status worth another try (the server or its load balancer is restarting)."""


async def sse_events(resp: httpx.Response) -> AsyncIterator[dict[str, Any]]:
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


def event_piece(event: dict[str, Any]) -> tuple[str, str | None]:
    """(text, finish_reason) of one chat.completion.chunk or text_completion event."""
    choices = event.get("choices") or [{}]
    choice = choices[0]
    delta = choice.get("delta")
    text = (delta.get("content") if delta is not None else choice.get("text")) or ""
    return text, choice.get("finish_reason")


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
