"""Shared request plumbing: the auth dependency, pagination params, page bodies."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar import Request
from litestar.params import Parameter

from ..errors import ApiError
from ..store.db import Database
from .auth import AuthContext

T = TypeVar("T")

Limit = Annotated[int, Parameter(ge=1, le=100, description="Page size (1-100).")]
Cursor = Annotated[str | None, Parameter(description="Opaque cursor from nextCursor.")]


class Page(msgspec.Struct, Generic[T], rename="camel"):
    data: list[T]
    has_more: bool
    next_cursor: str | None


def make_page(items: list[Any], next_cursor: str | None) -> Page[Any]:
    return Page(data=items, has_more=next_cursor is not None, next_cursor=next_cursor)


async def provide_auth(request: Request) -> AuthContext:
    auth = request.state.get("auth")
    if auth is None:  # the auth middleware sets it on every /v1 route; guard anyway
        raise ApiError(401)
    return auth


async def provide_db(request: Request) -> Database:
    return request.app.state.db


class Struct(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """Base for request bodies: camelCase, unknown fields rejected."""


class Out(msgspec.Struct, rename="camel", kw_only=True):
    """Base for response bodies."""
