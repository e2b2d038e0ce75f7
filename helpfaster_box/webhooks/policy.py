"""The retry policy of webhook deliveries: when to try again, when to give up, when to
disable an endpoint. Pure functions of the attempt history; the dispatcher applies them.

Delays (after failed attempt n, seconds, times `webhook_backoff_scale`) add up to about
17.6 h over 7 attempts, then the delivery is failed. Each delay is scaled by a random
factor in [0.8, 1.2] so retries do not arrive in herds; a receiver's Retry-After
(capped at a day) lengthens a delay, never shortens it.

An endpoint is disabled after sustained failure: at least DISABLE_AFTER_FAILURES
consecutive failed attempts AND no success for DISABLE_AFTER_QUIET (times the scale).
Both: a burst of events to a receiver that is down for ten minutes must not disable it,
nor must a few retried events to a quiet endpoint during one bad afternoon. A `410 Gone`
disables at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

SCHEDULE_S = (5, 300, 1_800, 7_200, 18_000, 36_000)
JITTER = 0.2
MAX_RETRY_AFTER_S = 86_400
DISABLE_AFTER_FAILURES = 20
DISABLE_AFTER_QUIET = timedelta(hours=24)
GONE = 410


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    scale: float = 1.0  # settings.webhook_backoff_scale (tests shrink time with it)

    def retries_left(self, attempt: int, status_code: int | None) -> bool:
        return status_code != GONE and attempt <= len(SCHEDULE_S)

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        delay = SCHEDULE_S[attempt - 1] * self.scale * random.uniform(1 - JITTER, 1 + JITTER)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
        return delay

    def disable_reason(
        self, status_code: int | None, streak: int, since: datetime, now: datetime
    ) -> str | None:
        """Why the endpoint should be disabled after this failed attempt, if it should."""
        if status_code == GONE:
            return "receiver answered 410 Gone"
        if streak >= DISABLE_AFTER_FAILURES and now - since >= DISABLE_AFTER_QUIET * self.scale:
            return f"{streak} consecutive failed attempts and no successful delivery for {self.quiet_text()}"
        return None

    def quiet_text(self) -> str:
        seconds = DISABLE_AFTER_QUIET.total_seconds() * self.scale
        return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"
