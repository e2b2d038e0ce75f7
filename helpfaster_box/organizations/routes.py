"""GET /v1/organization: the key's own organization, its plan, limits and usage."""

from __future__ import annotations

from litestar import get

from helpfaster_box.organizations import service
from helpfaster_box.organizations.schemas import OrganizationOut
from helpfaster_box.web.deps import Auth, Config, Db


@get("/organization", tags=["Organization"])
async def get_organization(auth: Auth, db: Db, settings: Config) -> OrganizationOut:
    return await service.describe(db, settings, auth.org_id)
