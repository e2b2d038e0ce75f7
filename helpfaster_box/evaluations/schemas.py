"""Golden-question request and evaluation-run response shapes.

Results, totals and regressions are stored as these structs' JSON (camelCase), so what a
run wrote is what `GET /v1/evaluations/{id}` returns, decoded with the same types.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from helpfaster_box.conversations.schemas import SourceRef
from helpfaster_box.schemas import Out, Struct

MAX_CASES = 200
MAX_FACTS = 20
Question = Annotated[str, Meta(min_length=1, max_length=2000)]
Fact = Annotated[str, Meta(min_length=1, max_length=200)]
RunStatus = Literal["queued", "running", "done", "failed"]
PassedAs = Literal["matched", "declined"]
FailedAs = Literal["not_matched", "declined", "answered"]


class GoldenCase(Struct):
    """A question and the facts a good reply holds, or `mustDecline` for a question the
    documents cannot answer. A fact is a plain phrase (case-insensitive, any whitespace
    between its words) or, written `/like this/`, an RE2 regular expression."""

    question: Question
    expected: Annotated[list[Fact], Meta(max_length=MAX_FACTS)] = msgspec.field(default_factory=list)
    must_decline: bool = False


class EvaluationCreate(Struct):
    """`cases` to run (with `save: true`, they also become the chatbot's saved golden set),
    or nothing / `useSaved: true` to run the saved set."""

    cases: Annotated[list[GoldenCase], Meta(min_length=1, max_length=MAX_CASES)] | None = None
    save: bool = False
    use_saved: bool = False


class CaseResult(Out):
    question: str
    expected: list[str]
    must_decline: bool
    reply: str
    sources: list[SourceRef]
    answered: bool
    declined: bool  # not answered (the fallback message)
    matched: bool | None  # every expected fact is in the reply; null for mustDecline
    found: list[str]  # the expected facts the reply holds
    passed: bool  # matched, or declined when it must be
    confidence: float | None = None
    decline_reason: str | None = None


class Totals(Out):
    cases: int
    answerable: int  # cases with expected facts
    must_decline: int
    matched: int
    declined_correctly: int
    wrongly_declined: int  # answerable, but declined
    wrongly_answered: int  # mustDecline, but answered
    score: float  # (matched + declinedCorrectly) / cases


class Regression(Out):
    """A question that passed in the previous run and does not now."""

    question: str
    before: PassedAs
    now: FailedAs
    reply: str


class EvaluationSummary(Out):
    id: str
    chatbot_id: str
    status: RunStatus
    triggered_by: Literal["request", "source"]
    source_ids: list[str]  # the uploads (with evaluate: true) whose ingestion queued this run
    case_count: int
    completed: int  # cases answered so far
    totals: Totals | None
    previous_run_id: str | None  # the chatbot's run finished before this one, compared against
    regressions: list[Regression] | None
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


class EvaluationOut(EvaluationSummary):
    results: list[CaseResult] | None  # per case, in the order given, once done
