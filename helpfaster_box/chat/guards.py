"""The guards on a generated reply: is it grounded in its passages, does it leak?

A tiny model at temperature 0 still invents: a number, a path, a flag or a command
that no passage holds is what a support bot must never say, so any such exact term
fails the reply outright; otherwise most of its content words must come from the
passages (`min_share`). A reply that echoes prompt markup, repeats itself or only
restates the question fails too. `leaks` catches a reply that reproduces a run of
the chatbot's instructions. compose.check applies both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from helpfaster_box.chat.lexicon import WORD, content_words, sentences

# Tokens a support bot must never invent: numbers, paths, flags, commands, versions.
_EXACT = re.compile(r"\d|/|^-|_|\.[a-z]|::")


@dataclass(slots=True)
class Grounding:
    supported: bool
    share: float  # content words of the reply found in the passages
    unsupported: list[str]  # exact terms (numbers, paths, commands) not in the passages
    reason: str


_MARKUP = re.compile(r"</?passage\b|<\|im_(?:start|end)\|>", re.IGNORECASE)
_CODE_SPAN = re.compile(r"`([^`\n]{2,200})`")
_FLAG = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")
_SPACES = re.compile(r"\s+")


def check_grounding(
    reply: str, passages: Sequence[str], min_share: float = 0.8, question: str | None = None
) -> Grounding:
    """Is the reply made of the passages' words, with no invented exact terms?

    Also unsupported: prompt markup echoed back, a `code span` (a command the visitor
    would copy) that is not verbatim in the passages, a command-line flag the passages
    lack, and, given the question, a reply that only restates the question.
    """
    words = content_words(reply)
    if len(words) < 2:
        return Grounding(False, 0.0, [], "empty or trivial reply")
    source_text = " ".join(passages).lower()
    source_flat = _SPACES.sub(" ", source_text)
    source_words = set(content_words(source_text))
    present = [w for w in words if w in source_words or w in source_text]
    share = len(present) / len(words)
    missing = {w for w in words if _EXACT.search(w) and w not in source_text}
    missing |= {f.lower() for f in _FLAG.findall(reply) if f.lower() not in source_text}
    missing |= {
        c.strip()
        for c in _CODE_SPAN.findall(reply)
        if _SPACES.sub(" ", c.strip().lower().removeprefix("sudo ")) not in source_flat
    }
    exact_missing = sorted(missing)
    if _MARKUP.search(reply):
        return Grounding(False, share, exact_missing, "the reply echoes prompt markup")
    if question is not None:
        asked = set(content_words(question))
        novel = [w for w in words if w not in asked]
        if len(novel) < 2:
            return Grounding(False, share, exact_missing, "the reply only restates the question")
    if _repeats(reply):
        return Grounding(False, share, exact_missing, "the reply repeats itself")
    if exact_missing:
        return Grounding(False, share, exact_missing, "exact terms not in the passages")
    if share < min_share:
        return Grounding(False, share, [], f"only {share:.0%} of its words are in the passages")
    return Grounding(True, share, [], "supported")


def _repeats(reply: str) -> bool:
    parts = [s.lower() for s in sentences(reply) if len(s) > 12]
    return len(parts) != len(set(parts))


def leaks(reply: str, secret: str, ngram: int = 8) -> bool:
    """True when the reply reproduces any ngram-word run of the secret (the instructions)."""
    secret_words = WORD.findall(secret.lower())
    if len(secret_words) < ngram:
        return bool(secret_words) and " ".join(secret_words) in " ".join(WORD.findall(reply.lower()))
    runs = {" ".join(secret_words[i : i + ngram]) for i in range(len(secret_words) - ngram + 1)}
    reply_words = WORD.findall(reply.lower())
    return any(" ".join(reply_words[i : i + ngram]) in runs for i in range(len(reply_words) - ngram + 1))
