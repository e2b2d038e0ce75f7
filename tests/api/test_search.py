"""Retrieval through the API with the real embedding model: semantic and exact-term
queries against distractors, deletion, and the index across restarts, corruption and
`helpfaster-box reindex`.

One corpus is ingested once; every test that restarts or damages something works on
its own copy of that data directory.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from support.helpers import assert_error_body, run_cli
from support.knowledge import create_bot, ingested, models_settings, search, upload

from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.settings import Settings
from helpfaster_box.web.app import create_app

pytestmark = pytest.mark.models

ACCOUNT = """# Account access

## Regaining access to your account

If your sign-in credentials slip your mind, choose "Send recovery link" on the login screen.
We email you a one-time link that stays valid for 30 minutes; follow it and pick a new secret
phrase. For your safety, every other session is signed out once the new phrase is saved.

## Two-step verification

Turn on two-step verification under Profile > Security. Scan the QR code with an
authenticator app and type the six-digit code it shows. Keep the printed backup codes
somewhere safe: each of them works once if your phone is lost.

## Changing the email address on file

Open Profile > Contact details and enter the new address. We send a confirmation message to
both the old and the new address, and the change takes effect once you confirm it.
"""

SHIPPING = """# Shipping and delivery

## Delivery times

Orders leave our warehouse the next working day. Inside the country, parcels normally
arrive three to five business days after dispatch; remote islands can take a week longer.

## Tracking a parcel

As soon as the carrier scans your parcel, we email a tracking number. Enter it on the
carrier's website to see where the parcel is right now.

## Returns

Unused items can be sent back within 30 days. Print the prepaid label from your order page,
pack the item in its original box and drop it at any post office.
"""

BILLING = """# Billing

## Invoices

Invoices are issued on the first day of each month and can be downloaded as PDF from
Billing > Invoices. Your company's VAT number is printed on every invoice.

## Payment methods

We accept credit cards, SEPA direct debit and bank transfer. Cards are charged
automatically; bank transfers must reach us within 14 days of the invoice date.

## Refunds

If you cancel within the first 14 days, we refund the full amount to the original payment
method. Refunds take up to ten business days to appear on your statement.
"""

# Near-identical sections that only an exact code or path tells apart.
ERRORS = """# Sync agent error codes

## E-4470

The sync agent could not reach the server. Check the network connection and the proxy
settings, then restart the agent service.

## E-4471

The sync agent could not authenticate. The device token has expired; sign in again from the
tray icon to obtain a new token, then restart the agent service.

## E-4472

The sync agent ran out of room in its local cache. Free some disk space or move the cache
to a larger volume, then restart the agent service.

## E-4473

The sync agent found a file it is not allowed to read. Check the file permissions of the
synced folder, then restart the agent service.
"""

CONFIG = """# Sync agent configuration

## Proxy settings

Corporate proxies are configured in /opt/hfagent/conf.d/proxy.conf. Set the proxy host and
port, and list the hosts that must bypass the proxy. Restart the agent after editing the file.

## Logging

Log verbosity and rotation live in /opt/hfagent/conf.d/logging.conf. Raise the level to debug
only while you investigate a problem: debug logs grow quickly. Restart the agent after editing.

## Cache location

The location and size limit of the local cache are set in /opt/hfagent/conf.d/cache.conf.
Point it to a volume with enough free space. Restart the agent after editing the file.
"""

PRINTERS = """Printer troubleshooting

If a printer shows as offline, switch it off and on again and check that it is connected
to the office network, not to the guest network.

Paper jams: open the front cover, pull the jammed sheet out slowly in the direction of the
paper path, and close the cover. The printer resumes the job by itself.
"""

VPN = """# Remote access

## Connecting to the VPN

Install the VPN client from the software portal, start it and choose the gateway closest to
you. Sign in with your usual company account and approve the prompt on your phone.

## Slow connections

If the VPN is slow, pick another gateway and close large downloads. Video calls work better
without the VPN: they are routed directly anyway.
"""

DOCS = {
    "account.md": ACCOUNT,
    "shipping.md": SHIPPING,
    "billing.md": BILLING,
    "errors.md": ERRORS,
    "config.md": CONFIG,
    "printers.txt": PRINTERS,
    "vpn.md": VPN,
}

# query -> (file holding the answer, the answer's section)
QUERIES = {
    # Semantic: the answer is worded differently from the question.
    "I forgot my password, how do I get back into my account?": (
        "account.md",
        "Regaining access to your account",
    ),
    "How many days until my package gets here?": ("shipping.md", "Delivery times"),
    # Lexical: only the exact code / path separates the answer from its siblings.
    "What does E-4472 mean?": ("errors.md", "E-4472"),
    "How do I change /opt/hfagent/conf.d/cache.conf?": ("config.md", "Cache location"),
}
K = 5


# ------------------------------------------------------------------ the corpus, ingested once


@dataclass
class Corpus:
    data_dir: Path
    headers: dict[str, str]
    bot: str
    sources: dict[str, str]  # filename -> source id
    chunks: int


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    data_dir = tmp_path_factory.mktemp("corpus") / "data"
    settings = models_settings(data_dir)
    headers = {"x-api-key": bootstrap(settings)}
    with TestClient(create_app(settings)) as c:
        bot = create_bot(c, headers, "Helpdesk")
        sources = {}
        for name, text in DOCS.items():
            ctype = "text/markdown" if name.endswith(".md") else "text/plain"
            resp = upload(c, headers, bot, name, text.encode(), ctype)
            assert resp.status_code == 202, resp.text
            sources[name] = resp.json()["id"]
        ingested(c)
        listed = c.get(f"/v1/chatbots/{bot}/sources", headers=headers).json()["data"]
    assert {s["status"] for s in listed} == {"ready"}
    return Corpus(data_dir, headers, bot, sources, sum(s["chunkCount"] for s in listed))


def copy_of(corpus: Corpus, where: Path) -> Settings:
    """Settings for a private copy of the corpus's data directory (server stopped)."""
    shutil.copytree(corpus.data_dir, where / "data")
    return models_settings(where / "data")


def index_dir(settings: Settings, bot: str) -> Path:
    return settings.data_path / "indexes" / bot


def generation(settings: Settings, bot: str) -> str:
    """Changes whenever the index is written: tells a loaded index from a rebuilt one."""
    return str(json.loads((index_dir(settings, bot) / "meta.json").read_text())["generation"])


def results(client: TestClient, corpus: Corpus) -> dict[str, list[dict[str, Any]]]:
    return {q: search(client, corpus.headers, corpus.bot, q, K) for q in QUERIES}


@pytest.fixture(scope="module")
def live(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(copy_of(corpus, tmp_path_factory.mktemp("live")))) as c:
        yield c


@pytest.fixture(scope="module")
def baseline(live: TestClient, corpus: Corpus) -> dict[str, list[dict[str, Any]]]:
    return results(live, corpus)


# ------------------------------------------------------------------ retrieval quality


@pytest.mark.parametrize("query", list(QUERIES))
def test_search_finds_the_answering_passage(
    baseline: dict[str, list[dict[str, Any]]], corpus: Corpus, query: str
) -> None:
    filename, section = QUERIES[query]
    hits = baseline[query]
    assert len(hits) == K
    top = hits[0]
    assert top["sourceId"] == corpus.sources[filename], (query, hits)
    assert top["section"].endswith(section), (query, top)
    assert set(top) == {"sourceId", "title", "url", "section", "text", "score"}
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0


def test_exact_term_beats_its_near_identical_siblings(
    baseline: dict[str, list[dict[str, Any]]],
) -> None:
    hits = baseline["What does E-4472 mean?"]
    assert "E-4472" in hits[0]["section"] and "out of room" in hits[0]["text"]
    siblings = [h for h in hits[1:] if h["section"].rsplit("> ", 1)[-1].startswith("E-447")]
    assert siblings, hits  # the distractors are close enough to be retrieved at all ...
    assert all(hits[0]["score"] > 2 * h["score"] for h in siblings)  # ... and far behind


def test_search_validation(live: TestClient, corpus: Corpus) -> None:
    url, h = f"/v1/chatbots/{corpus.bot}/search", corpus.headers
    for body in (
        {"query": "x", "k": 0},
        {"query": "x", "k": 51},
        {"query": "x", "k": -3},
        {"query": "x", "k": 2.5},
        {"query": ""},
        {"query": None},
        {"k": 3},
        {"query": "q" * 2001},
        {"query": "x", "topK": 3},
        [],
        "refund",
    ):
        resp = live.post(url, json=body, headers=h)
        assert resp.status_code == 400, (body, resp.text)
        assert_error_body(resp.json(), "bad_request")
    resp = live.post(url, content=b"{not json", headers={**h, "content-type": "application/json"})
    assert resp.status_code == 400
    assert_error_body(resp.json(), "bad_request")
    assert live.post(url, json={"query": "x", "k": 0}, headers=h).json()["details"][0]["field"] == "k"
    assert len(search(live, h, corpus.bot, "refund", k=1)) == 1
    assert len(search(live, h, corpus.bot, "refund", k=50)) == corpus.chunks  # all there is
    assert len(search(live, h, corpus.bot, "refund")) == 5  # default k
    empty_bot = create_bot(live, h, "Empty")
    assert search(live, h, empty_bot, "refund") == []
    resp = live.post("/v1/chatbots/bot_doesnotexist/search", json={"query": "x"}, headers=h)
    assert resp.status_code == 404
    assert_error_body(resp.json(), "not_found")


# ------------------------------------------------------------------ deletion


def test_deleting_a_source_removes_its_chunks(
    corpus: Corpus, tmp_path: Path, baseline: dict[str, list[dict[str, Any]]]
) -> None:
    settings = copy_of(corpus, tmp_path)
    h, bot, gone = corpus.headers, corpus.bot, corpus.sources["account.md"]
    query = "I forgot my password, how do I get back into my account?"
    before_delete = tmp_path / "index-before-delete"
    shutil.copytree(index_dir(settings, bot), before_delete)
    with TestClient(create_app(settings)) as c:
        assert c.delete(f"/v1/sources/{gone}", headers=h).status_code == 204
        # At once: the rows are gone from the database even before the index catches up.
        assert gone not in [x["sourceId"] for x in search(c, h, bot, query, K)]
        ingested(c)
        hits = search(c, h, bot, query, K)
        assert len(hits) == K and gone not in [x["sourceId"] for x in hits]
        kept = [x for x in baseline[query] if x["sourceId"] != gone]
        assert [x["text"] for x in hits[: len(kept)]] == [x["text"] for x in kept]
        everything = search(c, h, bot, "account security sign in", k=50)
        assert len(everything) < corpus.chunks and gone not in [x["sourceId"] for x in everything]
        assert c.app.state.knowledge.check_indexes() == []  # the saved index matches the DB
        after = search(c, h, bot, query, K)
    # The index as it was before the delete (a crash before it was saved, a restored
    # backup) is out of step with the database: the next start rebuilds it.
    shutil.rmtree(index_dir(settings, bot))
    shutil.copytree(before_delete, index_dir(settings, bot))
    stale = generation(settings, bot)
    with TestClient(create_app(settings)) as c:
        assert generation(settings, bot) != stale
        rebuilt = search(c, h, bot, query, K)
    # Same passages in the same order; BM25 statistics may differ slightly, since the
    # live index keeps removed rows in them until it compacts.
    assert [(x["sourceId"], x["text"]) for x in rebuilt] == [(x["sourceId"], x["text"]) for x in after]
    assert [x["score"] for x in rebuilt] == pytest.approx([x["score"] for x in after], rel=0.05)


# ------------------------------------------------------------------ persistence


def test_restart_loads_the_saved_index(
    corpus: Corpus, tmp_path: Path, baseline: dict[str, list[dict[str, Any]]]
) -> None:
    settings = copy_of(corpus, tmp_path)
    saved = generation(settings, corpus.bot)
    for _ in range(2):
        with TestClient(create_app(settings)) as c:
            assert results(c, corpus) == baseline
            assert c.app.state.knowledge.check_indexes() == []
        assert generation(settings, corpus.bot) == saved  # loaded, never rebuilt or rewritten


def _flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "missing"])
def test_damaged_index_is_rebuilt_at_start(
    corpus: Corpus, tmp_path: Path, damage: str, baseline: dict[str, list[dict[str, Any]]]
) -> None:
    settings = copy_of(corpus, tmp_path)
    bot, directory = corpus.bot, index_dir(settings, corpus.bot)
    saved = generation(settings, bot)
    if damage == "flipped byte":
        _flip_middle_byte(next(directory.glob("dense.*.faiss")))
    elif damage == "truncated":
        ids = next(directory.glob("ids.*.npy"))
        ids.write_bytes(ids.read_bytes()[:-8])
    else:
        shutil.rmtree(directory)
    with TestClient(create_app(settings)) as c:
        assert generation(settings, bot) != saved
        assert results(c, corpus) == baseline
        knowledge = c.app.state.knowledge
        assert knowledge.check_indexes() == []
        # Damage while running is caught by the same check, which names the chatbot.
        _flip_middle_byte(next(directory.glob("tokens.*.npy")))
        assert knowledge.check_indexes() == [bot]
        assert knowledge.check_indexes() == []
        assert results(c, corpus) == baseline


def test_reindex_command_reproduces_the_results(
    corpus: Corpus, tmp_path: Path, baseline: dict[str, list[dict[str, Any]]], hold_database: Any
) -> None:
    settings = copy_of(corpus, tmp_path)
    bot = corpus.bot
    shutil.rmtree(settings.data_path / "indexes")
    out = run_cli(settings, "reindex").output
    assert f"{bot}: {corpus.chunks} chunks indexed" in out
    assert f"reindexed 1 chatbot(s), {corpus.chunks} chunks" in out
    rebuilt = generation(settings, bot)
    with TestClient(create_app(settings)) as c:
        assert results(c, corpus) == baseline
        assert c.app.state.knowledge.check_indexes() == []
    assert generation(settings, bot) == rebuilt  # the server took the CLI's index as is

    # Embedding every chunk again (after a model change) gives the same answers.
    out = run_cli(settings, "reindex", "--chatbot", bot, "--reembed").output
    assert f"reindexed 1 chatbot(s), {corpus.chunks} chunks" in out
    with TestClient(create_app(settings)) as c:
        again = results(c, corpus)
    for query, hits in baseline.items():
        assert [x["text"] for x in again[query][:1]] == [x["text"] for x in hits[:1]], query
        assert again[query][0]["score"] == pytest.approx(hits[0]["score"], rel=0.05)

    # Never behind a running server's back: the database is locked.
    holder = hold_database(settings.db_path)
    result = run_cli(settings, "reindex", ok=False)
    assert result.exit_code != 0 and "in use" in result.output
    holder.kill()
