"""API key shapes. The plaintext key appears once, in the answer to create."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from helpfaster_box.schemas import Out, Struct
from helpfaster_box.store.ids import iso


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


def key_out(row: dict[str, Any], key: str | None = None) -> KeyOut:
    return KeyOut(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        prefix=row["prefix"],
        created_at=iso(row["created_at"]),
        revoked_at=iso(row.get("revoked_at")),
        key=key,
    )
