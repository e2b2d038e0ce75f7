"""One `serve` with the real models shared by the e2e suites that only need a running box
(hostile uploads, load limits, the stateful fuzz): each starts ~8 s of model loading and
first-run bootstrap, so sharing it keeps them inside the CI budget. Each suite makes its
own chatbots; the settings below suit all of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from support.server import KEY_RE, Server

SHARED_ENV = {
    "HELPFASTER_RATE_LIMIT_SCALE": "100000000",
    "HELPFASTER_RATE_LIMIT_AUTH_FAILURES": "100000000",
    # Small on purpose: a 200-request burst must meet a full queue (503 overloaded).
    "HELPFASTER_LLM_MAX_SEQUENCES": "2",
    "HELPFASTER_LLM_QUEUE_SIZE": "8",
    "HELPFASTER_LLM_MAX_TOKENS": "16",  # generative chats (burst, fuzzer-made bots) stay short
}


@dataclass
class Box:
    server: Server
    key: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.key}


@pytest.fixture(scope="session")
def models_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    server = Server(tmp_path_factory.mktemp("box") / "data", models=True, env=SHARED_ENV)
    try:
        key = server.wait_for_line(KEY_RE, timeout=90).group(0)
        server.wait_healthy(timeout=90)
        yield Box(server, key)
    finally:
        server.kill()
