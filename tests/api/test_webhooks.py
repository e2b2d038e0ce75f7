"""Webhooks end to end: a real HTTP receiver on 127.0.0.1 verifies EVERY delivery it gets
with the `standardwebhooks` package, the reference Standard Webhooks verifier."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from support.helpers import assert_error_body, cli_create_org, make_settings

from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import open_database
from helpfaster_box.web.app import create_app
from helpfaster_box.webhooks import outbox, policy

WAIT_S = 15.0


# --- the receiver ------------------------------------------------------------------


@dataclass
class Receipt:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float
    verified_by: list[str] = field(default_factory=list)  # which registered secrets accept it

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """POST receiver; per path a scripted list of answers (status, headers, delay), then 200."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.secrets: dict[str, list[str]] = {}
        self.plans: dict[str, list[tuple[int, dict[str, str], float, bytes]]] = {}
        self.cond = threading.Condition()
        self.server: ThreadingHTTPServer | None = None
        self.port = 0

    def start(self, port: int = 0) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.handle(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def plan(
        self, path: str, *answers: int | tuple[int, dict[str, str]], delay: float = 0.0, body: bytes = b""
    ) -> None:
        self.plans[path] = [
            (a, {}, delay, body) if isinstance(a, int) else (a[0], a[1], delay, body) for a in answers
        ]

    def handle(self, req: BaseHTTPRequestHandler, body: bytes) -> None:
        path = req.path
        headers = {k.lower(): v for k, v in req.headers.items()}
        with self.cond:
            plan = self.plans.get(path) or []
            status, extra, delay, reply = plan.pop(0) if plan else (200, {}, 0.0, b"")
        if delay:
            time.sleep(delay)
        receipt = Receipt(path, headers, body, status, time.monotonic())
        for secret in self.secrets.get(path, []):
            try:
                Webhook(secret).verify(body, headers)
                receipt.verified_by.append(secret)
            except WebhookVerificationError:
                pass
        req.send_response(status)
        for k, v in extra.items():
            req.send_header(k, v)
        req.send_header("content-length", str(len(reply)))
        req.end_headers()
        req.wfile.write(reply)
        with self.cond:
            self.receipts.append(receipt)
            self.cond.notify_all()

    def got(self, path: str) -> list[Receipt]:
        with self.cond:
            return [r for r in self.receipts if r.path == path]

    def wait(
        self, path: str, n: int = 1, timeout: float = WAIT_S, status: int | None = None
    ) -> list[Receipt]:
        def matching() -> list[Receipt]:
            return [r for r in self.receipts if r.path == path and (status is None or r.status == status)]

        with self.cond:
            ok = self.cond.wait_for(lambda: len(matching()) >= n, timeout)
            assert ok, f"{path}: {len(matching())} of {n} deliveries after {timeout} s"
            return matching()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()
    # Every delivery that reached a path with a known secret verified with one of them.
    for receipt in r.receipts:
        if r.secrets.get(receipt.path):
            assert receipt.verified_by, f"unverifiable delivery to {receipt.path}: {receipt.headers}"


# --- the app -------------------------------------------------------------------------


def build_app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Backoff x0.001: retries after 5 ms, 0.3 s, 1.8 s ... instead of 5 s, 5 min, 30 min.
    return make_settings(
        tmp_path / "data", webhook_backoff_scale=0.001, webhook_timeout_s=5.0, webhook_allow_private=True
    )


@pytest.fixture
def client(settings: Settings, admin_key: str) -> Iterator[TestClient]:
    with TestClient(build_app(settings)) as c:
        yield c


def create_webhook(
    client: TestClient,
    headers: dict[str, str],
    receiver: Receiver,
    path: str,
    events: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = {"url": receiver.url(path), "events": events or list(outbox.EVENT_TYPES), **extra}
    made = client.post("/v1/webhooks", json=body, headers=headers)
    assert made.status_code == 201, made.text
    hook = made.json()
    receiver.secrets.setdefault(path, []).append(hook["secret"])
    return hook


def emit(
    client: TestClient,
    headers: dict[str, str],
    type: str,
    data: dict[str, Any],
    chatbot_id: str | None = None,
) -> str:
    """Emit a domain event as the chat/lead code does: inside a DB transaction."""
    org_id = client.get("/v1/organization", headers=headers).json()["id"]
    return client.app.state.db.write(
        lambda cur: outbox.emit(cur, org_id=org_id, chatbot_id=chatbot_id, type=type, data=data)
    )


def deliveries(client: TestClient, headers: dict[str, str], webhook_id: str) -> list[dict[str, Any]]:
    resp = client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def wait_until(fn: Any, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


# --- CRUD and validation -------------------------------------------------------------


def test_create_read_update_delete_and_secret_shown_once(client, admin, receiver):
    made = create_webhook(client, admin, receiver, "/crud", ["lead.captured"], description="CRM")
    assert made["id"].startswith("wh_") and made["secret"].startswith("whsec_")
    assert made["enabled"] is True and made["chatbotIds"] is None and made["events"] == ["lead.captured"]

    got = client.get(f"/v1/webhooks/{made['id']}", headers=admin).json()
    assert got["secret"] is None and got["url"] == receiver.url("/crud") and got["description"] == "CRM"

    bot = client.post("/v1/chatbots", json={"name": "Bot"}, headers=admin).json()
    patched = client.patch(
        f"/v1/webhooks/{made['id']}",
        json={"chatbotIds": [bot["id"]], "events": ["lead.captured", "message.sent", "lead.captured"]},
        headers=admin,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["chatbotIds"] == [bot["id"]]
    assert patched.json()["events"] == ["lead.captured", "message.sent"]
    assert patched.json()["description"] == "CRM"  # absent = unchanged
    cleared = client.patch(
        f"/v1/webhooks/{made['id']}", json={"chatbotIds": None, "description": None}, headers=admin
    ).json()
    assert cleared["chatbotIds"] is None and cleared["description"] is None and cleared["secret"] is None

    for _ in range(2):
        create_webhook(client, admin, receiver, "/other")
    first = client.get("/v1/webhooks?limit=2", headers=admin).json()
    assert len(first["data"]) == 2 and first["hasMore"] is True
    rest = client.get(f"/v1/webhooks?limit=2&cursor={first['nextCursor']}", headers=admin).json()
    assert rest["hasMore"] is False
    ids = [w["id"] for w in first["data"] + rest["data"]]
    assert len(set(ids)) == 3 and ids[-1] == made["id"]  # newest first

    assert client.delete(f"/v1/webhooks/{made['id']}", headers=admin).status_code == 204
    gone = client.get(f"/v1/webhooks/{made['id']}", headers=admin)
    assert gone.status_code == 404
    assert_error_body(gone.json(), "not_found")


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"url": "ftp://127.0.0.1/x", "events": ["lead.captured"]}, "http"),
        ({"url": "not a url", "events": ["lead.captured"]}, "http"),
        ({"url": "http://user:pw@127.0.0.1/x", "events": ["lead.captured"]}, "credentials"),
        ({"url": "http://127.0.0.1/x", "events": ["lead.eaten"]}, "lead.eaten"),
        ({"url": "http://127.0.0.1/x", "events": []}, "events"),
        ({"url": "http://127.0.0.1/x"}, "events"),
        ({"url": "http://127.0.0.1/x", "events": ["lead.captured"], "chatbotIds": ["bot_nope"]}, "bot_nope"),
        ({"url": "http://127.0.0.1/x", "events": ["lead.captured"], "secret": "mine"}, "secret"),
    ],
)
def test_invalid_webhooks_are_400(client, admin, body, needle):
    resp = client.post("/v1/webhooks", json=body, headers=admin)
    assert resp.status_code == 400, resp.text
    assert_error_body(resp.json(), "bad_request")
    assert needle in resp.text


def test_patch_validates_too(client, admin, receiver):
    hook = create_webhook(client, admin, receiver, "/p")
    for body in ({"url": "gopher://x"}, {"events": ["nope"]}, {"enabled": None}, {"url": None}):
        resp = client.patch(f"/v1/webhooks/{hook['id']}", json=body, headers=admin)
        assert resp.status_code == 400, (body, resp.text)
        assert_error_body(resp.json(), "bad_request")


def test_private_addresses_refused_when_the_setting_is_off(tmp_path, admin_key):
    strict = make_settings(tmp_path / "data", webhook_allow_private=False)
    admin = {"x-api-key": admin_key}
    with TestClient(build_app(strict)) as client:
        for url in (
            "http://127.0.0.1:9/hook",
            "http://localhost/hook",
            "https://10.1.2.3/hook",
            "http://169.254.169.254/latest",
            "http://[::1]/hook",
            "http://[::ffff:192.168.0.1]/x",
        ):
            resp = client.post("/v1/webhooks", json={"url": url, "events": ["lead.captured"]}, headers=admin)
            assert resp.status_code == 400, (url, resp.text)
            assert "webhook_allow_private" in resp.json()["message"]
        public = client.post(
            "/v1/webhooks",
            json={"url": "https://93.184.216.34/hook", "events": ["lead.captured"]},
            headers=admin,
        )
        assert public.status_code == 201, public.text


def test_member_keys_may_not_manage_webhooks(client, admin):
    member = {"x-api-key": client.post("/v1/api-keys", json={"role": "member"}, headers=admin).json()["key"]}
    for method, path in [
        ("GET", "/v1/webhooks"),
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhooks/wh_x"),
        ("POST", "/v1/webhooks/wh_x/test"),
        ("POST", "/v1/webhook-deliveries/dlv_x/retry"),
    ]:
        body = {"url": "http://127.0.0.1/x", "events": ["lead.captured"]} if method == "POST" else None
        resp = client.request(method, path, json=body, headers=member)
        assert resp.status_code == 403, (method, path, resp.text)
        assert_error_body(resp.json(), "forbidden")


def test_another_orgs_webhooks_are_404(settings, admin_key, receiver):
    org_b = cli_create_org(settings, "org-b")
    admin = {"x-api-key": admin_key}
    with TestClient(build_app(settings)) as client:
        theirs = create_webhook(client, org_b.admin, receiver, "/b")
        test = client.post(f"/v1/webhooks/{theirs['id']}/test", headers=org_b.admin).json()
        receiver.wait("/b")
        wid, did = theirs["id"], test["id"]
        for method, path, body in [
            ("GET", f"/v1/webhooks/{wid}", None),
            ("PATCH", f"/v1/webhooks/{wid}", {"description": "x"}),
            ("DELETE", f"/v1/webhooks/{wid}", None),
            ("POST", f"/v1/webhooks/{wid}/test", None),
            ("POST", f"/v1/webhooks/{wid}/rotate-secret", None),
            ("GET", f"/v1/webhooks/{wid}/deliveries", None),
            ("GET", f"/v1/webhook-deliveries/{did}", None),
            ("POST", f"/v1/webhook-deliveries/{did}/retry", None),
        ]:
            resp = client.request(method, path, json=body, headers=admin)
            assert resp.status_code == 404, (method, path, resp.text)
            assert_error_body(resp.json(), "not_found")
            assert wid not in resp.text
        assert client.get("/v1/webhooks", headers=admin).json()["data"] == []
        # An event in our org never reaches their endpoint.
        emit(client, admin, "lead.captured", {"id": "lead_1"})
        assert client.app.state.webhooks.wait_idle(WAIT_S)
        assert len(receiver.got("/b")) == 1
        assert client.get(f"/v1/webhooks/{wid}", headers=org_b.admin).json()["description"] is None


# --- delivery --------------------------------------------------------------------------


def test_test_event_arrives_signed_and_is_logged(client, admin, receiver):
    hook = create_webhook(client, admin, receiver, "/test", ["lead.captured"])
    sent = client.post(f"/v1/webhooks/{hook['id']}/test", headers=admin)
    assert sent.status_code == 202, sent.text
    delivery = sent.json()
    assert delivery["id"].startswith("dlv_") and delivery["eventType"] == "webhook.test"
    assert delivery["status"] in ("pending", "delivering", "succeeded")

    (got,) = receiver.wait("/test")
    payload = Webhook(hook["secret"]).verify(got.body, got.headers)
    assert payload["type"] == "webhook.test" and payload["id"] == delivery["eventId"]
    assert got.headers["webhook-id"] == delivery["eventId"]
    assert payload["data"]["webhookId"] == hook["id"]
    assert datetime.fromisoformat(payload["createdAt"])
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60

    log = wait_until(lambda: [d for d in deliveries(client, admin, hook["id"]) if d["status"] == "succeeded"])
    (entry,) = log
    assert entry["id"] == delivery["id"] and entry["nextAttemptAt"] is None
    (attempt,) = entry["attempts"]
    assert attempt["statusCode"] == 200 and attempt["error"] is None and attempt["latencyMs"] >= 0
    assert (
        client.get(f"/v1/webhook-deliveries/{delivery['id']}", headers=admin).json()["status"] == "succeeded"
    )


def test_all_four_events_arrive_with_their_payloads_and_filters_apply(client, admin, receiver):
    bot_a = client.post("/v1/chatbots", json={"name": "A"}, headers=admin).json()["id"]
    bot_b = client.post("/v1/chatbots", json={"name": "B"}, headers=admin).json()["id"]
    everything = create_webhook(client, admin, receiver, "/all")
    only_leads = create_webhook(client, admin, receiver, "/leads", ["lead.captured"])
    only_b = create_webhook(client, admin, receiver, "/bot-b", chatbotIds=[bot_b])
    sent = {}
    for type in outbox.EVENT_TYPES:
        data = {"id": f"obj_{type}", "chatbotId": bot_a, "note": "héllo ✓"}
        sent[emit(client, admin, type, data, chatbot_id=bot_a)] = (type, data)

    got = receiver.wait("/all", 4)
    assert {r.payload["id"]: (r.payload["type"], r.payload["data"]) for r in got} == sent
    (lead,) = receiver.wait("/leads")
    assert lead.payload["type"] == "lead.captured"
    assert client.app.state.webhooks.wait_idle(WAIT_S)
    assert receiver.got("/bot-b") == []
    assert len(receiver.got("/leads")) == 1
    assert deliveries(client, admin, only_b["id"]) == []
    assert {d["eventType"] for d in deliveries(client, admin, everything["id"])} == set(outbox.EVENT_TYPES)
    assert len(deliveries(client, admin, only_leads["id"])) == 1


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(client, admin, receiver):
    receiver.plan("/flaky", 500, (503, {"content-type": "text/plain"}), body=b"x" * 5000)
    hook = create_webhook(client, admin, receiver, "/flaky")
    event_id = emit(client, admin, "conversation.created", {"id": "conv_1"})

    got = receiver.wait("/flaky", 3)
    assert [r.status for r in got] == [500, 503, 200]
    assert {r.headers["webhook-id"] for r in got} == {event_id}  # stable across retries
    assert len({r.body for r in got}) == 1

    (entry,) = wait_until(
        lambda: [d for d in deliveries(client, admin, hook["id"]) if d["status"] == "succeeded"]
    )
    assert [a["statusCode"] for a in entry["attempts"]] == [500, 503, 200]
    assert [a["attempt"] for a in entry["attempts"]] == [1, 2, 3]
    assert entry["attempts"][0]["error"].startswith("HTTP 500")
    # The receiver's 5,000-byte answer is not reflected beyond a short excerpt.
    assert all(len(a["error"] or "") <= 300 for a in entry["attempts"])
    assert client.get(f"/v1/webhooks/{hook['id']}", headers=admin).json()["consecutiveFailures"] == 0


def test_retry_after_is_honoured_when_later_than_the_schedule(client, admin, receiver):
    receiver.plan("/busy", (429, {"Retry-After": "1"}))
    create_webhook(client, admin, receiver, "/busy")
    emit(client, admin, "message.sent", {"id": "msg_1", "role": "user"})
    first, second = receiver.wait("/busy", 2)
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.9  # the schedule alone would retry after ~5 ms


def test_connection_errors_are_retried_and_logged(client, admin, receiver):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    made = client.post(
        "/v1/webhooks", json={"url": f"http://127.0.0.1:{dead}/x", "events": ["lead.captured"]}, headers=admin
    ).json()
    emit(client, admin, "lead.captured", {"id": "lead_1"})
    entry = wait_until(lambda: [d for d in deliveries(client, admin, made["id"]) if len(d["attempts"]) >= 2])[
        0
    ]
    assert entry["status"] in ("pending", "delivering")
    # A private receiver's failure says only that there was no answer (not refused vs timeout).
    assert entry["attempts"][0]["statusCode"] is None and "no HTTP answer" in entry["attempts"][0]["error"]
    assert client.get(f"/v1/webhooks/{made['id']}", headers=admin).json()["consecutiveFailures"] >= 2


def test_secret_rotation_old_and_new_verifiers_both_accept(client, admin, receiver):
    hook = create_webhook(client, admin, receiver, "/rot")
    rotated = client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=admin)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != hook["secret"]
    receiver.secrets["/rot"].append(new_secret)
    expires = datetime.fromisoformat(rotated.json()["previousSecretExpiresAt"])
    assert 23.9 * 3600 < expires.timestamp() - time.time() <= 24 * 3600
    assert client.get(f"/v1/webhooks/{hook['id']}", headers=admin).json()["secret"] is None

    emit(client, admin, "conversation.escalated", {"id": "conv_1", "status": "escalated"})
    (got,) = receiver.wait("/rot")
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    old_view = Webhook(hook["secret"]).verify(got.body, got.headers)
    new_view = Webhook(new_secret).verify(got.body, got.headers)
    assert old_view == new_view and old_view["type"] == "conversation.escalated"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(got.body, got.headers)


def test_410_gone_disables_the_endpoint_until_re_enabled(client, admin, receiver):
    receiver.plan("/gone", 410)
    hook = create_webhook(client, admin, receiver, "/gone")
    emit(client, admin, "lead.captured", {"id": "lead_1"})
    receiver.wait("/gone", status=410)

    got = wait_until(
        lambda: (
            (w := client.get(f"/v1/webhooks/{hook['id']}", headers=admin).json()) and not w["enabled"] and w
        )
    )
    assert "410" in got["disabledReason"] and got["disabledAt"]
    (entry,) = deliveries(client, admin, hook["id"])
    assert entry["status"] == "failed" and entry["attempts"][0]["statusCode"] == 410

    emit(client, admin, "lead.captured", {"id": "lead_2"})  # not queued for a disabled endpoint
    assert len(deliveries(client, admin, hook["id"])) == 1
    test = client.post(f"/v1/webhooks/{hook['id']}/test", headers=admin)
    assert test.status_code == 409 and "disabled" in test.json()["message"]
    retry = client.post(f"/v1/webhook-deliveries/{entry['id']}/retry", headers=admin)
    assert retry.status_code == 409

    back = client.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": True}, headers=admin).json()
    assert back["enabled"] is True and back["disabledReason"] is None
    assert client.post(f"/v1/webhook-deliveries/{entry['id']}/retry", headers=admin).status_code == 202
    again = receiver.wait("/gone", status=200)[0]
    assert again.payload["data"] == {"id": "lead_1"}


def test_sustained_failure_disables_the_endpoint(client, admin, receiver, monkeypatch):
    # Production: 20 consecutive failures and no success for 24 h; shrunk here.
    monkeypatch.setattr(policy, "DISABLE_AFTER_FAILURES", 3)
    monkeypatch.setattr(policy, "DISABLE_AFTER_QUIET", timedelta(0))
    receiver.plan("/down", *[500] * 10)
    hook = create_webhook(client, admin, receiver, "/down")
    emit(client, admin, "lead.captured", {"id": "lead_1"})
    got = wait_until(
        lambda: (
            (w := client.get(f"/v1/webhooks/{hook['id']}", headers=admin).json()) and not w["enabled"] and w
        )
    )
    assert "3 consecutive failed attempts" in got["disabledReason"]
    (entry,) = deliveries(client, admin, hook["id"])
    assert entry["status"] == "failed" and [a["statusCode"] for a in entry["attempts"]] == [500] * 3


def test_manual_retry_redelivers_with_the_same_webhook_id(client, admin, receiver):
    hook = create_webhook(client, admin, receiver, "/re")
    delivery = client.post(f"/v1/webhooks/{hook['id']}/test", headers=admin).json()
    receiver.wait("/re")
    wait_until(
        lambda: (
            client.get(f"/v1/webhook-deliveries/{delivery['id']}", headers=admin).json()["status"]
            == "succeeded"
        )
    )
    retried = client.post(f"/v1/webhook-deliveries/{delivery['id']}/retry", headers=admin)
    assert retried.status_code == 202, retried.text
    first, second = receiver.wait("/re", 2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery["eventId"]
    assert client.post("/v1/webhook-deliveries/dlv_nope/retry", headers=admin).status_code == 404


def test_one_slow_receiver_does_not_delay_the_others(client, admin, receiver):
    receiver.plan("/slow", *[200] * 12, delay=2.0)
    create_webhook(client, admin, receiver, "/slow", ["message.sent"])
    for i in range(12):
        emit(client, admin, "message.sent", {"id": f"msg_{i}"})
    time.sleep(0.3)  # the slow endpoint's deliveries are now in flight
    create_webhook(client, admin, receiver, "/fast", ["lead.captured"])
    start = time.monotonic()
    emit(client, admin, "lead.captured", {"id": "lead_1"})
    receiver.wait("/fast", timeout=5)
    assert time.monotonic() - start < 1.5
    assert len(receiver.got("/slow")) < 12


# --- durability ------------------------------------------------------------------------


def test_pending_deliveries_survive_a_restart(settings, admin_key, receiver):
    admin = {"x-api-key": admin_key}
    port = receiver.port
    receiver.stop()  # the receiver is down while the event happens
    with TestClient(build_app(settings)) as client:
        hook = create_webhook(client, admin, receiver, "/later")
        event_id = emit(client, admin, "lead.captured", {"id": "lead_1"})
        wait_until(lambda: (d := deliveries(client, admin, hook["id"])) and d[0]["attempts"])
        (entry,) = deliveries(client, admin, hook["id"])
        assert entry["status"] in ("pending", "delivering") and entry["attempts"][0]["statusCode"] is None

    receiver.start(port)
    with TestClient(build_app(settings)) as client:
        (got,) = receiver.wait("/later")
        assert got.headers["webhook-id"] == event_id
        assert Webhook(hook["secret"]).verify(got.body, got.headers)["data"] == {"id": "lead_1"}
        wait_until(lambda: deliveries(client, admin, hook["id"])[0]["status"] == "succeeded")


def test_a_delivery_interrupted_by_a_crash_is_sent_after_restart(settings, admin_key, receiver):
    admin = {"x-api-key": admin_key}
    with TestClient(build_app(settings)) as client:
        hook = create_webhook(client, admin, receiver, "/crash")
        org_id = client.get("/v1/organization", headers=admin).json()["id"]
    # What a crash leaves behind: one event committed but never fanned out, and one whose
    # delivery was claimed (`delivering`) with no outcome recorded. Built directly: a crash
    # cannot be asked for over HTTP.
    db = open_database(settings.db_path)
    try:

        def crashed(cur: Any) -> tuple[str, str]:
            fresh, claimed = (
                outbox.emit(cur, org_id=org_id, chatbot_id=None, type="lead.captured", data={"id": lead})
                for lead in ("l1", "l2")
            )
            cur.execute("UPDATE webhook_events SET fanned_out = true WHERE id = ?", [claimed])
            outbox.insert_deliveries(cur, [(hook["id"], claimed, "delivering")])
            return fresh, claimed

        event_ids = db.write(crashed)
    finally:
        db.close()
    with TestClient(build_app(settings)) as client:
        got = receiver.wait("/crash", 2)
        assert sorted(r.headers["webhook-id"] for r in got) == sorted(event_ids)
        wait_until(lambda: [d["status"] for d in deliveries(client, admin, hook["id"])] == ["succeeded"] * 2)


def test_emit_rolls_back_with_the_change_that_caused_it(client, admin, receiver):
    hook = create_webhook(client, admin, receiver, "/rb")
    org_id = client.get("/v1/organization", headers=admin).json()["id"]

    def failing_change(cur: Any) -> None:
        outbox.emit(cur, org_id=org_id, chatbot_id=None, type="lead.captured", data={"id": "l"})
        raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        client.app.state.db.write(failing_change)
    with pytest.raises(ValueError):
        client.app.state.db.write(
            lambda cur: outbox.emit(cur, org_id=org_id, chatbot_id=None, type="lead.eaten", data={})
        )
    assert client.app.state.webhooks.wait_idle(WAIT_S)
    assert deliveries(client, admin, hook["id"]) == [] and receiver.got("/rb") == []


def test_deleting_a_chatbot_removes_it_from_webhook_filters(tmp_path):
    settings = make_settings(tmp_path / "data", webhook_allow_private=True)
    key = bootstrap(settings)
    with TestClient(build_app(settings)) as c:
        h = {"x-api-key": key}
        keep = c.post("/v1/chatbots", headers=h, json={"name": "keep"}).json()["id"]
        gone = c.post("/v1/chatbots", headers=h, json={"name": "gone"}).json()["id"]
        hook = c.post(
            "/v1/webhooks",
            headers=h,
            json={"url": "http://127.0.0.1:9/hook", "events": ["message.sent"], "chatbotIds": [keep, gone]},
        ).json()
        assert c.delete(f"/v1/chatbots/{gone}", headers=h).status_code == 204
        after = c.get(f"/v1/webhooks/{hook['id']}", headers=h).json()
        assert after["chatbotIds"] == [keep]
        # Resending the filter as read back is accepted (no reference to a deleted chatbot).
        r = c.patch(f"/v1/webhooks/{hook['id']}", headers=h, json={"chatbotIds": after["chatbotIds"]})
        assert r.status_code == 200, r.text
