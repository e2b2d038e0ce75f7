"""`helpfaster-box serve` as an operator runs it: a real process, real HTTP, a clean stop."""

from __future__ import annotations

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
import pytest
from conftest import VENV_BIN

KEY_RE = re.compile(r"hf_live_[0-9A-Za-z]{32}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `serve` subprocess; stdout lines are collected by a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELPFASTER_")}
        env.pop("PYTHONUNBUFFERED", None)  # stdout is a pipe, as under systemd
        env["HELPFASTER_LOAD_MODELS"] = "false"
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
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        threading.Thread(
            target=self._pump, args=(self.proc.stdout, self.stdout, self.lines), daemon=True
        ).start()
        threading.Thread(
            target=self._pump, args=(self.proc.stderr, self.stderr, None), daemon=True
        ).start()

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
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


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


@pytest.fixture
def servers():
    started: list[Server] = []

    def start(data_dir: Path) -> Server:
        server = Server(data_dir)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def test_serve_first_run_http_docs_and_clean_shutdown(tmp_path, servers):
    data_dir = tmp_path / "data"
    first = servers(data_dir)
    first.wait_for_line(re.compile(r"Data directory: .*" + re.escape(data_dir.name)))
    key = first.wait_for_line(KEY_RE).group(0)
    assert any(first.url in line for line in first.stdout)
    health = first.wait_healthy()
    assert health["status"] == "ok" and health["version"]

    with httpx.Client(base_url=first.url, headers={"x-api-key": key}, timeout=10) as http:
        made = http.post("/v1/chatbots", json={"name": "Over the wire"})
        assert made.status_code == 201, made.text
        bot = made.json()
        listed = http.get("/v1/chatbots")
        assert listed.status_code == 200 and [b["id"] for b in listed.json()["data"]] == [bot["id"]]
        assert listed.headers["x-ratelimit-limit"] == "300"
        assert http.get("/v1/chatbots", headers={"x-api-key": "hf_live_wrong"}).status_code == 401

        spec = http.get("/v1/openapi.json")
        assert spec.status_code == 200 and spec.headers["content-type"].startswith(
            "application/json"
        )
        paths = spec.json()["paths"]
        assert (
            "/v1/chatbots" in paths and "/v1/chatbots/{bot_id}" in paths and "/v1/api-keys" in paths
        )

        docs = http.get("/v1/docs")
        assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
        page = docs.text
        assert not re.search(r"https?://", page, flags=re.IGNORECASE), re.findall(
            r"https?://\S{0,60}", page
        )[:5]
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
        assert assets and all(a.startswith("/v1/docs/assets/") for a in assets), assets
        js = next(a for a in assets if a.endswith(".js"))
        asset = http.get(js)
        assert asset.status_code == 200 and len(asset.content) > 10_000
        assert "javascript" in asset.headers["content-type"]

    assert_clean_stop(first, data_dir)

    second = servers(data_dir)
    second.wait_healthy()
    with httpx.Client(base_url=second.url, headers={"x-api-key": key}, timeout=10) as http:
        # same data, same key: nothing was lost at shutdown
        assert [b["id"] for b in http.get("/v1/chatbots").json()["data"]] == [bot["id"]]
    assert_clean_stop(second, data_dir)
    out = "".join(second.stdout)
    assert "Data directory" in out and second.url in out
    assert not KEY_RE.search(out) and "First start" not in out, out
