"""The live-server harness: `helpfaster-box serve` as a real subprocess (e2e, browser
tests), or the same app under uvicorn in a thread when a test must inspect its state."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from helpfaster_box.web.app import create_app
from support.helpers import VENV_BIN

KEY_RE = re.compile(r"hf_live_[0-9A-Za-z]{32}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `serve` subprocess; stdout lines are collected by a thread."""

    def __init__(
        self,
        data_dir: Path,
        *,
        models: bool = False,
        env: dict[str, str] | None = None,
        port: int | None = None,
        own_group: bool = False,
    ) -> None:
        """port: listen there (a restart on the same address); own_group: start `serve` in a
        process group of its own, so `kill_group` reaches its children too (the parse sandbox)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        overrides = env or {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELPFASTER_")}
        env.pop("PYTHONUNBUFFERED", None)  # stdout is a pipe, as under systemd
        env["HELPFASTER_LOAD_MODELS"] = "true" if models else "false"
        env.update(overrides)
        self.proc = subprocess.Popen(
            [
                str(VENV_BIN / "helpfaster-box"),
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=own_group,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._pumps = [
            threading.Thread(
                target=self._pump, args=(self.proc.stdout, self.stdout, self.lines), daemon=True
            ),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr, None), daemon=True),
        ]
        for t in self._pumps:
            t.start()

    @staticmethod
    def _pump(stream, sink: list[str], lines: queue.Queue[str] | None) -> None:
        for line in stream:
            sink.append(line)
            if lines is not None:
                lines.put(line)

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, f"serve exited early: {''.join(self.stderr)}"
                continue
            if match := pattern.search(line):
                return match
        raise AssertionError(f"no line matching {pattern.pattern}; stdout so far: {self.stdout}")

    def wait_healthy(self, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"serve exited early: {''.join(self.stderr)}"
            try:
                resp = httpx.get(f"{self.url}/v1/health", timeout=2)
                if resp.status_code == 200:
                    return resp.json()
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.url}/v1/health never became healthy: {''.join(self.stderr)}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.kill()

    def kill_group(self) -> None:
        """SIGKILL `serve` and every process of its group (needs own_group=True): a crash or
        an OOM kill of the whole service, no shutdown hook runs."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for t in self._pumps:  # the pumps end at EOF; then the pipes can be closed
            t.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def assert_clean_stop(server: Server, data_dir: Path) -> None:
    """SIGTERM -> graceful shutdown: lifespan closed, database checkpointed, no traceback.

    uvicorn re-raises the captured SIGTERM after shutting down, so the exit status is
    "terminated by SIGTERM" (which systemd counts as a clean stop) rather than 0.
    """
    code = server.stop()
    err = "".join(server.stderr)
    assert code in (0, -signal.SIGTERM), (code, err)
    assert "Application shutdown complete" in err, err
    assert "Traceback" not in err and "ERROR" not in err, err
    assert not (data_dir / "helpfaster.duckdb.wal").exists(), "database was not closed cleanly"


class AppServer:
    """The app under uvicorn in a thread of this process (its state stays inspectable)."""

    def __init__(self, settings) -> None:
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> AppServer:
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            assert time.time() < deadline, "server did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    @property
    def engine(self):
        return self.app.state.engine
