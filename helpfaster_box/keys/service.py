"""API keys, publishable widget keys and dashboard sessions: list, create (the
plaintext is returned once), revoke; sign in and out. No HTTP here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from helpfaster_box.errors import Invalid, NotFound
from helpfaster_box.keys import queries as keys_q
from helpfaster_box.keys import sessions
from helpfaster_box.keys.schemas import (
    KeyOut,
    PublishableKeyCreate,
    PublishableKeyOut,
    SessionOrganization,
    SessionOut,
    key_out,
    publishable_key_out,
)
from helpfaster_box.schemas import Page, make_page
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import Database
from helpfaster_box.store.ids import iso, utcnow


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


# --- publishable keys -------------------------------------------------------------

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(raw: str, field: str) -> str:
    """`scheme://host[:port]` as a browser sends it in `Origin`: lowercase, no default port."""
    problem = f"{raw!r} is not an origin: write scheme://host[:port], e.g. https://intranet.example.com."
    try:
        parts = urlsplit(raw.strip())
        port = parts.port
    except ValueError:
        raise Invalid(problem, field=field) from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if (
        scheme not in DEFAULT_PORTS
        or not host
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "*" in host
    ):
        raise Invalid(problem, field=field)
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else "")


async def list_publishable(
    db: Database, bot_id: str, limit: int, cursor: str | None
) -> Page[PublishableKeyOut]:
    rows, nxt = await db.aread(keys_q.page_publishable, bot_id, limit, cursor)
    return make_page([publishable_key_out(r) for r in rows], nxt)


async def create_publishable(
    db: Database, org_id: str, bot_id: str, data: PublishableKeyCreate
) -> PublishableKeyOut:
    origins = [normalize_origin(o, f"allowedOrigins[{i}]") for i, o in enumerate(data.allowed_origins)]
    origins = list(dict.fromkeys(origins))
    row, key = await db.awrite(keys_q.create_publishable, org_id, bot_id, data.name, origins)
    return publishable_key_out(row, key)


async def revoke_publishable(db: Database, bot_id: str, key_id: str) -> None:
    def apply(cur: Any) -> bool:
        row = keys_q.get_publishable(cur, bot_id, key_id)
        if row is None or row["revoked_at"] is not None:
            return False
        keys_q.revoke_publishable(cur, key_id)
        return True

    if not await db.awrite(apply):
        raise NotFound.of("Publishable key")


# --- dashboard sessions -------------------------------------------------------------


def session_out(row: dict[str, Any], token: str) -> SessionOut:
    return SessionOut(
        csrf_token=sessions.csrf_token(token),
        organization=SessionOrganization(id=row["org_id"], name=row["org_name"], plan=row["plan"]),
        role=row["role"],
        expires_at=iso(row["expires_at"]),
    )


async def sign_in(db: Database, settings: Settings, key_id: str) -> tuple[SessionOut, str]:
    """A session for an API key the caller has already authenticated; (body, cookie token)."""

    def apply(cur: Any) -> tuple[dict[str, Any] | None, str]:
        _, token = sessions.create(
            cur, key_id, _org_of(cur, key_id), timedelta(hours=settings.session_max_hours)
        )
        return sessions.find(cur, sessions.hash_token(token)), token

    row, token = await db.awrite(apply)
    assert row is not None
    return session_out(row, token), token


def _org_of(cur: Any, key_id: str) -> str:
    row = keys_q.get_key(cur, key_id)
    assert row is not None, key_id
    return str(row["org_id"])


async def live_session(db: Database, settings: Settings, token: str) -> dict[str, Any] | None:
    """The session row of a cookie token while it is live, else None (and it is deleted)."""
    token_hash = sessions.hash_token(token)
    row = await db.aread(sessions.find, token_hash)
    if row is None:
        return None
    now = utcnow()
    if not sessions.is_live(row, now, timedelta(minutes=settings.session_idle_minutes)):
        await db.awrite(sessions.delete, token_hash)
        return None
    if sessions.needs_touch(row, now):
        await db.awrite(sessions.touch, row["id"])
    return row


async def sign_out(db: Database, token: str) -> None:
    await db.awrite(sessions.delete, sessions.hash_token(token))
