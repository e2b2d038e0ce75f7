"""Composing a reply from retrieved passages, and how sure the bot may be of it.

Split out of `service.py` (the turn: retrieve -> gate -> compose -> store). Here:
- `extractive`: the best answer unit (knowledge/units.py) of the passages, quoted
  verbatim, ranked with the unit vectors stored at ingestion (no embedding at question
  time unless a chunk predates them);
- `check`: the guards on a generated reply (leaks, grounding) and which passage
  sentences it rests on;
- `evidence` / `decide`: the decline decision and `confidence`, from the chosen unit's
  own evidence rather than one cosine threshold (see `decide` for the measured numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from helpfaster_box.chat import answers
from helpfaster_box.knowledge.ingestion import Hit

DeclineReason = Literal["no_knowledge", "not_relevant", "low_confidence"]
PASSAGES_FOR_LLM = 3


@dataclass(slots=True)
class Composed:
    reply: str
    answered: bool
    mode: str  # extractive | generative | grounded-llm | grounded-extractive | fallback | escalation
    used: list[int] = field(default_factory=list)  # indexes into the hits that the reply used
    focus: dict[int, list[str]] = field(default_factory=dict)  # hit index -> sentences to centre on
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_ms: int | None = None
    confidence: float = 0.0
    decline_reason: DeclineReason | None = None
    evidence: Evidence | None = None  # of an extractive answer: what its confidence is from


@dataclass(slots=True)
class Evidence:
    """What the chosen answer unit has going for it."""

    cosine: float  # of the unit to the question
    dense: float  # best passage cosine (retrieval)
    coverage: float  # share of the question's content words the unit's passage holds
    margin: float  # unit score over the best unit of another passage


def _stem(word: str) -> str:
    if not word.isalpha():
        return word
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word[:6]


def coverage(question: str, text: str) -> float:
    """Share of the question's content words (plural folded, 6-letter prefixes:
    'installing' matches 'installation') found in the text; 1.0 for a question with
    no content word."""
    asked = {_stem(w) for w in answers.content_words(question)}
    if not asked:
        return 1.0
    have = {_stem(w) for w in answers.content_words(text)}
    return len(asked & have) / len(asked)


# The decision, calibrated on the dev corpus only (tests/quality, debian-handbook:
# 51 answerable + 8 unanswerable questions; see results.md for the sweep). A logistic
# score of the chosen unit's evidence: its own cosine to the question carries the
# meaning, the coverage of the question's words by its passage catches a question on a
# topic the passage only brushes (one shared word), the margin rewards a clear winner.
W_COSINE, W_DENSE, W_COVERAGE, W_MARGIN, BIAS = 6.0, 4.0, 3.0, 2.0, -6.1
DECLINE_BELOW = 0.35  # confidence under which a candidate answer is declined (low_confidence)


def confidence_of(e: Evidence) -> float:
    z = W_COSINE * e.cosine + W_DENSE * e.dense + W_COVERAGE * e.coverage + W_MARGIN * e.margin + BIAS
    return round(1.0 / (1.0 + math.exp(-z)), 3)


def _matching(stored: tuple[list[str], np.ndarray] | None, text: str) -> np.ndarray | None:
    """The stored unit vectors, if they are of this text's units (a chunker or unit rule
    change since ingestion makes them stale: then they are computed again)."""
    if stored is None or stored[0] != answers.units(text):
        return None
    return stored[1]


def extractive(
    knowledge: Any,
    message: str,
    hits: list[Hit],
    qvec: np.ndarray | None,
    decline_below: float = DECLINE_BELOW,
    context: str = "",
) -> Composed:
    """`context`: the turn before a follow-up ("and how much is that?"), whose words
    count for the coverage of the question."""
    top = hits[:PASSAGES_FOR_LLM]
    texts = [h.text for h in top]
    stored = knowledge.units_of([h.chunk_id for h in top])
    vectors = [_matching(stored.get(h.chunk_id), h.text) for h in top]
    ranked = answers.rank_sentences(message, texts, knowledge.embedder.embed, qvec, vectors)
    reply, passage = answers.extractive_answer(ranked)
    if passage < 0:
        return Composed("", False, "fallback", decline_reason="low_confidence")
    focus = [s.text for s in ranked if s.passage == passage and s.text in reply]
    best = next(s for s in ranked if s.passage == passage and s.text in reply)
    other = next((s.score for s in ranked if s.passage != passage), best.score - 0.3)
    h = top[passage]
    e = Evidence(
        cosine=best.cosine,
        dense=max((x.dense or 0.0) for x in top),
        coverage=max(
            coverage(q, f"{h.title or ''} {h.section or ''} {h.text}")
            for q in {message, f"{context} {message}"}
        ),
        margin=max(0.0, min(0.3, best.score - other)),
    )
    conf = confidence_of(e)
    if conf < decline_below and not h.exact:
        return Composed("", False, "fallback", confidence=conf, decline_reason="low_confidence", evidence=e)
    return Composed(reply, True, "extractive", [passage], {passage: focus}, confidence=conf, evidence=e)


def check(
    knowledge: Any,
    rules: str,
    instructions: str,
    grounding_min_share: float,
    message: str,
    hits: list[Hit],
    qvec: np.ndarray | None,
    c: Composed,
) -> Composed:
    """Guards on a generated reply: no instruction leaks; in grounded mode, support."""
    texts = [h.text for h in hits[:PASSAGES_FOR_LLM]]
    leaked = answers.leaks(c.reply, instructions) or answers.leaks(c.reply, rules)
    stats = (c.prompt_tokens, c.completion_tokens, c.ttft_ms)
    if not hits:  # answering from the instructions alone: they are the only support
        grounding = answers.check_grounding(c.reply, [instructions], grounding_min_share)
        if leaked or not c.reply or (c.mode == "grounded" and not grounding.supported):
            out = Composed("", False, "fallback", decline_reason="no_knowledge")
            out.prompt_tokens, out.completion_tokens, out.ttft_ms = stats
            return out
        c.confidence = round(grounding.share * 0.5, 3)  # nothing retrieved backs it
        return c
    grounding = answers.check_grounding(c.reply, texts, grounding_min_share, question=message)
    if leaked or (c.mode == "grounded" and not grounding.supported) or not c.reply:
        fallback = extractive(knowledge, message, hits, qvec)
        if fallback.answered:
            fallback.mode = f"{c.mode}-extractive"
        fallback.prompt_tokens, fallback.completion_tokens, fallback.ttft_ms = stats
        return fallback
    # The passage sentences the reply rests on: shared words are enough, and cost no embedding.
    ranked = answers.rank_sentences(c.reply, texts, None)
    used = sorted({s.passage for s in ranked[:3] if s.score > 0})
    c.used = used or [0]
    c.focus = {p: [s.text for s in ranked if s.passage == p and s.score > 0][:2] for p in c.used}
    best = max((h.dense or 0.0) for h in hits[:PASSAGES_FOR_LLM])
    c.confidence = round(max(0.0, min(1.0, grounding.share * (0.5 + best))), 3)
    if c.mode == "grounded":
        c.mode = "grounded-llm"
    return c
