"""`POST /control/backup`: the CLI's way to get a consistent backup from the running server.

Not part of the public API (outside `/v1`, not in the OpenAPI document, no API key):
it takes the control token of `<data_dir>/.control.json` (see `backup/control.py`) and
only from this machine. The backup runs as a job of the knowledge worker when the
models are loaded, so index files do not change while they are copied.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Request, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import JSONBody
from msgspec import Meta

from helpfaster_box.backup import snapshot
from helpfaster_box.errors import Forbidden, Unauthorized
from helpfaster_box.schemas import Out


class BackupRequest(msgspec.Struct, forbid_unknown_fields=True):
    dir: Annotated[str, Meta(min_length=1, max_length=4096)]


class BackupOut(Out):
    dir: str
    files: int
    bytes: int
    schema_version: int
    created_at: str
    seconds: float


def is_local(scope: Any) -> bool:
    """The client is this machine: loopback, or the address the server itself listens on."""
    client, server = scope.get("client"), scope.get("server")
    if not client:
        return False
    try:
        if ipaddress.ip_address(client[0]).is_loopback:
            return True
    except ValueError:
        return False
    return bool(server) and client[0] == server[0]


def control_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the control token, from this machine."""
    expected = connection.app.state.get("control_token")
    given = connection.headers.get("authorization", "")
    if not expected or not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        raise Unauthorized("The control token of the data directory's .control.json is required.")
    if not is_local(connection.scope):
        raise Forbidden("Control requests are accepted only from this machine.")


@post("/control/backup", guards=[control_only], include_in_schema=False, status_code=200)
async def backup(request: Request[Any, Any, Any], data: JSONBody[BackupRequest]) -> BackupOut:
    state = request.app.state

    def work() -> dict[str, Any]:
        return snapshot.write_snapshot(state.db, state.settings.data_path, Path(data.dir), made_by="server")

    knowledge = state.knowledge
    if knowledge is not None:
        manifest = await asyncio.wrap_future(knowledge.run_exclusive(work))
    else:
        manifest = await asyncio.to_thread(work)
    return BackupOut(
        dir=str(Path(data.dir)),
        files=len(manifest["files"]),
        bytes=manifest["bytes"],
        schema_version=manifest["schemaVersion"],
        created_at=manifest["createdAt"],
        seconds=manifest["seconds"],
    )
