"""Shared fixtures: real settings, a real DuckDB in a temp dir, the real app.

Data is built the way an operator or an API client builds it: the CLI (before the
app opens the database) or the HTTP API, never by writing to tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from helpfaster_box.cli.main import main as cli_main
from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.settings import Settings, load_settings
from helpfaster_box.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent  # where `helpfaster-box` was installed with this Python
ERROR_KEYS = {"error", "message"}


def make_settings(data_dir: Path | str, **overrides: Any) -> Settings:
    """Settings isolated from the caller's environment and config files."""
    return load_settings(overrides={"data_dir": str(data_dir), "load_models": False, **overrides}, environ={})


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


# --- the CLI as the operator uses it -----------------------------------------


def run_cli(settings: Settings, *args: str, ok: bool = True) -> Any:
    """Run `helpfaster-box ARGS --data-dir <settings.data_dir>` in-process."""
    result = CliRunner().invoke(cli_main, [*args, "--data-dir", settings.data_dir])
    if ok:
        assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result


@dataclass
class Org:
    name: str
    admin_key: str
    member_key: str

    @property
    def admin(self) -> dict[str, str]:
        return {"x-api-key": self.admin_key}

    @property
    def member(self) -> dict[str, str]:
        return {"x-api-key": self.member_key}


def cli_create_key(settings: Settings, org: str, role: str, name: str | None = None) -> dict[str, str]:
    args = ["keys", "create", "--org", org, "--role", role, "--json"]
    if name:
        args += ["--name", name]
    result = run_cli(settings, *args)
    return json.loads(result.stdout)


def cli_create_org(settings: Settings, name: str, plan: str = "growth") -> Org:
    """A new org with one admin and one member key, made through the CLI.

    Call it before the app opens the database (DuckDB allows one writing process).
    """
    run_cli(settings, "orgs", "create", name, "--plan", plan)
    admin_key = cli_create_key(settings, name, "admin")["key"]
    member_key = cli_create_key(settings, name, "member")["key"]
    return Org(name, admin_key, member_key)


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
        proc.wait(timeout=10)


def wait_out_minute_boundary(margin_s: float = 2.5) -> None:
    """Rate-limit windows are calendar minutes: don't let a burst straddle two."""
    into = time.time() % 60
    if into > 60 - margin_s:
        time.sleep(60 - into + 0.05)


def assert_error_body(body: Any, code: str) -> None:
    """The one error shape: {"error", "message"} (+ "details" list for validation)."""
    assert isinstance(body, dict), body
    assert ERROR_KEYS <= body.keys() <= ERROR_KEYS | {"details"}, body
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    if "details" in body:
        assert isinstance(body["details"], list) and body["details"], body
        for item in body["details"]:
            assert isinstance(item, dict) and isinstance(item.get("message"), str), body


# --- `serve` subprocesses (the e2e harness is tests/e2e/harness.py) ---------------


@pytest.fixture
def servers():
    """Start `helpfaster-box serve` processes: start(data_dir, models=False, env=None)."""
    from e2e.harness import Server

    started: list[Any] = []

    def start(data_dir: Path, models: bool = False, env: dict[str, str] | None = None) -> Any:
        server = Server(data_dir, models=models, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()
