"""Liveness and readiness (no auth, not rate limited) and the own organization."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from .. import __version__
from ..store import orgs as orgs_q
from ..store.db import Database
from ..store.ids import iso
from .auth import AuthContext


@get("/health", tags=["Health"])
async def health(request: Request) -> Response[dict[str, Any]]:
    state = request.app.state
    checks: dict[str, Any] = {"database": "ok"}
    try:
        await state.db.aread(lambda cur: cur.execute("SELECT 1").fetchone())
    except Exception:  # noqa: BLE001 - any failure means not ready
        checks["database"] = "unavailable"
    for name, probe in state.readiness.items():
        checks[name] = probe()
    ok = all(v in ("ok", "disabled") for v in checks.values())
    body = {"status": "ok" if ok else "unavailable", "version": __version__, "checks": checks}
    return Response(body, status_code=200 if ok else 503)


@get("/organization", tags=["Organization"])
async def get_organization(request: Request, auth: AuthContext, db: Database) -> dict[str, Any]:
    settings = request.app.state.settings

    def load(cur: Any) -> tuple[dict[str, Any], dict[str, int]]:
        org = orgs_q.get_org(cur, auth.org_id)
        assert org is not None  # the key that authenticated belongs to it
        usage = {name: cur.execute(sql, [auth.org_id]).fetchone()[0]
                 for name, sql in request.app.state.usage_tables}
        return org, usage

    org, usage = await db.aread(load)
    return {
        "id": org["id"],
        "name": org["name"],
        "plan": org["plan"],
        "createdAt": iso(org["created_at"]),
        "limits": {"requestsPerMinute": settings.rate_limit_for(org["plan"])},
        "usage": usage,
    }
