"""`serve` with an external inference engine: llama-cpp-python's own OpenAI-compatible
server on loopback (the `server` extra) for chat and for embeddings, then the engine
goes away and chat is a 503 `unavailable` that /v1/health also reports."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from support.server import KEY_RE, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.models]

ROOT = Path(__file__).resolve().parents[2]
CHAT_GGUF = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBED_GGUF = ROOT / "models" / "all-MiniLM-L6-v2.F16.gguf"
DOC = (
    b"# VPN access\n\nTo reach the intranet from home, start the VPN client and sign in with "
    b"your badge number. The VPN client is called NetGate and is installed on every laptop.\n"
)


class EngineServer:
    """`python -m llama_cpp.server` on 127.0.0.1; its access log tells which calls it served."""

    def __init__(self, model: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed with the process
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
        self.proc = subprocess.Popen(
            [*cmd, "--port", str(self.port), "--n_threads", "1", *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.2)

    def output(self) -> str:
        if self.log.closed:
            return ""
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def engines():
    started: list[EngineServer] = []

    def start(model: Path, *args: str) -> EngineServer:
        started.append(EngineServer(model, *args))
        return started[-1]

    yield start
    for engine in started:
        engine.stop()


def _stream(http: httpx.Client, bot: str, message: str) -> tuple[list[str], dict]:
    events: list[tuple[str, str]] = []
    with http.stream("POST", f"/v1/chatbots/{bot}/chat", json={"message": message, "stream": True}) as r:
        assert r.status_code == 200, r.read()
        name = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, line[6:]))
    assert events and events[-1][0] == "done", events
    tokens = [json.loads(d)["text"] for n, d in events if n == "token"]
    return tokens, json.loads(events[-1][1])


def test_chat_through_an_external_engine_then_engine_down(tmp_path, servers, engines):
    # --interrupt_requests False: by default llama_cpp.server cuts a running request
    # short when the next one arrives; the box sends several at once.
    chat_engine = engines(CHAT_GGUF, "--n_ctx", "4096", "--interrupt_requests", "False")
    embed_engine = engines(EMBED_GGUF, "--embedding", "true", "--n_ctx", "512", "--n_ubatch", "512")
    data_dir = tmp_path / "data"
    env = {
        "HELPFASTER_LLM_BACKEND": "openai",
        "HELPFASTER_LLM_BASE_URL": f"{chat_engine.url}/v1",
        "HELPFASTER_LLM_CONTEXT_SIZE": "4096",
        "HELPFASTER_LLM_RETRIES": "1",
        "HELPFASTER_EMBEDDING_BACKEND": "openai",
        "HELPFASTER_EMBEDDING_BASE_URL": embed_engine.url,
        "HELPFASTER_RATE_LIMIT_SCALE": "100000",
    }
    server = servers(data_dir, models=True, env=env)
    key = server.wait_for_line(KEY_RE, timeout=60).group(0)
    health = server.wait_healthy(timeout=60)
    assert health["checks"]["chatModel"] == "ok" and health["checks"]["embeddingModel"] == "ok"

    with httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=120) as http:
        bot = http.post("/v1/chatbots", json={"name": "Remote", "answerMode": "generative"}).json()["id"]
        up = http.post(
            f"/v1/chatbots/{bot}/sources",
            files={"file": ("vpn.md", DOC, "text/markdown")},
            data={"title": "VPN guide"},
        )
        assert up.status_code == 202, up.text
        deadline = time.monotonic() + 120
        while (status := http.get(f"/v1/sources/{up.json()['id']}").json()["status"]) != "ready":
            assert status != "failed" and time.monotonic() < deadline, status
            time.sleep(0.2)
        assert "POST /v1/embeddings" in embed_engine.output()
        # "ready" is committed a moment before the in-memory index holds the vectors.
        while not http.post(f"/v1/chatbots/{bot}/search", json={"query": "VPN", "k": 1}).json()["data"]:
            assert time.monotonic() < deadline, "the document never became searchable"
            time.sleep(0.1)

        blocking = http.post(
            f"/v1/chatbots/{bot}/chat", json={"message": "How do I reach the intranet from home?"}
        )
        assert blocking.status_code == 200, blocking.text
        reply = blocking.json()
        assert reply["answered"] and reply["reply"].strip()
        assert reply["sources"][0]["title"] == "VPN guide"
        assert "POST /v1/chat/completions" in chat_engine.output()

        tokens, done = _stream(http, bot, "What is the VPN client called?")
        assert len(tokens) >= 2  # generated piece by piece, not one block
        assert done["reply"].startswith("".join(tokens).strip()[:10])
        conv = http.get(f"/v1/conversations/{done['conversationId']}").json()
        assert conv["messages"][-1]["answerMode"] == "generative"

        chat_engine.stop()
        down = http.post(f"/v1/chatbots/{bot}/chat", json={"message": "How do I reach the intranet?"})
        assert down.status_code == 503, down.text
        assert down.json()["error"] == "unavailable" and chat_engine.url in down.json()["message"]
        with http.stream(
            "POST", f"/v1/chatbots/{bot}/chat", json={"message": "And the VPN?", "stream": True}
        ) as r:  # the engine fails before the first byte: still an HTTP status
            assert r.status_code == 503 and json.loads(r.read())["error"] == "unavailable"
        health = http.get("/v1/health")
        assert health.status_code == 503
        assert health.json()["checks"]["chatModel"] == "unavailable"
        assert health.json()["checks"]["embeddingModel"] == "ok"
    server.stop()
