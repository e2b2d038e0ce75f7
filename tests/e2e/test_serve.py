"""`helpfaster-box serve` as an operator runs it: a real process, real HTTP, a clean stop."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from support.receiver import Receiver
from support.server import KEY_RE, assert_clean_stop

pytestmark = pytest.mark.e2e
# The receivers of these tests listen on loopback, which webhooks refuse by default.
LOOPBACK_WEBHOOKS = {"HELPFASTER_WEBHOOK_ALLOW_PRIVATE": "true"}


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
        assert spec.status_code == 200 and spec.headers["content-type"].startswith("application/json")
        paths = spec.json()["paths"]
        assert "/v1/chatbots" in paths and "/v1/chatbots/{bot_id}" in paths and "/v1/api-keys" in paths

        docs = http.get("/v1/docs")
        assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
        page = docs.text
        assert not re.search(r"https?://", page, flags=re.IGNORECASE), re.findall(r"https?://\S{0,60}", page)[
            :5
        ]
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


def test_appliance_end_to_end_with_models_webhooks_and_a_crash(tmp_path, servers):
    """The whole product over real HTTP: knowledge in, a streamed cited answer out, signed
    webhooks delivered, and nothing lost when the process is killed without warning."""
    data_dir = tmp_path / "data"
    server = servers(data_dir, models=True, env=LOOPBACK_WEBHOOKS)
    key = server.wait_for_line(KEY_RE, timeout=60).group(0)
    health = server.wait_healthy(timeout=60)
    assert health["checks"]["chatModel"] == "ok" and health["checks"]["embeddingModel"] == "ok"
    receiver = Receiver()
    with httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=60) as http:
        hook = http.post(
            "/v1/webhooks",
            json={
                "url": receiver.url,
                "events": ["conversation.created", "message.sent", "lead.captured", "conversation.escalated"],
            },
        ).json()
        receiver.secret = hook["secret"]
        bot = http.post(
            "/v1/chatbots", json={"name": "E2E", "answerMode": "grounded", "leadCapture": {"enabled": True}}
        ).json()["id"]
        doc = b"# VPN access\n\nTo reach the intranet from home, start the VPN client and sign in with your badge number.\n"
        up = http.post(
            f"/v1/chatbots/{bot}/sources",
            files={"file": ("vpn.md", doc, "text/markdown")},
            data={"title": "VPN guide", "url": "http://wiki.intranet/vpn"},
        )
        assert up.status_code == 202, up.text
        deadline = time.monotonic() + 120
        while http.get(f"/v1/sources/{up.json()['id']}").json()["status"] != "ready":
            assert time.monotonic() < deadline, "ingestion did not finish"
            time.sleep(0.2)

        events: list[str] = []
        final = None
        with http.stream(
            "POST",
            f"/v1/chatbots/{bot}/chat",
            json={"message": "How do I get on the intranet from home? I'm ana@example.com", "stream": True},
        ) as r:
            assert r.status_code == 200
            import json

            for line in r.iter_lines():
                if line.startswith("event: "):
                    events.append(line[7:])
                elif line.startswith("data: ") and events and events[-1] == "done":
                    final = json.loads(line[6:])
        assert events[-1] == "done" and final is not None
        assert final["sources"][0]["title"] == "VPN guide"
        assert final["sources"][0]["url"].startswith("http://wiki.intranet/vpn")
        conv = http.get(f"/v1/conversations/{final['conversationId']}").json()
        assert conv["messages"][-1]["content"] == final["reply"]

        deadline = time.monotonic() + 30
        while len(receiver.events) < 4:  # conversation.created, lead.captured, 2x message.sent
            assert time.monotonic() < deadline, receiver.types()
            time.sleep(0.1)
        assert receiver.bad == []
        assert sorted(receiver.types()) == [
            "conversation.created",
            "lead.captured",
            "message.sent",
            "message.sent",
        ]
        roles = sorted(e["data"]["role"] for e in receiver.events if e["type"] == "message.sent")
        assert roles == ["assistant", "user"]

    server.kill()  # SIGKILL: no shutdown hooks, no checkpoint
    again = servers(data_dir, models=True, env=LOOPBACK_WEBHOOKS)
    again.wait_healthy(timeout=60)
    with httpx.Client(base_url=again.url, headers={"x-api-key": key}, timeout=60) as http:
        conv2 = http.get(f"/v1/conversations/{final['conversationId']}").json()
        assert [m["id"] for m in conv2["messages"]] == [m["id"] for m in conv["messages"]]
        hits = http.post(f"/v1/chatbots/{bot}/search", json={"query": "badge number VPN", "k": 1}).json()[
            "data"
        ]
        assert hits and hits[0]["title"] == "VPN guide"
    assert_clean_stop(again, data_dir)
