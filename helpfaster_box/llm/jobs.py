"""What the event loop hands the worker (a Job) and what it gets back (events, stats)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length", "timeout", "cancelled"]
Event = tuple[str, Any]  # ("text", str) | ("done", GenerationStats) | ("error", Exception)


class EngineError(RuntimeError):
    """Generation failed inside the engine (not the caller's fault)."""


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float | None  # submit -> first generated token; None when none was generated
    total_s: float  # submit -> finished
    finish_reason: FinishReason
    cached_prefix_tokens: int  # prompt tokens whose KV was reused instead of decoded
    queue_s: float  # submit -> admitted to a slot


@dataclass(eq=False)
class Job:
    """One generation request, shared by the event loop (creates, cancels) and the
    worker (everything else). `cancelled` is the only field the loop writes later."""

    tenant: str
    prompt_tokens: list[int]
    max_tokens: int
    temperature: float
    top_p: float
    repeat_penalty: float
    stop: tuple[str, ...]
    seed: int
    deliver: Callable[[list[Event]], None]  # thread-safe hand-off to the consumer
    submitted_at: float = field(default_factory=time.monotonic)
    cancelled: bool = False
    admitted_at: float = 0.0
    first_token_at: float | None = None
    completion_tokens: int = 0
    cached_prefix_tokens: int = 0

    def send(self, events: list[Event]) -> None:
        try:
            self.deliver(events)
        except RuntimeError:  # the consumer's event loop is closed; nobody is listening
            self.cancelled = True

    @property
    def kv_need(self) -> int:
        return len(self.prompt_tokens) + self.max_tokens


def check_sampling(
    max_tokens: int, temperature: float, top_p: float, repeat_penalty: float, stop: Sequence[str]
) -> None:
    """The arguments every engine (local or remote) accepts; ValueError at the call, at once."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be >= 1")
    if temperature < 0 or not 0 < top_p <= 1 or repeat_penalty <= 0:
        raise ValueError("need temperature >= 0, 0 < top_p <= 1, repeat_penalty > 0")
    if isinstance(stop, str) or not all(isinstance(s, str) for s in stop):
        raise ValueError("stop must be a list of strings")
