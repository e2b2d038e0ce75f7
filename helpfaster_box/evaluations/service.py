"""Evaluations: check a golden set, queue a run, read runs, and score a finished one.

No HTTP here. A run snapshots its cases when it is queued (a later `save` does not change
a run under way), and is scored in one place (`judge`, `totals_of`, `regressions_of`), so
a request's run and an upload's run mean the same thing. The answering happens on the
worker (`runner.py`).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import msgspec

from helpfaster_box.chatbots import queries as bots_q
from helpfaster_box.conversations.schemas import SourceRef
from helpfaster_box.errors import Invalid, NotFound
from helpfaster_box.evaluations import queries as q
from helpfaster_box.evaluations.facts import Fact, FactError, compile_fact, facts_found
from helpfaster_box.evaluations.schemas import (
    CaseResult,
    EvaluationCreate,
    EvaluationOut,
    EvaluationSummary,
    FailedAs,
    PassedAs,
    Regression,
    Totals,
)
from helpfaster_box.schemas import Page, make_page
from helpfaster_box.store.db import Database
from helpfaster_box.store.ids import iso

NO_SAVED_SET = "This chatbot has no saved golden questions: send `cases` (with `save: true` to keep them)."


class Queue(Protocol):
    def queue(self, run_id: str) -> None: ...


# -- the request -------------------------------------------------------------------
def cases_of(data: EvaluationCreate | None) -> list[dict[str, Any]] | None:
    """The checked cases of a request, or None to run the saved set."""
    if data is None or data.cases is None:
        if data is not None and data.save:
            raise Invalid("save needs cases to save.", field="save")
        return None
    if data.use_saved:
        raise Invalid("Send cases or useSaved, not both.", field="useSaved")
    cases = []
    for i, case in enumerate(data.cases):
        question = case.question.strip()
        if not question:
            raise Invalid("question must not be blank.", field=f"cases[{i}].question")
        if case.must_decline and case.expected:
            raise Invalid("A mustDecline case has no expected facts.", field=f"cases[{i}].expected")
        if not case.must_decline and not case.expected:
            raise Invalid("Give expected facts, or mustDecline: true.", field=f"cases[{i}].expected")
        for j, text in enumerate(case.expected):
            try:
                compile_fact(text)
            except FactError as exc:
                raise Invalid(f"Expected fact {text!r}: {exc}.", field=f"cases[{i}].expected[{j}]") from None
        cases.append({"question": question, "expected": case.expected, "mustDecline": case.must_decline})
    return cases


async def start(
    db: Database, runner: Queue, org_id: str, bot_id: str, data: EvaluationCreate | None
) -> EvaluationSummary:
    """Queue a run of the given cases (saved first with `save`) or of the saved set."""
    given = cases_of(data)
    save = data is not None and data.save

    def write(cur: Any) -> dict[str, Any]:
        if not bots_q.exists(cur, org_id, bot_id):
            raise NotFound.of("Chatbot")
        cases = given
        if cases is None:
            cases = q.golden_set(cur, bot_id)
            if not cases:
                raise Invalid(NO_SAVED_SET, field="cases")
        elif save:
            q.save_golden(cur, org_id, bot_id, cases)
        return q.create_run(cur, org_id, bot_id, cases)

    row = await db.awrite(write)
    runner.queue(row["id"])
    return summary_out(row)


def queue_for_source(cur: Any, source: dict[str, Any]) -> str | None:
    """After an upload with `evaluate: true` is ingested: the run to start, or None when an
    unstarted run of the chatbot takes this source along (or there is no saved set: then a
    failed run says so, where the uploader looks for the result)."""
    bot_id, source_id = source["chatbot_id"], source["id"]
    if not bots_q.exists(cur, source["org_id"], bot_id):
        return None
    waiting = q.queued_source_run(cur, bot_id)
    if waiting is not None:
        ids = json.loads(waiting["source_ids"])
        if source_id not in ids:
            q.add_source(cur, waiting["id"], [*ids, source_id])
        return None
    cases = q.golden_set(cur, bot_id)
    if not cases:
        q.create_run(
            cur, source["org_id"], bot_id, [], triggered_by="source", source_ids=[source_id],
            status="failed", error=NO_SAVED_SET,
        )  # fmt: skip
        return None
    run = q.create_run(cur, source["org_id"], bot_id, cases, triggered_by="source", source_ids=[source_id])
    return str(run["id"])


# -- reading -------------------------------------------------------------------------
async def get(db: Database, org_id: str, run_id: str) -> EvaluationOut:
    row = await db.aread(q.get_run, org_id, run_id)
    if row is None:
        raise NotFound.of("Evaluation")
    return EvaluationOut(**_common(row), results=_decode(row["results"], list[CaseResult]))


async def list_page(db: Database, bot_id: str, *, limit: int, cursor: str | None) -> Page[EvaluationSummary]:
    rows, nxt = await db.aread(lambda cur: q.list_runs(cur, bot_id, limit=limit, cursor=cursor))
    return make_page([summary_out(r) for r in rows], nxt)


def summary_out(row: dict[str, Any]) -> EvaluationSummary:
    return EvaluationSummary(**_common(row))


def _common(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "chatbot_id": row["chatbot_id"],
        "status": row["status"],
        "triggered_by": row["triggered_by"],
        "source_ids": json.loads(row["source_ids"]),
        "case_count": int(row["case_count"] or 0),
        "completed": row["completed"],
        "totals": _decode(row["totals"], Totals),
        "previous_run_id": row["previous_run_id"],
        "regressions": _decode(row["regressions"], list[Regression]),
        "error": row["error"],
        "created_at": iso(row["created_at"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
    }


def _decode(raw: str | None, kind: Any) -> Any:
    return None if raw is None else msgspec.json.decode(raw, type=kind)


def decode_results(raw: str | None) -> list[CaseResult]:
    return list(_decode(raw, list[CaseResult]) or [])


# -- scoring -------------------------------------------------------------------------
def judge(
    case: dict[str, Any],
    facts: list[Fact],
    reply: str,
    answered: bool,
    sources: list[SourceRef],
    confidence: float | None = None,
    decline_reason: str | None = None,
) -> CaseResult:
    """One case's verdict: an answerable case passes when the bot answered and the reply
    holds every expected fact; a mustDecline case passes when the bot declined."""
    must_decline = bool(case["mustDecline"])
    found = facts_found(facts, reply) if answered else []
    matched = None if must_decline else answered and len(found) == len(facts)
    return CaseResult(
        question=case["question"],
        expected=list(case["expected"]),
        must_decline=must_decline,
        reply=reply,
        sources=sources,
        answered=answered,
        declined=not answered,
        matched=matched,
        found=found,
        passed=(not answered) if must_decline else bool(matched),
        confidence=confidence,
        decline_reason=decline_reason,
    )


def totals_of(results: list[CaseResult]) -> Totals:
    answerable = [r for r in results if not r.must_decline]
    refusals = [r for r in results if r.must_decline]
    matched = sum(1 for r in answerable if r.matched)
    declined_correctly = sum(1 for r in refusals if r.declined)
    return Totals(
        cases=len(results),
        answerable=len(answerable),
        must_decline=len(refusals),
        matched=matched,
        declined_correctly=declined_correctly,
        wrongly_declined=sum(1 for r in answerable if r.declined),
        wrongly_answered=sum(1 for r in refusals if not r.declined),
        score=round((matched + declined_correctly) / len(results), 4) if results else 0.0,
    )


def _key(r: CaseResult) -> tuple[str, bool]:
    return " ".join(r.question.casefold().split()), r.must_decline


def regressions_of(previous: list[CaseResult], results: list[CaseResult]) -> list[Regression]:
    """Questions (same text, same kind) that passed in the previous run and fail now."""
    passed_before = {_key(r) for r in previous if r.passed}
    out = []
    for r in results:
        if r.passed or _key(r) not in passed_before:
            continue
        before: PassedAs = "declined" if r.must_decline else "matched"
        now: FailedAs = "answered" if r.must_decline else ("declined" if r.declined else "not_matched")
        out.append(Regression(question=r.question, before=before, now=now, reply=r.reply))
    return out
