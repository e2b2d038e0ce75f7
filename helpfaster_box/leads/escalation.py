"""When a conversation goes to a human: the visitor asks for one, or the bot keeps failing."""

from __future__ import annotations

import re

from helpfaster_box.chatbots.schemas import Escalation

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


def asks_for_human(settings: Escalation, message: str) -> bool:
    return settings.enabled and settings.on_human_request and wants_human(message)


def after_failures_reason(n: int) -> str:
    return f"the bot could not answer {n} times in a row"


def auto_reason(settings: Escalation, message: str, answered: bool, streak_after: int) -> str | None:
    """Why this turn escalates automatically, if it does (settings: the chatbot's escalation)."""
    if not settings.enabled:
        return None
    if asks_for_human(settings, message):
        return HUMAN_REQUEST
    limit = settings.after_unanswered
    if not answered and limit > 0 and streak_after >= limit:
        return after_failures_reason(streak_after)
    return None
