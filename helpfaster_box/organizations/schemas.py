"""The organization as its own keys see it."""

from __future__ import annotations

from helpfaster_box.schemas import Out


class Limits(Out):
    requests_per_minute: int


class OrganizationOut(Out):
    id: str
    name: str
    plan: str
    created_at: str
    limits: Limits
    usage: dict[str, int]
