"""API keys: list, create (the plaintext is returned once), revoke. No HTTP here."""

from __future__ import annotations

from typing import Any

from helpfaster_box.errors import NotFound
from helpfaster_box.keys import queries as keys_q
from helpfaster_box.keys.schemas import KeyOut, key_out
from helpfaster_box.schemas import Page, make_page
from helpfaster_box.store.db import Database


async def list_page(db: Database, org_id: str, limit: int, cursor: str | None) -> Page[KeyOut]:
    rows, nxt = await db.aread(keys_q.page_keys, org_id, limit, cursor)
    return make_page([key_out(r) for r in rows], nxt)


async def create(db: Database, org_id: str, role: str, name: str | None) -> KeyOut:
    row, key = await db.awrite(keys_q.create_key, org_id, role, name)
    return key_out(row, key)


async def revoke(db: Database, org_id: str, key_id: str) -> None:
    def apply(cur: Any) -> bool:
        row = keys_q.get_key(cur, key_id)
        if row is None or row["org_id"] != org_id or row["revoked_at"] is not None:
            return False
        return bool(keys_q.revoke_key(cur, key_id))

    if not await db.awrite(apply):
        raise NotFound.of("API key")
