"""Helpers shared by the test modules: isolated settings, the CLI as an operator runs it,
organizations with keys, the error-body check. Imported as `from support.helpers import ...`;
fixtures live in tests/conftest.py."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from helpfaster_box.cli.main import main as cli_main
from helpfaster_box.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent  # where `helpfaster-box` was installed with this Python
ERROR_KEYS = {"error", "message"}


def make_settings(data_dir: Path | str, **overrides: Any) -> Settings:
    """Settings isolated from the caller's environment and config files."""
    return load_settings(overrides={"data_dir": str(data_dir), "load_models": False, **overrides}, environ={})


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
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def cli_create_org(settings: Settings, name: str, plan: str = "growth") -> Org:
    """A new org with one admin and one member key, made through the CLI.

    Call it before the app opens the database (DuckDB allows one writing process).
    """
    run_cli(settings, "orgs", "create", name, "--plan", plan)
    admin_key = cli_create_key(settings, name, "admin")["key"]
    member_key = cli_create_key(settings, name, "member")["key"]
    return Org(name, admin_key, member_key)


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
