"""Per-organization fixed-window rate limiting (requests per minute by plan).

A fixed window aligned to the minute admits exactly ``limit`` requests per
window, which is what a client can reason about and what X-RateLimit-Reset
describes. Checks run on the event loop with no await between read and
increment, so concurrent requests cannot both take the last slot.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: float  # seconds until the window ends

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(max(1, math.ceil(self.reset_s))),
        }


class RateLimiter:
    def __init__(self, window_s: float = 60.0, clock=time.time) -> None:
        self.window_s = window_s
        self._clock = clock
        self._windows: dict[str, tuple[int, int]] = {}  # org -> (window index, count)

    def hit(self, org_id: str, limit: int) -> Decision:
        now = self._clock()
        index = int(now // self.window_s)
        reset_s = (index + 1) * self.window_s - now
        win, count = self._windows.get(org_id, (index, 0))
        if win != index:
            count = 0
        if count >= limit:
            self._windows[org_id] = (index, count)
            return Decision(False, limit, 0, reset_s)
        count += 1
        self._windows[org_id] = (index, count)
        if len(self._windows) > 10_000:
            self._windows = {k: v for k, v in self._windows.items() if v[0] == index}
        return Decision(True, limit, limit - count, reset_s)
