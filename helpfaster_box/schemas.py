"""Shared msgspec bases: request bodies, response bodies and the page envelope.

Every feature's `schemas.py` builds on these, so routes, services and webhook
payloads use one shape per object (the OpenAPI document is generated from them).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class Struct(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """Base for request bodies: camelCase, unknown fields rejected."""


class Out(msgspec.Struct, rename="camel", kw_only=True):
    """Base for response bodies (and webhook payloads): camelCase."""


class Page(msgspec.Struct, Generic[T], rename="camel"):
    data: list[T]
    has_more: bool
    next_cursor: str | None


def make_page(items: list[Any], next_cursor: str | None) -> Page[Any]:
    return Page(data=items, has_more=next_cursor is not None, next_cursor=next_cursor)


class ErrorDetail(msgspec.Struct):
    message: str
    field: str | None = None


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """The one error body of every failure (see web/errors.py)."""

    error: str
    message: str
    details: list[ErrorDetail] | None = None
