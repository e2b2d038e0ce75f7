"""RemoteEngine's client side against a small OpenAI-compatible SSE server on loopback:
fair admission across orgs, a full queue, cancellation closing the HTTP stream, retries,
a server that is down, and the stored-index dimension check. The end-to-end run with
llama.cpp's real server is tests/e2e/test_external_engine.py."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from support.helpers import make_settings

from helpfaster_box.errors import Unavailable
from helpfaster_box.llm.backends import IndexDimensionMismatch, check_index_dim
from helpfaster_box.llm.engine import EngineOverloaded, PromptTooLong
from helpfaster_box.llm.remote import RemoteEngine
from helpfaster_box.retrieval.registry import IndexRegistry


class FakeEngine:
    """Streams `words` one SSE event per `delay_s`; records tenants' order and disconnects."""

    def __init__(self, words: int = 5, delay_s: float = 0.05, fail_first: int = 0) -> None:
        self.order: list[str] = []
        self.disconnects = 0
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._send(200, b'{"data": []}', "application/json")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self._send(503, b'{"error": "loading"}', "application/json")
                    return
                outer.order.append(body["messages"][-1]["content"] if "messages" in body else body["prompt"])
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    for i in range(words):
                        event = {"choices": [{"delta": {"content": f" w{i}"}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(delay_s)
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    outer.disconnects += 1
                self.close_connection = True

            def _send(self, code: int, data: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake():
    server = FakeEngine()
    yield server
    server.close()


def run(coro):
    return asyncio.run(coro)


async def started(url: str, **kw) -> RemoteEngine:
    engine = RemoteEngine(url, **kw)
    await engine.astart()
    return engine


def prompt(engine: RemoteEngine, text: str) -> str:
    return engine.format_chat([{"role": "user", "content": text}])


def test_streams_pieces_with_stats(fake):
    async def go():
        engine = await started(fake.url)
        gen = engine.generate(tenant="a", prompt=prompt(engine, "hi"), max_tokens=10, temperature=0)
        pieces = [p async for p in gen]
        await engine.aclose()
        return pieces, gen.stats, engine.status()

    pieces, stats, status = run(go())
    assert pieces == [" w0", " w1", " w2", " w3", " w4"]
    assert stats.completion_tokens == 5 and stats.finish_reason == "stop" and stats.ttft_s is not None
    assert status["active"] == 0 and status["queued"] == 0


def test_an_idle_org_goes_before_a_busy_orgs_backlog(fake):
    async def go():
        engine = await started(fake.url, max_sequences=1)
        gens = [
            engine.generate(tenant=t, prompt=prompt(engine, m), max_tokens=10, temperature=0)
            for t, m in [("busy", "b1"), ("busy", "b2"), ("busy", "b3"), ("idle", "i1")]
        ]
        for g in gens:
            await g  # queued in this order
        await asyncio.gather(*(g.text() for g in gens))
        await engine.aclose()

    run(go())
    assert fake.order == ["b1", "i1", "b2", "b3"]


def test_a_full_queue_is_overloaded(fake):
    async def go():
        engine = await started(fake.url, max_sequences=1, queue_size=2)
        gens = [engine.generate(tenant=f"o{i}", prompt="x", max_tokens=5, temperature=0) for i in range(4)]
        await gens[0]  # admitted at once: holds the one slot
        await gens[1]
        await gens[2]
        with pytest.raises(EngineOverloaded) as err:
            await gens[3]
        for g in gens[:3]:
            await g.aclose()
        await engine.aclose()
        return err.value.retry_after_s

    assert run(go()) >= 1


def test_cancelling_closes_the_http_stream_and_frees_the_slot():
    fake = FakeEngine(words=200, delay_s=0.01)
    try:

        async def go():
            engine = await started(fake.url, max_sequences=1)
            gen = engine.generate(tenant="a", prompt="x", max_tokens=500, temperature=0)
            async for _ in gen:
                break
            await gen.aclose()
            second = await engine.generate(tenant="b", prompt="y", max_tokens=5, temperature=0).text()
            status = engine.status()
            await engine.aclose()
            return second, status

        second, status = run(go())
        deadline = time.monotonic() + 5
        while not fake.disconnects and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake.disconnects == 1 and second and status["active"] == 0
    finally:
        fake.close()


def test_503_is_retried_and_a_dead_server_is_unavailable():
    fake = FakeEngine(fail_first=1)
    url = fake.url
    try:

        async def ok():
            engine = await started(url, retries=1)
            text = await engine.generate(tenant="a", prompt="x", max_tokens=5, temperature=0).text()
            await engine.aclose()
            return text

        assert run(ok()).strip().startswith("w0")
    finally:
        fake.close()

    async def down():
        engine = await started(url, retries=1)
        assert engine.readiness() == "unavailable"
        with pytest.raises(Unavailable, match="not reachable"):
            await engine.generate(tenant="a", prompt="x", max_tokens=5, temperature=0).text()
        await engine.aclose()

    run(down())


def test_prompt_too_long_before_sending(fake):
    async def go():
        engine = await started(fake.url, seq_ctx=64)
        with pytest.raises(PromptTooLong):
            await engine.generate(tenant="a", prompt="word " * 200, max_tokens=10, temperature=0)
        await engine.aclose()

    run(go())
    assert fake.order == []


def test_an_embedder_of_another_dimension_is_refused(tmp_path):
    settings = make_settings(tmp_path)
    registry = IndexRegistry(settings.data_path / "indexes", 384)
    registry.rebuild("cb_" + "a" * 20, np.arange(2), np.ones((2, 384), np.float32), ["one", "two"])
    check_index_dim(settings, 384, "the same model")
    with pytest.raises(IndexDimensionMismatch, match=r"768-dimensional .* 384-dimensional"):
        check_index_dim(settings, 768, "a bigger model")
