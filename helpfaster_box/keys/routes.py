"""API keys: list (prefix + name only), create (shown once), revoke. Admin only."""

from __future__ import annotations

from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, JSONBody

from helpfaster_box.keys import service
from helpfaster_box.keys.schemas import KeyCreate, KeyOut
from helpfaster_box.schemas import Page
from helpfaster_box.web.auth import admin_only
from helpfaster_box.web.deps import Auth, Db
from helpfaster_box.web.params import Cursor, Limit


class KeysController(Controller):
    path = "/api-keys"
    tags = ["API keys"]  # noqa: RUF012 - declared by Litestar's Controller
    guards = [admin_only]  # noqa: RUF012

    @get("/")
    async def list_keys(self, auth: Auth, db: Db, limit: Limit = 20, cursor: Cursor = None) -> Page[KeyOut]:
        return await service.list_page(db, auth.org_id, limit, cursor)

    @post("/", status_code=201)
    async def create_key(self, request: Request, auth: Auth, db: Db, data: JSONBody[KeyCreate]) -> KeyOut:
        out = await service.create(db, auth.org_id, data.role, data.name)
        request.app.state.key_cache.clear()
        return out

    @delete("/{key_id:str}", status_code=204)
    async def revoke_key(self, request: Request, auth: Auth, db: Db, key_id: FromPath[str]) -> None:
        await service.revoke(db, auth.org_id, key_id)
        request.app.state.key_cache.clear()
