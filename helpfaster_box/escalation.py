"""When a conversation goes to a human: the visitor asks for one, or the bot keeps failing."""

from __future__ import annotations

import re
from typing import Any

_HUMAN = re.compile(
    r"\b(?:(?:talk|speak|chat|connect me|put me through)\s+(?:to|with)\s+(?:a|an|some|the|your)?\s*"
    r"(?:human|person|people|agent|representative|rep|someone|somebody|operator|staff|support team|"
    r"real person|live agent|customer service)"
    r"|(?:real|live|actual)\s+(?:human|person|agent)"
    r"|human (?:agent|support|being)|customer service representative"
    r"|escalate (?:this|it|me)"
    r"|i want (?:a|an) (?:human|person|agent))\b",
    re.IGNORECASE,
)

HUMAN_REQUEST = "the visitor asked for a human"


def wants_human(message: str) -> bool:
    return bool(_HUMAN.search(message))


def after_failures_reason(n: int) -> str:
    return f"the bot could not answer {n} times in a row"


def auto_reason(settings: dict[str, Any], message: str, answered: bool, streak_after: int) -> str | None:
    """Why this turn escalates automatically, if it does (settings: the chatbot's escalation)."""
    if not settings.get("enabled", True):
        return None
    if settings.get("onHumanRequest", True) and wants_human(message):
        return HUMAN_REQUEST
    limit = int(settings.get("afterUnanswered", 0) or 0)
    if not answered and limit > 0 and streak_after >= limit:
        return after_failures_reason(streak_after)
    return None
