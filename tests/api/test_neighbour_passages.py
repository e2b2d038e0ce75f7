"""An extractive reply reads past the chunk that matched: the configuration example in
the chunk after the sentence describing the task (compose.NEIGHBOUR_PENALTY), with that
chunk's snippet in the sources. Real models, a real DuckDB file, structure only."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from support.knowledge import add_json, ingested

from helpfaster_box.chat import compose
from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.settings import load_settings
from helpfaster_box.web.app import create_app

pytestmark = pytest.mark.models

# Long enough that the configuration example starts the page's second chunk, whose
# other half (log rotation) keeps its cosine to the question under the relevance floor.
GUIDE = (
    "# Serving pages over HTTPS\n\n"
    "HTTPS encrypts the traffic between the browser and the web server, so nobody on the network "
    "can read or change the pages and forms your visitors send. To switch it on, the server needs "
    "a certificate and the private key that belongs to it. A certificate authority signs the "
    "certificate; for a test machine a self-signed one is enough, but browsers will warn about it. "
    "Keep the key file readable by root only: whoever holds it can impersonate your site. "
    "The certificate file holds the public part and may be shared freely. When the certificate "
    "expires, replace both files and reload the server; visitors see an error until you do. "
    "Chains of intermediate certificates go into the same file, after the site's own certificate, "
    "so that every browser can follow the chain up to a root it trusts. "
    "Most authorities send the chain along with the certificate in one bundle.\n\n"
    "You should now have two files, server.key and server.crt. These can be used as follows in "
    "the server configuration:\n\n"
    "```\nSSLEngine on\nSSLCertificateFile /etc/ssl/server.crt\nSSLCertificateKeyFile /etc/ssl/server.key\n```\n\n"
    "Log files grow every day. The rotation job compresses last week's access log and deletes logs "
    "older than a month, and the error log is rotated the same way. Disk usage reports are mailed "
    "to the administrators every Monday morning, with the largest directories listed first.\n"
)
OTHER = {
    "Backups": "Backups run every night at two. The backup job copies the databases and the home "
    "directories to the storage server and keeps thirty days of copies.",
    "Printers": "Printers on every floor accept jobs from the office network. A job waits in the "
    "queue until you badge at the printer, and unclaimed jobs are deleted after a day.",
}
QUESTION = "What do I put in the config to switch on https with my certificate files?"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    settings = load_settings(None, {"data_dir": str(tmp_path_factory.mktemp("around"))}, environ={})
    key = bootstrap(settings)
    with TestClient(create_app(settings), timeout=120) as c:
        h = {"x-api-key": key}
        bot = c.post("/v1/chatbots", headers=h, json={"name": "Ops", "answerMode": "extractive"}).json()["id"]
        for title, text in {"Web server": GUIDE, **OTHER}.items():
            r = add_json(c, h, bot, {"type": "text", "title": title, "content": text})
            assert r.status_code == 202, r.text
        ingested(c)
        yield c, h, bot


def _chat(c: TestClient, h: dict[str, str], bot: str) -> dict:
    r = c.post(f"/v1/chatbots/{bot}/chat", headers=h, json={"message": QUESTION})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_guide_is_two_chunks_and_only_the_first_passes_the_relevance_gate(env):
    c, _, bot = env
    chat, knowledge = c.app.state.chat, c.app.state.knowledge
    hits, _ = chat._retrieve(bot, QUESTION, [])
    relevant = chat._relevant(hits)
    assert [h.title for h in relevant] == ["Web server"]
    assert "SSLCertificateFile" not in relevant[0].text
    assert relevant[0].position == 0
    around = knowledge.neighbours(relevant)
    assert [(i, h.position, h.source_id) for i, h in around] == [(0, 1, relevant[0].source_id)]
    assert "SSLCertificateFile" in around[0][1].text and around[0][1].dense == relevant[0].dense
    # a hit's neighbour that is a hit itself is not read twice
    both = [relevant[0], around[0][1]]
    assert knowledge.neighbours(both) == []


def test_the_reply_quotes_the_example_in_the_next_chunk_and_its_snippet_holds_it(env):
    c, h, bot = env
    body = _chat(c, h, bot)
    assert body["answered"] is True
    assert "SSLCertificateFile /etc/ssl/server.crt" in body["reply"]
    assert [s["title"] for s in body["sources"]] == ["Web server"]
    snippets = " ".join(re.sub(r"\s+", " ", s["snippet"].replace("…", "")) for s in body["sources"])
    # every sentence and block of the reply (its quotes are a blank line apart)
    for piece in re.split(r"\n\s*\n|(?<=[.!?])\s+", body["reply"]):
        piece = re.sub(r"\s+", " ", piece).strip()
        assert piece in snippets, (piece, body["sources"])


def test_without_neighbours_the_example_is_out_of_reach(env, monkeypatch):
    c, h, bot = env
    monkeypatch.setattr(compose, "NEIGHBOUR_PENALTY", None)
    body = _chat(c, h, bot)
    assert "SSLCertificateFile" not in body["reply"]
