"""The per-request path kept cheap (bench_http): the one outer middleware adds every
response header, route dependencies are resolved one by one, not in a task group, and
`serve` writes log lines from a writer thread."""

from __future__ import annotations

import io
import json
import logging
import threading
import time

from litestar.routes import HTTPRoute

from helpfaster_box.observability import logs
from helpfaster_box.observability.logs import JsonFormatter, LineWriter
from helpfaster_box.web.app import create_app


def test_every_route_resolves_its_dependencies_in_batches_of_one(settings):
    app = create_app(settings)
    checked = 0
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for _handler, kwargs_model in route.route_handler_map.values():
                assert all(len(batch) == 1 for batch in kwargs_model.dependency_batches), route.path
                checked += len(kwargs_model.dependency_batches)
    assert checked > 20  # the attribute is still Litestar's: most /v1 routes have auth + db


def test_one_response_carries_request_id_security_vary_and_rate_limit_headers(client, admin):
    for resp in (
        client.get("/v1/chatbots", headers=admin),
        client.get("/v1/chatbots/bot_nope", headers=admin),  # an error rendered by the handler
    ):
        h = resp.headers
        assert len(h["x-request-id"]) == 32
        assert h["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
        assert h["vary"] == "Origin"
        assert int(h["x-ratelimit-limit"]) > 0 and int(h["x-ratelimit-remaining"]) >= 0
        assert int(h["x-ratelimit-reset"]) >= 1
        assert len(resp.headers.get_list("x-ratelimit-limit")) == 1
    unknown = client.get("/v1/chatbots", headers={"x-api-key": "hf_live_wrong"})
    assert unknown.status_code == 401
    assert "x-ratelimit-limit" not in unknown.headers and unknown.headers["x-frame-options"] == "DENY"
    page = client.get("/no/such/page")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "vary" not in page.headers


def test_serve_log_writer_keeps_every_line_in_order_with_its_request_id():
    stream = io.StringIO()
    writer = LineWriter(stream, JsonFormatter())
    access, other = logging.getLogger("helpfaster_box.access"), logging.getLogger("helpfaster_box.x")
    saved = [(lg, lg.propagate, lg.level) for lg in (access, other)]
    for lg in (access, other):
        lg.addHandler(writer)
        lg.propagate = False
        lg.setLevel(logging.INFO)
    try:
        token = logs.request_id.set("rid-1")
        for i in range(2500):  # queued; more than WAKE_AT, so some batches are written early
            access.info("line %d of %s", i, "hf_live_" + "x" * 32, extra={"n": i})
        logs.request_id.reset(token)
        other.warning("written at once, after the queued lines")
        assert stream.getvalue().splitlines()[-1].endswith('"written at once, after the queued lines"}')
        access.info("after")
    finally:
        for lg, propagate, level in saved:
            lg.removeHandler(writer)
            lg.propagate, lg.level = propagate, level
        writer.close()  # what logging.shutdown() does at exit: every queued line is written
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line.get("n") for line in lines[:2500]] == list(range(2500))
    assert lines[0]["request_id"] == "rid-1" and lines[0]["message"] == "line 0 of hf_live_[redacted]"
    assert [line["message"] for line in lines[2500:]] == ["written at once, after the queued lines", "after"]
    assert "request_id" not in lines[-1]


def test_serve_log_writer_holds_a_bounded_queue_while_its_stream_is_stuck():
    # stderr into a pipe nobody reads (a paused pager, a stalled journald): the writer thread
    # blocks in write() while the event loop goes on queueing access lines. The queue is
    # bounded: lines past it are dropped and counted, not held until memory runs out.
    gate = threading.Event()

    class Stuck(io.StringIO):
        def write(self, s: str) -> int:
            gate.wait(30)
            return super().write(s)

    stream = Stuck()
    writer = LineWriter(stream, JsonFormatter())
    access = logging.getLogger("helpfaster_box.access")
    saved = (access.propagate, access.level)
    access.addHandler(writer)
    access.propagate, access.level = False, logging.INFO
    total = LineWriter.MAX_PENDING * 3
    try:
        for i in range(total):
            access.info("line %d", i)
            if i == LineWriter.WAKE_AT:
                time.sleep(0.2)  # the writer has taken a batch and is stuck writing it
    finally:
        access.removeHandler(writer)
        access.propagate, access.level = saved
        gate.set()
        writer.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    kept = [line for line in lines if line["logger"] == "helpfaster_box.access"]
    assert len(kept) <= LineWriter.MAX_PENDING + LineWriter.WAKE_AT + 1
    (note,) = [line for line in lines if line["logger"] != "helpfaster_box.access"]
    assert note["level"] == "WARNING" and f"{total - len(kept)} access lines dropped" in note["message"]
