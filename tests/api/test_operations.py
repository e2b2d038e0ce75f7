"""Operations over the in-process app: Prometheus metrics, JSON request logs, request ids,
trusted proxies, the control channel's refusals, and the conversation export.

Metrics are read by parsing the text format `GET /metrics` serves, as Prometheus would.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from support.helpers import assert_error_body, make_settings
from support.knowledge import create_bot, ingested, models_settings

from helpfaster_box.observability.logs import JsonFormatter
from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.web.app import create_app


def scrape(client: TestClient, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The run's log records rendered by the JSON formatter `serve` installs; call to parse."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_metrics_count_requests_by_route_template_and_status(client, admin):
    bot = create_bot(client, admin)
    client.get(f"/v1/chatbots/{bot}", headers=admin)
    client.get("/v1/chatbots/bot_doesnotexist", headers=admin)
    client.get(f"/v1/chatbots/{bot}", headers={"x-api-key": "hf_live_wrong"})
    client.get("/no/such/path")
    m = scrape(client)
    total = "helpfaster_http_requests_total"
    assert value(m, total, method="POST", route="/v1/chatbots", status="201") == 1
    assert value(m, total, method="GET", route="/v1/chatbots/{bot_id}", status="200") == 1
    assert value(m, total, method="GET", route="/v1/chatbots/{bot_id}", status="404") == 1
    assert value(m, total, method="GET", route="/v1/chatbots/{bot_id}", status="401") == 1
    assert value(m, total, method="GET", route="<unmatched>", status="404") == 1
    assert not any(bot in str(labels) for _, labels in m), "a raw path with an id became a label"
    hist = "helpfaster_http_request_duration_seconds_count"
    assert value(m, hist, method="GET", route="/v1/chatbots/{bot_id}") == 3
    # scrape-time levels, with the models off
    assert value(m, "helpfaster_model_loaded", model="chat") == 0
    assert value(m, "helpfaster_database_bytes", file="db") > 0
    assert ("helpfaster_ingestion_backlog", (("status", "queued"),)) in m
    assert ("helpfaster_webhook_backlog", (("status", "pending"),)) in m
    assert value(m, "helpfaster_build_info", version=client.get("/v1/health").json()["version"]) == 1


def test_metrics_need_no_key_are_not_rate_limited_and_count_429s(tmp_path):
    settings = make_settings(tmp_path, rate_limit_scale=2)
    key = bootstrap(settings)
    with TestClient(create_app(settings)) as c:
        for _ in range(4):
            c.get("/v1/chatbots", headers={"x-api-key": key})
        for _ in range(5):
            assert c.get("/metrics").status_code == 200  # never 429, no key
        m = scrape(c)
    assert value(m, "helpfaster_rate_limited_requests_total", plan="scale") >= 1
    assert value(m, "helpfaster_http_requests_total", method="GET", route="/v1/chatbots", status="429") >= 1


def test_metrics_token_and_disabled_metrics(tmp_path):
    settings = make_settings(tmp_path / "a", metrics_token="s3cret-token")
    with TestClient(create_app(settings)) as c:
        resp = c.get("/metrics")
        assert resp.status_code == 401
        assert_error_body(resp.json(), "unauthorized")
        assert c.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
        scrape(c, authorization="Bearer s3cret-token")
    with TestClient(create_app(make_settings(tmp_path / "b", metrics_enabled=False))) as c:
        resp = c.get("/metrics")
        assert resp.status_code == 404
        assert_error_body(resp.json(), "not_found")


def test_one_json_access_line_per_request_with_request_id_and_no_secrets(client, admin, admin_key, log_lines):
    bot = create_bot(client, admin)
    made = client.post(
        "/v1/webhooks", json={"url": "https://93.184.216.34/hook", "events": ["message.sent"]}, headers=admin
    )
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    given = client.get(f"/v1/chatbots/{bot}", headers={**admin, "x-request-id": "trace-42.a:b"})
    assert given.headers["x-request-id"] == "trace-42.a:b"
    forged = client.get("/v1/chatbots", headers={**admin, "x-request-id": 'evil"\n{"status":200}'})
    generated = forged.headers["x-request-id"]
    assert generated != 'evil"\n{"status":200}' and len(generated) == 32
    missing = client.get("/v1/nope", headers=admin)
    assert len(missing.headers["x-request-id"]) == 32
    lines = log_lines()
    access = [line for line in lines if line["logger"] == "helpfaster_box.access"]
    assert [(a["method"], a["route"], a["status"]) for a in access] == [
        ("POST", "/v1/chatbots", 201),
        ("POST", "/v1/webhooks", 201),
        ("GET", "/v1/chatbots/{bot_id}", 200),
        ("GET", "/v1/chatbots", 200),
        ("GET", "<unmatched>", 404),
    ]
    for a in access:
        assert {"time", "level", "request_id", "latency_ms", "org_id", "client"} <= a.keys(), a
        assert a["time"].endswith("Z") and a["latency_ms"] >= 0
    assert {a["org_id"] for a in access[:4]} == {client.get("/v1/organization", headers=admin).json()["id"]}
    assert access[4]["org_id"] is None  # no route, so no key was looked at
    assert access[2]["request_id"] == "trace-42.a:b" and access[3]["request_id"] == generated
    text = "\n".join(json.dumps(line) for line in lines)
    assert (
        admin_key not in text
        and secret not in text
        and "hf_live_" not in text.replace("hf_live_[redacted]", "")
    )


def test_trusted_proxy_sets_the_client_address_only_when_the_peer_is_trusted(tmp_path, log_lines):
    for name, trusted in (("trusting", ["testclient"]), ("default", [])):
        settings = make_settings(tmp_path / name, trusted_proxies=trusted)
        with TestClient(create_app(settings)) as c:
            c.get("/v1/health", headers={"x-forwarded-for": "203.0.113.9, 10.0.0.1", "x-request-id": name})
    by_id = {a["request_id"]: a for a in log_lines() if a["logger"] == "helpfaster_box.access"}
    # the proxy's own hop (10.0.0.1) is not trusted, so it is the client uvicorn's rule picks
    assert by_id["trusting"]["client"] == "10.0.0.1"
    assert by_id["default"]["client"] == "testclient"


def test_control_backup_refuses_without_token_and_from_off_machine(client, tmp_path):
    resp = client.post("/control/backup", json={"dir": str(tmp_path / "b")})
    assert resp.status_code == 401
    assert_error_body(resp.json(), "unauthorized")
    token = client.app.state.control_token
    control = json.loads((tmp_path / "data" / ".control.json").read_text())
    assert control["token"] == token
    assert ((tmp_path / "data" / ".control.json").stat().st_mode & 0o777) == 0o600
    resp = client.post(
        "/control/backup", json={"dir": str(tmp_path / "b")}, headers={"authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 403  # the test client's peer is not this machine's loopback
    assert_error_body(resp.json(), "forbidden")
    assert not (tmp_path / "b").exists()
    assert "/control/backup" not in client.get("/v1/openapi.json").json()["paths"]


# --- a model-backed chat and ingestion move the feature metrics; then the export ------------


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    settings = models_settings(tmp_path_factory.mktemp("ops") / "data")
    key = bootstrap(settings)
    headers = {"x-api-key": key}
    with TestClient(create_app(settings)) as c:
        yield c, headers, create_bot(c, headers, "Ops bot")


def test_metrics_move_after_an_ingestion_and_chats(served):
    c, h, bot = served
    before = scrape(c)
    doc = "# Returns\n\nYou can return any item within 30 days of delivery for a full refund.\n"
    r = c.post(
        f"/v1/chatbots/{bot}/sources", headers=h, json={"type": "text", "title": "Returns", "content": doc}
    )
    assert r.status_code == 202, r.text
    ingested(c)
    answered = c.post(
        f"/v1/chatbots/{bot}/chat", headers=h, json={"message": "How long do I have to return an item?"}
    )
    assert answered.status_code == 200 and answered.json()["answered"] is True, answered.text
    declined = c.post(
        f"/v1/chatbots/{bot}/chat", headers=h, json={"message": "Who won the 1954 football world cup?"}
    )
    assert declined.status_code == 200 and declined.json()["answered"] is False, declined.text
    gen = c.post("/v1/chatbots", headers=h, json={"name": "Gen", "answerMode": "generative"}).json()["id"]
    c.post(
        f"/v1/chatbots/{gen}/sources", headers=h, json={"type": "text", "title": "Returns", "content": doc}
    )
    ingested(c)
    generated = c.post(
        f"/v1/chatbots/{gen}/chat", headers=h, json={"message": "How long do I have to return an item?"}
    )
    assert generated.status_code == 200, generated.text
    after = scrape(c)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("helpfaster_ingested_sources_total", result="ready") == 2
    assert moved("helpfaster_ingested_chunks_total") >= 2
    assert (
        moved("helpfaster_chat_turns_total", answer_mode="extractive", path="extractive", result="answered")
        == 1
    )
    assert (
        moved("helpfaster_chat_turns_total", answer_mode="extractive", path="fallback", result="declined")
        == 1
    )
    assert moved("helpfaster_chat_duration_seconds_count", answer_mode="extractive") == 2
    assert moved("helpfaster_chat_duration_seconds_count", answer_mode="generative") == 1
    assert moved("helpfaster_llm_generated_tokens_total") >= 1
    assert moved("helpfaster_llm_time_to_first_token_seconds_count") == 1
    assert value(after, "helpfaster_model_loaded", model="chat") == 1
    assert value(after, "helpfaster_model_loaded", model="embedding") == 1
    assert value(after, "helpfaster_inference_queue_depth") == 0
    assert value(after, "helpfaster_inference_max_sequences") >= 1
    assert value(after, "helpfaster_ingestion_backlog", status="queued") == 0


def _chat(
    c: TestClient, h: dict[str, str], bot: str, message: str, conv: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if conv:
        body["conversationId"] = conv
    r = c.post(f"/v1/chatbots/{bot}/chat", headers=h, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_export_streams_every_conversation_as_jsonl_and_csv_with_a_time_filter(served):
    c, h, _ = served
    bot = create_bot(c, h, "Export bot")
    doc = "# Returns\n\nYou can return any item within 30 days of delivery for a full refund.\n"
    c.post(
        f"/v1/chatbots/{bot}/sources", headers=h, json={"type": "text", "title": "Returns", "content": doc}
    )
    ingested(c)
    first = _chat(c, h, bot, '=HYPERLINK("http://evil") how long to return an item?')
    _chat(c, h, bot, "and is the refund full?", first["conversationId"])
    c.post(
        f"/v1/messages/{first['messageId']}/feedback", headers=h, json={"rating": "up", "comment": "@great"}
    )
    time.sleep(1.1)
    middle = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.1)
    second = _chat(c, h, bot, "Can I return a used item?")

    everything = c.get(f"/v1/chatbots/{bot}/conversations/export", headers=h)
    assert everything.status_code == 200
    assert everything.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in everything.headers["content-disposition"]
    convs = [json.loads(line) for line in everything.text.splitlines()]
    assert [x["id"] for x in convs] == [first["conversationId"], second["conversationId"]]  # oldest first
    full = c.get(f"/v1/conversations/{first['conversationId']}", headers=h).json()
    assert convs[0] == full  # the same shape as GET /v1/conversations/{id}
    reply = convs[0]["messages"][1]
    assert reply["role"] == "assistant" and reply["sources"] and reply["latencyMs"] is not None
    assert reply["feedback"]["rating"] == "up"

    later = c.get(f"/v1/chatbots/{bot}/conversations/export?from={middle}", headers=h)
    assert [json.loads(line)["id"] for line in later.text.splitlines()] == [second["conversationId"]]
    earlier = c.get(f"/v1/chatbots/{bot}/conversations/export?format=csv&to={middle}", headers=h)
    assert earlier.status_code == 200 and earlier.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(earlier.text)))
    assert {r["conversationId"] for r in rows} == {first["conversationId"]}
    assert [r["role"] for r in rows] == ["user", "assistant", "user", "assistant"]
    assert rows[0]["content"].startswith("'=HYPERLINK")  # neutralized formula
    assert rows[1]["feedbackRating"] == "up" and rows[1]["feedbackComment"] == "'@great"
    assert json.loads(rows[1]["sources"])[0]["title"] == "Returns"
    assert rows[1]["latencyMs"].isdigit() and rows[1]["answered"] == "True"


def test_export_checks_the_chatbot_and_its_parameters(served, tmp_path):
    c, h, bot = served
    missing = c.get("/v1/chatbots/bot_nope/conversations/export", headers=h)
    assert missing.status_code == 404
    assert_error_body(missing.json(), "not_found")
    for query in ("format=xml", "from=yesterday", "from=2026-02-02&to=2026-01-01"):
        bad = c.get(f"/v1/chatbots/{bot}/conversations/export?{query}", headers=h)
        assert bad.status_code == 400, (query, bad.text)
        assert_error_body(bad.json(), "bad_request")
    empty = c.get(
        f"/v1/chatbots/{bot}/conversations/export?format=csv&from=2001-01-01&to=2001-01-02", headers=h
    )
    assert empty.status_code == 200 and empty.text.splitlines() == [empty.text.splitlines()[0]]
