"""Liveness and readiness: no auth, not rate limited."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.openapi import ResponseSpec

from helpfaster_box import __version__
from helpfaster_box.schemas import Out


class HealthOut(Out):
    status: str  # ok | unavailable
    version: str
    checks: dict[str, str]


@get(
    "/health",
    tags=["Health"],
    security=[],
    responses={503: ResponseSpec(HealthOut, description="Not ready: a check failed (see checks).")},
)
async def health(request: Request[Any, Any, Any]) -> Response[HealthOut]:
    state = request.app.state
    checks: dict[str, str] = {"database": "ok"}
    try:
        await state.db.aread(lambda cur: cur.execute("SELECT 1").fetchone())
    except Exception:
        checks["database"] = "unavailable"
    for name, probe in state.readiness.items():
        checks[name] = probe()
    ok = all(v in ("ok", "disabled") for v in checks.values())
    body = HealthOut(status="ok" if ok else "unavailable", version=__version__, checks=checks)
    return Response(body, status_code=200 if ok else 503)
