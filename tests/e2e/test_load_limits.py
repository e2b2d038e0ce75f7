"""Load against a real `serve` with the real models: memory stays flat over many chats, and a
burst of 200 concurrent requests is answered (2xx) or refused (429, 503 `overloaded`) with
the standard body, each within the client's timeout, and the server is healthy afterwards.

- RSS: VmRSS of the serve pid after 100 extractive chats, and after 300 (CI, ~20 s;
  HELPFASTER_RSS_CHATS changes it) or 1,000 (`pytest -m slow tests/e2e/test_load_limits.py`),
  within 10%. The first 100 are the warm-up: first-use allocations of DuckDB, llama.cpp
  and faiss are not a leak. Each chat is a new conversation; the database grows as it should.
- Burst: 200 requests at once on 200 connections: 60 generative chats (llm_max_sequences 2,
  llm_queue_size 8 in tests/e2e/conftest.py, so most are 503 by design), 60 extractive
  chats and 80 reads (chatbot, sources, search, conversations). Statuses by kind, the
  slowest answer and RSS are printed (`-s`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
import pytest
from support.helpers import assert_error_body
from support.server import Server

pytestmark = [pytest.mark.e2e, pytest.mark.models]

CLIENT_TIMEOUT_S = 120.0  # "never hangs": every request has an answer by then
RSS_TOLERANCE = 0.10
RSS_CHATS = int(os.environ.get("HELPFASTER_RSS_CHATS", "300"))
DOCS = {
    "Shipping": "Orders ship within two business days. Delivery to Norway takes five to seven days.",
    "Returns": "Returns are accepted within 30 days of delivery with the original receipt.",
    "Hours": "The support desk is open Monday to Friday, nine to five, Central European Time.",
}
QUESTIONS = [
    "How long does delivery to Norway take?",
    "Can I return an item after 30 days?",
    "When is the support desk open?",
    "How fast do orders ship?",
]


@dataclass
class Live:
    server: Server
    key: str
    extractive: str
    generative: str
    source: str

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.key}

    def rss_mb(self) -> float:
        return psutil.Process(self.server.proc.pid).memory_info().rss / 2**20


@pytest.fixture(scope="module")
def live(models_box: Any) -> Live:
    with httpx.Client(base_url=models_box.url, headers=models_box.headers, timeout=60) as http:
        ext = http.post("/v1/chatbots", json={"name": "Extractive"}).json()["id"]
        gen = http.post(
            "/v1/chatbots", json={"name": "Generative", "answerMode": "generative", "maxTokens": 24}
        ).json()["id"]
        sources = [
            http.post(f"/v1/chatbots/{bot}/sources", json={"type": "text", "title": t, "content": c})
            for bot, docs in ((ext, DOCS), (gen, {"Shipping": DOCS["Shipping"]}))
            for t, c in docs.items()
        ]
        assert all(s.status_code == 202 for s in sources), [s.text for s in sources]
        deadline = time.monotonic() + 120
        while any(http.get(f"/v1/sources/{s.json()['id']}").json()["status"] != "ready" for s in sources):
            assert time.monotonic() < deadline, "sources never became ready"
            time.sleep(0.2)
    return Live(models_box.server, models_box.key, ext, gen, sources[0].json()["id"])


async def _chats(live: Live, bot: str, count: int, concurrency: int = 4) -> Counter[int]:
    statuses: Counter[int] = Counter()
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=live.server.url, headers=live.headers, timeout=60) as http:

        async def one(i: int) -> None:
            async with limit:
                resp = await http.post(f"/v1/chatbots/{bot}/chat", json={"message": QUESTIONS[i % 4]})
                statuses[resp.status_code] += 1

        await asyncio.gather(*(one(i) for i in range(count)))
    return statuses


def test_rss_after_many_chats_stays_within_ten_percent_of_rss_after_100(live: Live) -> None:
    started = time.monotonic()
    first = asyncio.run(_chats(live, live.extractive, 100))  # the first 100 warm everything up
    after_100 = live.rss_mb()
    more = asyncio.run(_chats(live, live.extractive, RSS_CHATS - 100))
    after_n = live.rss_mb()
    took = time.monotonic() - started
    print(
        f"\nrss: after 100 chats {after_100:.1f} MB, after {RSS_CHATS} {after_n:.1f} MB "
        f"({(after_n / after_100 - 1) * 100:+.1f}%), {RSS_CHATS} chats in {took:.1f} s"
    )
    assert set(first) == set(more) == {200}, (first, more)
    assert after_n <= after_100 * (1 + RSS_TOLERANCE), (after_100, after_n)


@pytest.mark.slow
def test_rss_after_1000_chats_stays_within_ten_percent_of_rss_after_100(live: Live) -> None:
    """The issue's own numbers, opt-in: 1,000 chats take ~75 s on 2 shared cores."""
    asyncio.run(_chats(live, live.extractive, 100))
    after_100 = live.rss_mb()
    statuses = asyncio.run(_chats(live, live.extractive, 900))
    after_1000 = live.rss_mb()
    print(
        f"\nrss: after 100 chats {after_100:.1f} MB, after 1000 {after_1000:.1f} MB "
        f"({(after_1000 / after_100 - 1) * 100:+.1f}%)"
    )
    assert set(statuses) == {200}, statuses
    assert after_1000 <= after_100 * (1 + RSS_TOLERANCE), (after_100, after_1000)


def _burst_requests(live: Live) -> list[tuple[str, str, dict[str, object] | None]]:
    chat = {"message": QUESTIONS[0]}
    reads: list[tuple[str, str, dict[str, object] | None]] = [
        ("GET", f"/v1/chatbots/{live.extractive}", None),
        ("GET", f"/v1/chatbots/{live.extractive}/sources", None),
        ("GET", f"/v1/sources/{live.source}", None),
        ("POST", f"/v1/chatbots/{live.extractive}/search", {"query": "returns"}),
        ("GET", f"/v1/chatbots/{live.extractive}/conversations", None),
    ]
    requests = [("POST", f"/v1/chatbots/{live.generative}/chat", chat) for _ in range(60)]
    requests += [("POST", f"/v1/chatbots/{live.extractive}/chat", chat) for _ in range(60)]
    requests += [reads[i % len(reads)] for i in range(80)]
    return requests


async def _burst(live: Live) -> list[tuple[str, int, float, dict[str, object]]]:
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=live.server.url, headers=live.headers, timeout=CLIENT_TIMEOUT_S, limits=limits
    ) as http:

        async def one(
            method: str, path: str, body: dict[str, object] | None
        ) -> tuple[str, int, float, dict[str, object]]:
            start = time.monotonic()
            resp = await http.request(method, path, json=body)
            kind = "gen-chat" if live.generative in path and "chat" in path else path.rsplit("/", 1)[-1]
            return kind, resp.status_code, time.monotonic() - start, resp.json()

        return await asyncio.gather(*(one(*r) for r in _burst_requests(live)))


def test_a_burst_of_200_concurrent_requests_is_answered_or_refused_never_hangs(live: Live) -> None:
    rss_before = live.rss_mb()
    results = asyncio.run(_burst(live))  # a hang is an httpx timeout here, failing the test
    statuses = Counter(status for _, status, _, _ in results)
    by_kind = Counter(f"{kind}:{status}" for kind, status, _, _ in results)
    slowest = max(latency for _, _, latency, _ in results)
    print(
        f"\nburst: {dict(statuses)} {dict(by_kind)} slowest {slowest:.1f} s, rss {rss_before:.0f} -> {live.rss_mb():.0f} MB"
    )
    assert len(results) == 200
    assert set(statuses) <= {200, 429, 503}, statuses
    for _, status, _, body in results:
        if status == 503:
            assert_error_body(body, "overloaded")
        elif status == 429:
            assert_error_body(body, "rate_limited")
    assert statuses[200] >= 140, statuses  # every read and extractive chat, some generative
    assert slowest < CLIENT_TIMEOUT_S
    # Healthy afterwards: it answers, a generative chat gets its turn again, no traceback.
    with httpx.Client(base_url=live.server.url, headers=live.headers, timeout=60) as http:
        assert http.get("/v1/health").json()["status"] == "ok"
        again = http.post(f"/v1/chatbots/{live.generative}/chat", json={"message": QUESTIONS[1]})
        assert again.status_code == 200, again.text
    assert live.server.proc.poll() is None
    assert "Traceback" not in "".join(live.server.stderr)
