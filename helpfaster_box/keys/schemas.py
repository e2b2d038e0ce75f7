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


# --- publishable (widget) keys --------------------------------------------------

Origin = Annotated[str, Meta(min_length=1, max_length=300, description="scheme://host[:port]")]


class PublishableKeyCreate(Struct):
    allowed_origins: Annotated[list[Origin], Meta(min_length=1, max_length=50)]
    name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class PublishableKeyOut(Out):
    id: str
    chatbot_id: str
    name: str | None
    allowed_origins: list[str]
    prefix: str
    created_at: str
    revoked_at: str | None = None
    key: str | None = None


def publishable_key_out(row: dict[str, Any], key: str | None = None) -> PublishableKeyOut:
    return PublishableKeyOut(
        id=row["id"],
        chatbot_id=row["chatbot_id"],
        name=row["name"],
        allowed_origins=list(row["allowed_origins"]),
        prefix=row["prefix"],
        created_at=iso(row["created_at"]),
        revoked_at=iso(row.get("revoked_at")),
        key=key,
    )


# --- dashboard sessions ---------------------------------------------------------


class SessionCreate(Struct):
    api_key: Annotated[str, Meta(min_length=1, max_length=200)]


class SessionOrganization(Out):
    id: str
    name: str
    plan: str


class SessionOut(Out):
    csrf_token: str
    organization: SessionOrganization
    role: str
    expires_at: str
