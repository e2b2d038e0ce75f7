"""Golden-question evaluations: run (202, in the background), list a chatbot's runs, read one."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from helpfaster_box.chatbots import service as chatbots
from helpfaster_box.errors import Unavailable
from helpfaster_box.evaluations import service
from helpfaster_box.evaluations.runner import EvaluationRunner
from helpfaster_box.evaluations.schemas import EvaluationCreate, EvaluationOut, EvaluationSummary
from helpfaster_box.schemas import Page
from helpfaster_box.web.deps import Auth, Db, Evaluations
from helpfaster_box.web.params import Cursor, Limit


def running(runner: EvaluationRunner | None) -> EvaluationRunner:
    if runner is None or not runner.available:
        raise Unavailable("Evaluations are unavailable: the chat model is not loaded.")
    return runner


class EvaluationsController(Controller):
    tags = ["Evaluations"]  # noqa: RUF012 - declared by Litestar's Controller

    @post("/chatbots/{bot_id:str}/evaluations", status_code=202, opt={"errors": (503,)})
    async def run_evaluation(
        self,
        auth: Auth,
        db: Db,
        evaluations: Evaluations,
        bot_id: FromPath[str],
        data: JSONBody[EvaluationCreate | None] = None,
    ) -> EvaluationSummary:
        """Run golden questions through the chat pipeline in the background (nothing is
        stored as a conversation, no webhook fires). `cases`: up to 200 of
        `{"question", "expected": [facts]}` (the reply must hold every fact: a plain phrase,
        case-insensitive, or `/an RE2 regex/`) or `{"question", "mustDecline": true}`; with
        `save: true` they replace the chatbot's saved golden set. `{}` or `useSaved: true`
        runs the saved set (400 when there is none). Poll `GET /v1/evaluations/{id}`."""
        await chatbots.load(db, auth.org_id, bot_id)
        return await service.start(db, running(evaluations), auth.org_id, bot_id, data)

    @get("/chatbots/{bot_id:str}/evaluations")
    async def list_evaluations(
        self, auth: Auth, db: Db, bot_id: FromPath[str], limit: Limit = 20, cursor: Cursor = None
    ) -> Page[EvaluationSummary]:
        """The chatbot's runs, newest first, without per-case results."""
        await chatbots.load(db, auth.org_id, bot_id)
        return await service.list_page(db, bot_id, limit=limit, cursor=cursor)

    @get("/evaluations/{run_id:str}")
    async def get_evaluation(self, auth: Auth, db: Db, run_id: FromPath[str]) -> EvaluationOut:
        """One run: status and progress, then per-case results (reply, sources, answered,
        matched facts), totals, and the regressions against the chatbot's previous run."""
        return await service.get(db, auth.org_id, run_id)
