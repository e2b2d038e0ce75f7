"""Prefixed random IDs (``bot_…``) and time helpers shared by the query modules."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import overload

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str) -> str:
    """``prefix_`` + 20 base62 characters (~119 bits): unguessable, URL-safe."""
    return f"{prefix}_{random_token(20)}"


def utcnow() -> datetime:
    """Naive UTC with microseconds; DuckDB TIMESTAMP columns hold naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


@overload
def iso(ts: datetime) -> str: ...
@overload
def iso(ts: None) -> None: ...
def iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
