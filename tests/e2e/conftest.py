"""Fixtures of the e2e tests: `servers` starts `serve` subprocesses and kills them after."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Server


@pytest.fixture
def servers():
    started: list[Server] = []

    def start(data_dir: Path, models: bool = False, env: dict[str, str] | None = None) -> Server:
        server = Server(data_dir, models=models, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()
