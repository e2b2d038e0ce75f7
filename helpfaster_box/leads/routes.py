"""Leads: list (JSON, or CSV with ?format=csv), CSV export, one with its history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from litestar import Controller, get
from litestar.params import FromPath, Parameter
from litestar.response import Response, Stream

from helpfaster_box.chatbots import service as chatbots
from helpfaster_box.leads import service
from helpfaster_box.leads.schemas import LeadOut
from helpfaster_box.schemas import Page
from helpfaster_box.timerange import time_range
from helpfaster_box.web.deps import Auth, Db
from helpfaster_box.web.params import Cursor, From, Limit, To


def _disposition(bot_id: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="leads-{bot_id}.csv"'}


async def _csv(db: Db, bot_id: FromPath[str], start: str | None, end: str | None) -> Stream:
    a, b = time_range(start, end)
    lines = await service.export_csv(db, bot_id, a, b)

    async def body() -> AsyncIterator[str]:
        for line in lines:
            yield line

    return Stream(body(), media_type="text/csv", headers=_disposition(bot_id))


class LeadsController(Controller):
    tags = ["Leads"]  # noqa: RUF012 - declared by Litestar's Controller

    @get("/chatbots/{bot_id:str}/leads", opt={"csv": True})
    async def list_leads(
        self,
        auth: Auth,
        db: Db,
        bot_id: FromPath[str],
        limit: Limit = 20,
        cursor: Cursor = None,
        start: From = None,
        end: To = None,
        format: Annotated[Literal["json", "csv"], Parameter(description="csv streams every lead.")] = "json",
    ) -> Page[LeadOut] | Response[str]:
        await chatbots.load(db, auth.org_id, bot_id)
        if format == "csv":
            a, b = time_range(start, end)
            lines = await service.export_csv(db, bot_id, a, b)
            return Response("".join(lines), media_type="text/csv", headers=_disposition(bot_id))
        a, b = time_range(start, end)
        return await service.list_page(db, bot_id, limit=limit, cursor=cursor, start=a, end=b)

    @get("/chatbots/{bot_id:str}/leads/export", media_type="text/csv", opt={"media": ("text/csv",)})
    async def export_leads(
        self, auth: Auth, db: Db, bot_id: FromPath[str], start: From = None, end: To = None
    ) -> Stream:
        """Every lead of the chatbot as CSV, streamed."""
        await chatbots.load(db, auth.org_id, bot_id)
        return await _csv(db, bot_id, start, end)

    @get("/leads/{lead_id:str}")
    async def get_lead(self, auth: Auth, db: Db, lead_id: FromPath[str]) -> LeadOut:
        return await service.get(db, auth.org_id, lead_id)
