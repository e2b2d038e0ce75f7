"""The local control channel: how the CLI asks the running server to do what needs the DB.

DuckDB lets one process open the file, and that process is `serve`; so `backup` run
next to a serving box cannot read the database itself. At start the server writes
`<data_dir>/.control.json` — its URL and a fresh random token — with mode 0600, and
removes it at a clean stop. `POST /control/backup` accepts a request only with that
token (so only a user who can read the data dir, i.e. the box's own user or root) and
only from this machine (loopback, or the server's own address when it listens on
one). HTTP on the port already open was chosen over a Unix socket because the server
already speaks it, uvicorn serves one socket at a time, and httpx is a dependency.

A stale file (a server killed with SIGKILL) is harmless: the CLI cannot connect, and
falls back to reading the files directly, which succeeds only if nothing holds the DB.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

import httpx

CONTROL_FILE = ".control.json"
BACKUP_TIMEOUT_S = 3600.0  # a large data dir takes minutes to copy


class ServerUnreachable(Exception):
    """No server answers at the URL of the control file (it is gone, or stale)."""


class ControlFailed(Exception):
    """The server answered the control request with an error; the message says why."""


def local_url(host: str, port: int) -> str:
    """Where a process on this machine reaches a server listening on host:port."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def write_control(data_dir: Path, url: str) -> str:
    """Write the control file (0600) for this server; returns its token."""
    token = secrets.token_urlsafe(32)
    path = data_dir / CONTROL_FILE
    path.unlink(missing_ok=True)  # a stale one may have other permissions
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"url": url, "pid": os.getpid(), "token": token}, fh)
    return token


def remove_control(data_dir: Path, token: str) -> None:
    """Remove the control file if it is still this server's."""
    control = read_control(data_dir)
    if control is not None and control.get("token") == token:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / CONTROL_FILE).unlink()


def read_control(data_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((data_dir / CONTROL_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) and {"url", "token"} <= data.keys() else None


def request_backup(control: dict[str, Any], dest: Path) -> dict[str, Any]:
    """Ask the server to write a backup into `dest`; returns the manifest summary."""
    try:
        resp = httpx.post(
            f"{control['url']}/control/backup",
            json={"dir": str(dest)},
            headers={"authorization": f"Bearer {control['token']}"},
            timeout=httpx.Timeout(10.0, read=BACKUP_TIMEOUT_S),
        )
    except httpx.TransportError as exc:
        raise ServerUnreachable(str(exc)) from None
    if resp.status_code != 200:
        try:
            message = resp.json()["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:500]
        raise ControlFailed(f"the server refused the backup ({resp.status_code}): {message}")
    return resp.json()
