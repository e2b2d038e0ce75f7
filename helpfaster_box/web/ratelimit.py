"""Sliding-window rate limiting: per organization (requests per minute by plan), and per
client address for failed authentications.

A sliding log: each admitted request's time is kept for one window, and a request is
admitted while fewer than ``limit`` are younger than the window. Any 60 s span therefore
holds at most ``limit`` admitted requests. The fixed calendar-minute window used before
admitted up to 2x the limit across a minute boundary (``limit`` at :59.9, ``limit`` more at
:00.0). Memory is one float per admitted request still in the window (scale plan: 300 per
organization, 2.4 KB). Checks run on the event loop with no await between read and append,
so concurrent requests cannot both take the last slot.

Headers: ``X-RateLimit-Limit`` the limit; ``X-RateLimit-Remaining`` the requests admitted
right now; ``X-RateLimit-Reset`` whole seconds until the full limit is available again (the
newest counted request leaves the window). A 429's ``Retry-After`` is the whole seconds
until the next slot frees (the oldest counted request leaves the window).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_TRACKED = 10_000  # keys (orgs or addresses) kept before idle ones are dropped


@dataclass(slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: float  # seconds until the full limit is available again
    retry_s: float = 0.0  # seconds until the next slot frees (when not allowed)

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(max(1, math.ceil(self.reset_s))),
        }

    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The same headers as raw ASGI tuples (added to every response by web/observe.py)."""
        return (
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(max(1, math.ceil(self.reset_s))).encode()),
        )

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.retry_s))


class RateLimiter:
    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._logs: dict[str, deque[float]] = {}

    def _log(self, key: str, now: float) -> deque[float]:
        log = self._logs.get(key)
        if log is None:
            if len(self._logs) >= MAX_TRACKED:
                self._forget_idle(now)
            log = self._logs[key] = deque()
        horizon = now - self.window_s
        while log and log[0] <= horizon:
            log.popleft()
        return log

    def _forget_idle(self, now: float) -> None:
        horizon = now - self.window_s
        self._logs = {k: v for k, v in self._logs.items() if v and v[-1] > horizon}

    def refund(self, key: str) -> None:
        """Give back the newest slot of key (a hit that turned out not to count)."""
        log = self._logs.get(key)
        if log:
            log.pop()

    def hit(self, key: str, limit: int) -> Decision:
        now = self._clock()
        log = self._log(key, now)
        if len(log) >= limit:
            return self._decide(log, limit, now, allowed=False)
        log.append(now)
        return self._decide(log, limit, now, allowed=True)

    def _decide(self, log: deque[float], limit: int, now: float, *, allowed: bool) -> Decision:
        # window - age, not (t + window) - now: that sum rounds, and a slot taken at `now`
        # came out a hair over 60 s, which ceil made an X-RateLimit-Reset of 61.
        reset = (self.window_s - (now - log[-1])) if log else self.window_s
        retry = (self.window_s - (now - log[0])) if log and not allowed else 0.0
        return Decision(allowed, limit, max(0, limit - len(log)), reset, retry)
