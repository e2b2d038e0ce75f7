"""Analytics with the real models: the summary counts what went in through the API, topics
recover generated themes with stable ids, gaps list what the bot could not answer, and a
person's answer becomes knowledge in one call.

Everything goes in through the API (chat, feedback, agent replies, escalation); expected
days are computed from the `createdAt`s the API returned. Answers are extractive (no
generation), so these turns cost an embedding each. Assertions are on structure, counts
and sources, never on prose.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import TestClient
from support.helpers import assert_error_body
from support.knowledge import ingested, models_settings
from support.questions import theme_questions

from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.web.app import create_app

DOCS = {
    "Returns policy": "# Returns\n\nYou can return any item within 30 days of delivery for a full refund.\n",
    "Shipping to Norway": "# Shipping to Norway\n\nDelivery to Norway takes 5 to 7 business days.\n",
}
UNKNOWN = "Do you sell gift cards for the holidays?"

Env = tuple[TestClient, dict[str, str]]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Iterator[Env]:
    settings = models_settings(
        tmp_path_factory.mktemp("analytics"), topics_refresh_minutes=0, webhook_allow_private=True
    )
    key = bootstrap(settings)
    with TestClient(create_app(settings), timeout=120) as c:
        yield c, {"x-api-key": key}


def _bot(c: TestClient, h: dict[str, str], docs: bool = True, **extra: Any) -> str:
    bot = c.post("/v1/chatbots", headers=h, json={"name": "Analytics", "answerMode": "extractive", **extra})
    assert bot.status_code == 201, bot.text
    bot_id = bot.json()["id"]
    for title, text in (DOCS if docs else {}).items():
        r = c.post(
            f"/v1/chatbots/{bot_id}/sources",
            headers=h,
            json={"type": "text", "title": title, "content": text},
        )
        assert r.status_code == 202, r.text
    ingested(c)
    return bot_id


def _chat(c: TestClient, h: dict[str, str], bot: str, message: str, **extra: Any) -> dict[str, Any]:
    r = c.post(f"/v1/chatbots/{bot}/chat", headers=h, json={"message": message, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def _summary(c: TestClient, h: dict[str, str], bot: str, **params: str) -> dict[str, Any]:
    r = c.get(f"/v1/chatbots/{bot}/analytics", headers=h, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _ts(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Hooks:
    """A loopback webhook receiver: the JSON bodies it was sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()
                with hooks.cond:
                    hooks.bodies.append(body)
                    hooks.cond.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, pred: Any, timeout: float = 20) -> dict[str, Any]:
        with self.cond:
            assert self.cond.wait_for(lambda: any(pred(b) for b in self.bodies), timeout), self.bodies
            return next(b for b in self.bodies if pred(b))


# --- the summary ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def traffic(env: Env) -> dict[str, Any]:
    """One chatbot's known traffic: 3 conversations of 2 visitors (Ann twice, one lead), an
    escalation, an agent reply, feedback up and down."""
    c, h = env
    bot = _bot(c, h, leadCapture={"enabled": True})
    a1 = _chat(c, h, bot, "How many days do I have to return an item?", visitor={"email": "Ann@Example.com"})
    a2 = _chat(c, h, bot, UNKNOWN, visitor={"email": "ann@example.com", "name": "Ann"})
    b1 = _chat(c, h, bot, "I want to talk to a human please")
    agent = c.post(
        f"/v1/conversations/{b1['conversationId']}/messages", headers=h, json={"content": "Hi, Bob here."}
    )
    assert agent.status_code == 201, agent.text
    for msg, rating in ((a1, "up"), (a2, "down")):
        r = c.post(f"/v1/messages/{msg['messageId']}/feedback", headers=h, json={"rating": rating})
        assert r.status_code == 200, r.text
    convs = [c.get(f"/v1/conversations/{x['conversationId']}", headers=h).json() for x in (a1, a2, b1)]
    return {"bot": bot, "replies": (a1, a2, b1), "convs": convs}


def test_summary_counts_what_went_in_through_the_api(env, traffic):
    c, h = env
    a1, a2, b1 = traffic["replies"]
    assert a1["answered"] and not a2["answered"] and b1["escalated"]
    s = _summary(c, h, traffic["bot"])
    assert s["conversations"] == 3 and s["uniqueVisitors"] == 2  # Ann is one lead
    assert s["messages"] == {"visitor": 3, "bot": 3, "agent": 1}
    assert s["leads"] == 1 and s["escalations"] == 1
    assert s["answeredRate"] == pytest.approx(1 / 3, abs=1e-3)
    assert s["feedback"] == {"up": 1, "down": 1} and s["satisfactionRate"] == 0.5
    assert s["avgMessagesPerConversation"] == pytest.approx(7 / 3, abs=0.01)  # 2, 2 and 3 messages
    assert s["latencyMs"]["p50"] is not None and s["latencyMs"]["p95"] >= s["latencyMs"]["p50"]
    assert s["ttftMs"]["p50"] is None  # extractive: nothing generated
    assert len(s["daily"]) == 30 and s["timezone"] == "UTC"
    for key in ("conversations", "leads", "escalations", "uniqueVisitors"):
        assert sum(d[key] for d in s["daily"]) == s[key], key
    assert sum(d["messages"]["agent"] for d in s["daily"]) == 1


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu"])
def test_daily_series_puts_each_row_on_its_local_day(env, traffic, tz):
    """+14 h and -11 h: at any hour one of them is on another date than UTC."""
    c, h = env
    zone = ZoneInfo(tz)
    messages = [m for conv in traffic["convs"] for m in conv["messages"]]
    expected: collections.Counter[str] = collections.Counter(
        _ts(m["createdAt"]).astimezone(zone).date().isoformat() for m in messages if m["role"] == "user"
    )
    s = _summary(c, h, traffic["bot"], timezone=tz)
    got = {d["date"]: d["messages"]["visitor"] for d in s["daily"] if d["messages"]["visitor"]}
    assert got == dict(expected)
    local_today = datetime.now(UTC).astimezone(zone).date().isoformat()
    assert s["daily"][-1]["date"] == local_today
    # a date-only from = to includes that whole local day
    day = next(iter(expected))
    one = _summary(c, h, traffic["bot"], timezone=tz, **{"from": day, "to": day})
    assert [d["date"] for d in one["daily"]] == [day] and one["messages"]["visitor"] == expected[day]


def test_from_is_inclusive_at_the_millisecond(env, traffic):
    c, h = env
    conv_b = traffic["convs"][2]
    first = _ts(conv_b["messages"][0]["createdAt"])  # b1's visitor message, after all of a's
    later = _summary(c, h, traffic["bot"], **{"from": _iso(first)})
    assert later["messages"] == {"visitor": 1, "bot": 1, "agent": 1} and later["conversations"] <= 1
    assert later["escalations"] == 1
    before = _summary(c, h, traffic["bot"], to=_iso(first - timedelta(milliseconds=1)))
    assert before["messages"]["visitor"] == 2 and before["escalations"] == 0


def test_an_empty_period_is_zeros_and_null_rates(env, traffic):
    c, h = env
    s = _summary(c, h, traffic["bot"], **{"from": "2020-02-01", "to": "2020-02-29"})
    assert s["conversations"] == s["leads"] == s["escalations"] == s["uniqueVisitors"] == 0
    assert s["messages"] == {"visitor": 0, "bot": 0, "agent": 0}
    assert s["answeredRate"] is None and s["satisfactionRate"] is None and s["latencyMs"]["p50"] is None
    assert len(s["daily"]) == 29 and all(d["conversations"] == 0 for d in s["daily"])


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-02-01", "to": "2026-01-01"},
        {"timezone": "Mars/Olympus_Mons"},
        {"from": "2020-01-01", "to": "2022-01-01"},
        {"from": "last tuesday"},
    ],
)
def test_bad_periods_are_400(env, traffic, params):
    c, h = env
    r = c.get(f"/v1/chatbots/{traffic['bot']}/analytics", headers=h, params=params)
    assert r.status_code == 400
    assert_error_body(r.json(), "bad_request")


# --- topics ----------------------------------------------------------------------------


def _refreshed(c: TestClient, h: dict[str, str], bot: str, after: str | None) -> dict[str, Any]:
    r = c.post(f"/v1/chatbots/{bot}/analytics/topics/refresh", headers=h)
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = c.get(f"/v1/chatbots/{bot}/analytics/topics", headers=h).json()
        if body["computedAt"] and body["computedAt"] != after:
            return body
        time.sleep(0.1)
    raise AssertionError("the refresh job did not run")


def test_topics_recover_four_themes_with_stable_ids(env):
    c, h = env
    bot = _bot(c, h, docs=False)
    empty = c.get(f"/v1/chatbots/{bot}/analytics/topics", headers=h).json()
    assert empty == {"computedAt": None, "data": []}
    none = _refreshed(c, h, bot, None)
    assert none["data"] == []  # no questions: an empty result, no error
    asked = theme_questions(10)
    theme_of = {}
    for theme, question in asked:
        theme_of[question] = theme
        _chat(c, h, bot, question)  # a new conversation each: no escalation streak
    first = _refreshed(c, h, bot, none["computedAt"])
    topics = first["data"]
    assert 4 <= len(topics) <= 6
    assert sum(t["messages"] for t in topics) == 40 and sum(t["share"] for t in topics) == pytest.approx(1)
    for theme in {t for t, _ in asked}:
        best = max(topics, key=lambda t: sum(theme_of[e] == theme for e in t["examples"]))
        assert theme in best["keywords"], (theme, best)
        assert best["messages"] >= 8 and all(theme_of[e] == theme for e in best["examples"])
        assert best["answeredRate"] == 0.0  # no knowledge: every one declined
        assert best["conversations"] == best["messages"]
    second = _refreshed(c, h, bot, first["computedAt"])
    assert {t["id"] for t in second["data"]} == {t["id"] for t in topics}
    old = c.get(f"/v1/chatbots/{bot}/analytics/topics", headers=h, params={"to": "2020-01-01"}).json()
    assert old["data"] == []  # counted over the period asked for


# --- people answer; gaps become knowledge ---------------------------------------------------


def test_an_escalated_conversation_waits_for_the_agent_until_handed_back(env):
    c, h = env
    bot = _bot(c, h)
    hooks = Hooks()
    hook = c.post("/v1/webhooks", headers=h, json={"url": hooks.url, "events": ["message.sent"]})
    assert hook.status_code == 201, hook.text
    first = _chat(c, h, bot, "Can I speak to a real person?")
    conv = first["conversationId"]
    assert first["escalated"]
    held = _chat(c, h, bot, "How many days do I have to return an item?", conversationId=conv)
    assert held["reply"] == "" and held["escalated"] and not held["answered"] and held["sources"] == []
    r = c.post(f"/v1/conversations/{conv}/messages", headers=h, json={"content": "30 days.", "author": "Bob"})
    assert r.status_code == 201 and r.json()["role"] == "agent" and r.json()["author"] == "Bob"
    event = hooks.wait_for(lambda b: b["data"]["id"] == r.json()["id"])
    assert event["type"] == "message.sent" and event["data"]["conversationId"] == conv
    roles = [
        (m["role"], m.get("author")) for m in c.get(f"/v1/conversations/{conv}", headers=h).json()["messages"]
    ]
    assert roles == [("user", None), ("assistant", None), ("user", None), ("agent", "Bob")]
    back = c.post(f"/v1/conversations/{conv}/resolve", headers=h, json={"handBack": True})
    assert back.status_code == 200 and back.json()["status"] == "open"
    again = _chat(c, h, bot, "How many days do I have to return an item?", conversationId=conv)
    assert again["answered"] and again["sources"][0]["title"] == "Returns policy"
    done = c.post(f"/v1/conversations/{conv}/resolve", headers=h)
    assert done.json()["status"] == "resolved" and done.json()["resolvedAt"]
    listed = c.get(f"/v1/chatbots/{bot}/conversations", headers=h, params={"status": "resolved"}).json()
    assert [x["id"] for x in listed["data"]] == [conv]
    assert c.post(f"/v1/conversations/{conv}/resolve", headers=h).status_code == 409
    assert c.post("/v1/conversations/conv_nope/messages", headers=h, json={"content": "x"}).status_code == 404
    hooks.server.shutdown()
    hooks.server.server_close()


def test_gaps_group_declined_and_thumbs_down_questions_and_resolve_into_knowledge(env):
    c, h = env
    bot = _bot(c, h, escalation={"afterUnanswered": 0})
    for text in (UNKNOWN, UNKNOWN.lower(), "Do you sell gift cards for the holidays??"):
        assert not _chat(c, h, bot, text)["answered"]
    liked = _chat(c, h, bot, "How long does delivery to Norway take?")
    assert liked["answered"]
    c.post(f"/v1/messages/{liked['messageId']}/feedback", headers=h, json={"rating": "down"})
    person = _chat(c, h, bot, "Do you sell gift cards for the holidays?")
    c.post(f"/v1/conversations/{person['conversationId']}/escalate", headers=h)
    c.post(
        f"/v1/conversations/{person['conversationId']}/messages",
        headers=h,
        json={"content": "Yes, gift cards are sold at every store counter.", "author": "Ann"},
    )
    page = c.get(f"/v1/chatbots/{bot}/analytics/gaps", headers=h).json()
    gaps = page["data"]
    assert [g["count"] for g in gaps] == [4, 1]
    top, down = gaps
    assert top["reasons"] == ["declined"]  # the escalated one was declined first
    assert top["answer"].startswith("Yes, gift cards") and top["answerAuthor"] == "Ann"
    assert person["conversationId"] in top["conversationIds"] and len(top["conversationIds"]) == 4
    assert down["reasons"] == ["thumbs_down"] and down["question"].startswith("How long")
    one = c.get(f"/v1/chatbots/{bot}/analytics/gaps", headers=h, params={"limit": 1}).json()
    assert one["hasMore"] and one["data"][0]["id"] == top["id"]
    rest = c.get(
        f"/v1/chatbots/{bot}/analytics/gaps", headers=h, params={"limit": 1, "cursor": one["nextCursor"]}
    ).json()
    assert [g["id"] for g in rest["data"]] == [down["id"]] and not rest["hasMore"]
    no_answer = c.post(f"/v1/chatbots/{bot}/analytics/gaps/{down['id']}/resolve", headers=h, json={})
    assert (
        no_answer.status_code == 400
        and c.post(f"/v1/chatbots/{bot}/analytics/gaps/gap_nope/resolve", headers=h).status_code == 404
    )

    resolved = c.post(f"/v1/chatbots/{bot}/analytics/gaps/{top['id']}/resolve", headers=h)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved" and resolved.json()["sourceId"].startswith("src_")
    ingested(c)
    source = c.get(f"/v1/sources/{resolved.json()['sourceId']}", headers=h).json()
    assert source["type"] == "qa" and source["status"] == "ready"
    answer = _chat(c, h, bot, UNKNOWN)
    assert answer["answered"] and answer["sources"][0]["title"] == source["title"]
    assert "gift cards" in answer["reply"].lower()
    again = c.post(f"/v1/chatbots/{bot}/analytics/gaps/{top['id']}/resolve", headers=h)
    assert again.status_code == 409
