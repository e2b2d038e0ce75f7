"""API keys: list (prefix + name only), create (shown once), revoke. Admin only."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, Request, delete, get, post
from msgspec import Meta

from ..errors import not_found
from ..store import keys as keys_q
from ..store.db import Database
from ..store.ids import iso
from .auth import AuthContext
from .common import Cursor, Limit, Out, Page, Struct, make_page


class KeyCreate(Struct):
    role: Literal["admin", "member"] = "member"
    name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class KeyOut(Out):
    id: str
    name: str | None
    role: str
    prefix: str
    created_at: str
    revoked_at: str | None = None
    key: str | None = None


def key_out(row: dict, key: str | None = None) -> KeyOut:
    return KeyOut(
        id=row["id"], name=row["name"], role=row["role"], prefix=row["prefix"],
        created_at=iso(row["created_at"]), revoked_at=iso(row.get("revoked_at")), key=key,
    )


class KeysController(Controller):
    path = "/api-keys"
    tags = ["API keys"]  # noqa: RUF012 - declared by Litestar's Controller

    @get("/")
    async def list_keys(
        self, auth: AuthContext, db: Database, limit: Limit = 20, cursor: Cursor = None
    ) -> Page[KeyOut]:
        auth.require_admin()
        rows, nxt = await db.aread(keys_q.page_keys, auth.org_id, limit, cursor)
        return make_page([key_out(r) for r in rows], nxt)

    @post("/", status_code=201)
    async def create_key(self, auth: AuthContext, db: Database, data: KeyCreate, request: Request) -> KeyOut:
        auth.require_admin()
        row, key = await db.awrite(keys_q.create_key, auth.org_id, data.role, data.name)
        request.app.state.key_cache.clear()
        return key_out(row, key)

    @delete("/{key_id:str}", status_code=204)
    async def revoke_key(self, auth: AuthContext, db: Database, key_id: str, request: Request) -> None:
        auth.require_admin()

        def revoke(cur):
            row = keys_q.get_key(cur, key_id)
            if row is None or row["org_id"] != auth.org_id or row["revoked_at"] is not None:
                return False
            return keys_q.revoke_key(cur, key_id)

        if not await db.awrite(revoke):
            raise not_found("API key")
        request.app.state.key_cache.clear()

