"""Shared fixtures: real settings, a real DuckDB in a temp dir, the real app.

Data is built the way an operator or an API client builds it: the CLI (before the
app opens the database) or the HTTP API, never by writing to tables. Helpers used
by test modules are in `support/` (`from support.helpers import ...`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from support.helpers import Org, cli_create_org, make_settings

from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.settings import Settings
from helpfaster_box.web.app import create_app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def admin_key(settings: Settings) -> str:
    """The first-run admin key of org `default` (plan scale), as `serve` creates it."""
    key = bootstrap(settings)
    assert key and key.startswith("hf_live_")
    return key


@pytest.fixture
def client(settings: Settings, admin_key: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def admin(admin_key: str) -> dict[str, str]:
    """Headers for the `default` org's admin key."""
    return {"x-api-key": admin_key}


@pytest.fixture
def org_b(settings: Settings, admin_key: str) -> Org:
    """A second organization; request it before `client` so it exists when the app opens."""
    return cli_create_org(settings, "org-b")


# --- a process holding the database, as a running server would ----------------

HOLD_DB = (
    "import sys, time\n"
    "from helpfaster_box.store.db import open_database\n"
    "db = open_database(sys.argv[1])\n"
    "print('holding', flush=True)\n"
    "time.sleep(120)\n"
)


@pytest.fixture
def hold_database():
    """Start a subprocess that opens a DB file and keeps it; yields a starter function."""
    procs: list[subprocess.Popen[str]] = []

    def start(db_path: Path | str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD_DB, str(db_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        procs.append(proc)
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip() == "holding", (line, proc.stderr.read() if proc.stderr else "")
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.communicate(timeout=10)  # reaps it and closes its pipes


# --- `serve` subprocesses ------------------------------------------------------


@pytest.fixture
def servers():
    """Start `helpfaster-box serve` processes: start(data_dir, models=False, env=None)."""
    from support.server import Server

    started: list[Server] = []

    def start(data_dir: Path, models: bool = False, env: dict[str, str] | None = None) -> Server:
        server = Server(data_dir, models=models, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()
