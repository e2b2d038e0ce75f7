"""Knowledge sources through the API, with the real embedding model: every document kind
is ingested and searchable, hostile inputs end `failed` with a reason, limits, URL
sources from an allowed intranet host, de-duplication, cross-org isolation, paging."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from litestar.testing import TestClient
from support.helpers import Org, assert_error_body, cli_create_org
from support.knowledge import (
    NOISY_HTML,
    add_json,
    create_bot,
    ingested,
    make_docx,
    make_pdf,
    make_zip_bomb_docx,
    models_settings,
    search,
    upload,
)

from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.settings import Settings
from helpfaster_box.web.app import create_app

pytestmark = pytest.mark.models

MAX_UPLOAD = 150_000
MAX_REQUEST = 2_048  # JSON bodies elsewhere; uploads get MAX_UPLOAD on their own route


# ------------------------------------------------------------------ an intranet web server

HELP_PAGE = b"""<!DOCTYPE html><html><head><title>Intranet: meeting rooms</title>
<script>var intranettracker = 1;</script></head><body>
<nav>intranetmenu home people rooms</nav>
<main><h1 id="booking">Booking a meeting room</h1>
<p>Meeting rooms on the fourth floor are booked through the Quillbooker calendar;
a booking holds the room for at most two hours.</p></main></body></html>"""


class _Intranet(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}

    def do_GET(self) -> None:
        status, headers, body = self.pages.get(self.path, (404, {}, b"not here"))
        self.send_response(status)
        for name, value in {"content-type": "text/html; charset=utf-8", **headers}.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def intranet() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Intranet)
    port = server.server_address[1]
    _Intranet.pages = {
        "/rooms.html": (200, {}, HELP_PAGE),
        # An allowed host must not be able to bounce the fetcher to a host not listed.
        "/moved": (302, {"location": f"http://localhost:{port}/rooms.html"}, b""),
        "/huge.html": (200, {}, b"<html><body><p>" + b"big " * 20_000 + b"</p></body></html>"),
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


# ------------------------------------------------------------------ one app for the module


@dataclass
class Env:
    client: TestClient
    settings: Settings
    admin: dict[str, str]
    org_b: Org
    bot: str  # org A's main chatbot


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, intranet: str) -> Iterator[Env]:
    settings = models_settings(
        tmp_path_factory.mktemp("sources") / "data",
        max_upload_bytes=MAX_UPLOAD,
        max_request_bytes=MAX_REQUEST,
        url_allowed_hosts=["127.0.0.1"],
        url_fetch_max_bytes=50_000,
        url_fetch_timeout_s=10,
    )
    admin = {"x-api-key": bootstrap(settings)}
    org_b = cli_create_org(settings, "org-b")
    with TestClient(create_app(settings)) as client:
        yield Env(client, settings, admin, org_b, create_bot(client, admin, "Main"))


def get_source(env: Env, source_id: str) -> dict[str, Any]:
    resp = env.client.get(f"/v1/sources/{source_id}", headers=env.admin)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def submitted(resp: Any) -> str:
    """A 202 with the new source, queued; returns its id."""
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert re.fullmatch(r"src_\w+", body["id"]) and body["status"] == "queued", body
    assert body["chunkCount"] == 0 and body["error"] is None
    return str(body["id"])


def hit_sources(hits: list[dict[str, Any]]) -> list[str]:
    return [h["sourceId"] for h in hits]


# ------------------------------------------------------------------ every kind ends ready

MARKDOWN = """# Field guide

Intro to the field guide for support staff.

## Installing the Plonkwise agent

Download the Plonkwise installer from the software portal and run it as an administrator.
The agent starts on its own after the first reboot.

## Uninstalling

Remove the agent from Settings > Apps; your synced files stay on the disk.
"""


def test_each_kind_is_ingested_and_searchable(env: Env) -> None:
    c, h, bot = env.client, env.admin, env.bot
    ids = {
        "pdf": submitted(
            upload(
                c,
                h,
                bot,
                "manual.pdf",
                make_pdf(
                    [
                        ["Resetting the Vorpalux router", "Hold the reset button for ten seconds."],
                        ["The status light turns green when the router is ready."],
                    ],
                    title="Router manual",
                ),
                "application/pdf",
            )
        ),
        "docx": submitted(
            upload(
                c,
                h,
                bot,
                "handbook.docx",
                make_docx(),
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            )
        ),
        "html": submitted(upload(c, h, bot, "reset.html", NOISY_HTML, "text/html")),
        "md": submitted(
            upload(
                c,
                h,
                bot,
                "guide.md",
                MARKDOWN.encode(),
                "text/markdown",
                url="https://docs.example/field-guide",
            )
        ),
        "txt": submitted(
            upload(
                c,
                h,
                bot,
                "notes.txt",
                b"Parking\n\nVisitors park in the Ostrander garage, level minus two.\n",
                "text/plain",
                title="Office notes",
            )
        ),
        "text": submitted(
            add_json(
                c,
                h,
                bot,
                {
                    "type": "text",
                    "title": "Coffee machine",
                    "content": "Descale the Brewtonic coffee machine every Monday with one sachet.",
                },
            )
        ),
        "qa": submitted(
            add_json(
                c,
                h,
                bot,
                {
                    "type": "qa",
                    "question": "Who waters the office plants?",
                    "answer": "The Greenhollow rota on the kitchen board says whose week it is.",
                },
            )
        ),
    }
    ingested(c)
    sources = {kind: get_source(env, sid) for kind, sid in ids.items()}
    for kind, src in sources.items():
        assert src["status"] == "ready", (kind, src)
        assert src["chunkCount"] > 0 and src["error"] is None, (kind, src)
        assert src["chatbotId"] == bot
    # The type comes from the content (md/txt also from the name); JSON text is sniffed.
    assert {k: s["format"] for k, s in sources.items()} == {
        "pdf": "pdf",
        "docx": "docx",
        "html": "html",
        "md": "md",
        "txt": "txt",
        "text": "txt",
        "qa": "md",
    }
    assert sources["pdf"]["title"] == "Router manual"  # from the PDF's metadata
    assert sources["docx"]["title"] == "Employee Handbook"  # its Title paragraph
    assert sources["html"]["title"] == "Reset password - ACME Help"  # <title>
    assert sources["txt"]["title"] == "Office notes"  # the form field wins
    assert sources["qa"]["title"] == "Who waters the office plants?"
    assert (
        sources["md"]["filename"] == "guide.md" and sources["md"]["url"] == "https://docs.example/field-guide"
    )
    assert {s["type"] for s in sources.values()} == {"file", "text", "qa"}

    expectations = [
        ("how do I reset the Vorpalux router", "pdf", "Hold the reset button"),
        ("how many vacation days does everyone get", "docx", "25 vacation days"),
        ("where do I turn on two-factor login", "html", "authenticator app"),
        ("install the Plonkwise agent", "md", "Plonkwise installer"),
        ("where can visitors park", "txt", "Ostrander garage"),
        ("how often should the Brewtonic be descaled", "text", "every Monday"),
        ("Greenhollow plant watering rota", "qa", "Greenhollow rota"),
    ]
    for query, kind, passage in expectations:
        hits = search(c, h, bot, query, k=3)
        assert hits and hits[0]["sourceId"] == ids[kind], (query, hits)
        assert passage in hits[0]["text"], (query, hits[0])
        assert isinstance(hits[0]["score"], float) and hits[0]["score"] > 0

    # Structure survives: heading paths as sections, page and heading anchors in urls.
    md_hit = search(c, h, bot, "install the Plonkwise agent", k=1)[0]
    assert md_hit["section"].endswith("Installing the Plonkwise agent")
    assert md_hit["url"] == "https://docs.example/field-guide#installing-the-plonkwise-agent"
    pdf_hit = search(c, h, bot, "Vorpalux status light green", k=1)[0]
    assert pdf_hit["sourceId"] == ids["pdf"] and pdf_hit["section"] == "Page 2"

    # HTML boilerplate was dropped before indexing: no chunk holds any of it.
    for noise in (
        "scriptnoise trackme",
        "navnoise",
        "stylenoise",
        "footernoise copyright",
        "cookienoise cookies",
        "headernoise logo",
        "asidenoise related links",
    ):
        for hit in search(c, h, bot, noise, k=10):
            assert noise.split()[0] not in hit["text"], (noise, hit)


# ------------------------------------------------------------------ hostile inputs


def test_a_source_seen_ready_is_searchable_at_once(env: Env) -> None:
    """`ready` is written only after the vectors are in the chatbot's index: a client that
    polls the status and searches the moment it reads `ready` finds the new text (the
    status used to turn `ready` in the chunks' transaction, before the index had them)."""
    words = ["quillmarsh", "brontevale", "cindercove", "duskmeadow", "emberhollow", "frostwick"]
    ids = {}
    for word in words:
        spec = {
            "type": "text",
            "title": f"Note {word}",
            "content": f"The {word} badge opens door {len(word)}.",
        }
        ids[word] = submitted(add_json(env.client, env.admin, env.bot, spec))
    for word, source_id in ids.items():
        for _ in range(2_000):
            if get_source(env, source_id)["status"] == "ready":
                break
        else:
            ingested(env.client)
        hits = search(env.client, env.admin, env.bot, f"{word} badge door", k=3)
        assert source_id in hit_sources(hits), (word, hits)


def test_hostile_inputs_fail_with_a_reason_and_never_stick(env: Env) -> None:
    c, h = env.client, env.admin
    bot = create_bot(c, h, "Hostile")
    pdf = make_pdf([["Some text on the page"]])
    cases = {
        "truncated pdf": (
            upload(c, h, bot, "broken.pdf", pdf[: len(pdf) // 2], "application/pdf"),
            r"PDF",
        ),
        "zip bomb": (upload(c, h, bot, "bomb.docx", make_zip_bomb_docx()), r"zip bomb"),
        "corrupt docx": (upload(c, h, bot, "half.docx", make_docx()[:3000]), r"Word document|zip"),
        "junk as txt": (
            upload(c, h, bot, "notes.txt", random.Random(7).randbytes(4096), "text/plain"),
            r"binary|not valid text",
        ),
        "png as txt": (upload(c, h, bot, "photo.txt", b"\x89PNG\r\n\x1a\n" + bytes(200)), r"image"),
        "whitespace text": (
            add_json(c, h, bot, {"type": "text", "title": "Blank", "content": " \n\t "}),
            r"empty",
        ),
        "html without text": (
            upload(
                c,
                h,
                bot,
                "menu.html",
                b"<html><body><nav>menu</nav><script>x=1</script></body></html>",
                "text/html",
            ),
            r"no readable text",
        ),
    }
    ids = {name: submitted(resp) for name, (resp, _) in cases.items()}
    # The worker survives all of them: a good document behind them is ingested.
    good = submitted(
        add_json(
            c,
            h,
            bot,
            {"type": "text", "title": "Fine", "content": "The Quarnby office opens at eight."},
        )
    )
    ingested(c)
    for name, (_, reason) in cases.items():
        src = get_source(env, ids[name])
        assert src["status"] == "failed", (name, src)
        assert src["chunkCount"] == 0, (name, src)
        error = src["error"]
        assert isinstance(error, str) and re.search(reason, error), (name, error)
        assert len(error) <= 500 and "Traceback" not in error and "\n" not in error, (name, error)
    assert get_source(env, good)["status"] == "ready"
    listed = c.get(f"/v1/chatbots/{bot}/sources?status=failed&limit=100", headers=h).json()["data"]
    assert {s["id"] for s in listed} == set(ids.values())
    assert c.get(f"/v1/chatbots/{bot}/sources?status=processing", headers=h).json()["data"] == []
    assert hit_sources(search(c, h, bot, "Some text on the page", k=10)) == [good]


def test_empty_and_malformed_submissions_are_400(env: Env) -> None:
    c, h, bot = env.client, env.admin, env.bot
    url = f"/v1/chatbots/{bot}/sources"
    before = c.get(f"{url}?limit=100", headers=h).json()["data"]

    resp = upload(c, h, bot, "empty.txt", b"", "text/plain")  # nothing to queue at all
    assert resp.status_code == 400
    assert_error_body(resp.json(), "bad_request")
    assert "empty" in resp.json()["message"] and resp.json()["details"][0]["field"] == "file"

    resp = c.post(url, files={"document": ("a.txt", b"hello", "text/plain")}, headers=h)
    assert resp.status_code == 400 and resp.json()["details"][0]["field"] == "file"
    resp = c.post(url, data={"file": "just a string"}, files={"x": ("a", b"b")}, headers=h)
    assert resp.status_code == 400 and resp.json()["details"][0]["field"] == "file"
    resp = upload(c, h, bot, "a.txt", b"hello", "text/plain", title="t" * 501)
    assert resp.status_code == 400 and resp.json()["details"][0]["field"] == "title"

    for body in (
        {"type": "text", "title": "Empty", "content": ""},
        {"type": "text", "content": "no title"},
        {"type": "text", "title": "T", "content": "x", "colour": "red"},
        {"type": "qa", "question": "Q?"},
        {"type": "pdf", "content": "x"},
        {"content": "no type"},
        {"type": "url"},
        ["not", "an", "object"],
    ):
        resp = c.post(url, json=body, headers=h)
        assert resp.status_code == 400, (body, resp.text)
        assert_error_body(resp.json(), "bad_request")
    resp = c.post(
        url, content=b'{"type": "text", "title":', headers={**h, "content-type": "application/json"}
    )
    assert resp.status_code == 400
    assert_error_body(resp.json(), "bad_request")
    assert c.get(f"{url}?limit=100", headers=h).json()["data"] == before  # nothing was created


def test_wrong_content_types_are_415(env: Env) -> None:
    c, h, bot = env.client, env.admin, env.bot
    url = f"/v1/chatbots/{bot}/sources"
    for ctype in (
        "text/plain",
        "application/pdf",
        "application/x-www-form-urlencoded",
        "text/markdown",
    ):
        resp = c.post(url, content=b"# Hello\n\nworld", headers={**h, "content-type": ctype})
        assert resp.status_code == 415, (ctype, resp.text)
        assert_error_body(resp.json(), "unsupported_media_type")
    resp = c.post(url, content=b"hello", headers=h)  # a body without any content type
    assert resp.status_code == 415
    # Multipart is for document uploads only.
    resp = c.post("/v1/chatbots", files={"file": ("a.txt", b"x")}, headers=h)
    assert resp.status_code == 415
    assert_error_body(resp.json(), "unsupported_media_type")


def test_size_limits(env: Env) -> None:
    c, h, bot = env.client, env.admin, env.bot
    url = f"/v1/chatbots/{bot}/sources"
    resp = upload(c, h, bot, "big.txt", b"word " * (MAX_UPLOAD // 5 + 100), "text/plain")
    assert resp.status_code == 413
    assert_error_body(resp.json(), "payload_too_large")
    resp = c.post(
        url,
        json={"type": "text", "title": "Big", "content": "word " * (MAX_UPLOAD // 5)},
        headers=h,
    )
    assert resp.status_code == 413
    assert_error_body(resp.json(), "payload_too_large")
    # Above the JSON body limit but under max_upload_bytes: uploads have their own limit.
    paragraph = "The Sandwell depot stocks spare chargers for every laptop model we use. "
    doc = ("# Depot\n\n" + "\n\n".join(f"Note {i}. {paragraph}" for i in range(40))).encode()
    assert MAX_REQUEST < len(doc) < MAX_UPLOAD
    sid = submitted(upload(c, h, bot, "depot.md", doc, "text/markdown"))
    # ... and the JSON limit still holds on other routes.
    resp = c.post(f"/v1/chatbots/{bot}/search", json={"query": "q " * MAX_REQUEST}, headers=h)
    assert resp.status_code == 413
    ingested(c)
    assert get_source(env, sid)["status"] == "ready"


# ------------------------------------------------------------------ URL sources


def test_url_source_from_an_allowed_host(env: Env, intranet: str) -> None:
    c, h = env.client, env.admin
    bot = create_bot(c, h, "Intranet")
    page = f"{intranet}/rooms.html"
    ok = submitted(add_json(c, h, bot, {"type": "url", "url": page}))
    moved = submitted(add_json(c, h, bot, {"type": "url", "url": f"{intranet}/moved"}))
    missing = submitted(add_json(c, h, bot, {"type": "url", "url": f"{intranet}/nope.html"}))
    huge = submitted(add_json(c, h, bot, {"type": "url", "url": f"{intranet}/huge.html"}))
    ingested(c)

    src = get_source(env, ok)
    assert src["status"] == "ready" and src["chunkCount"] > 0, src
    assert src["type"] == "url" and src["url"] == page and src["format"] == "html"
    assert src["title"] == "Intranet: meeting rooms"
    hits = search(c, h, bot, "how long can I keep a meeting room", k=3)
    assert hits[0]["sourceId"] == ok and "Quillbooker" in hits[0]["text"]
    assert hits[0]["url"] == f"{page}#booking"
    for hit in search(c, h, bot, "intranetmenu intranettracker", k=5):
        assert "intranetmenu" not in hit["text"] and "intranettracker" not in hit["text"]

    failures = {moved: r"localhost.*url_allowed_hosts", missing: r"HTTP 404", huge: r"larger than"}
    for sid, reason in failures.items():
        src = get_source(env, sid)
        assert src["status"] == "failed" and re.search(reason, src["error"]), src


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://localhost:{port}/rooms.html", "not in the `url_allowed_hosts`"),
        ("http://10.1.2.3/admin", "not in the `url_allowed_hosts`"),
        ("http://127.0.0.1.nip.io/", "not in the `url_allowed_hosts`"),
        ("file:///etc/passwd", "only http and https"),
        ("ftp://127.0.0.1/x", "only http and https"),
        ("not a url", "http"),
    ],
)
def test_url_source_from_other_hosts_is_refused_at_submit(
    env: Env, intranet: str, url: str, reason: str
) -> None:
    url = url.format(port=intranet.rsplit(":", 1)[1])
    resp = add_json(env.client, env.admin, env.bot, {"type": "url", "url": url})
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert_error_body(body, "bad_request")
    assert reason in body["message"] and body["details"][0]["field"] == "url", body


# ------------------------------------------------------------------ de-duplication


def test_same_content_again_returns_the_existing_source(env: Env) -> None:
    c, h = env.client, env.admin
    bot = create_bot(c, h, "Dedup")
    doc = b"# Badges\n\nLost badges are replaced at the Tillerby front desk for five euros.\n"
    first = submitted(upload(c, h, bot, "badges.md", doc, "text/markdown"))
    again = upload(c, h, bot, "badges-copy.md", doc, "text/markdown")  # still queued
    assert again.status_code == 200 and again.json()["id"] == first
    ingested(c)
    chunks = get_source(env, first)["chunkCount"]
    assert chunks > 0
    for resp in (
        upload(c, h, bot, "badges.md", doc, "text/markdown"),
        add_json(c, h, bot, {"type": "text", "title": "Same bytes", "content": doc.decode()}),
    ):
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == first and resp.json()["status"] == "ready"
    qa = {"type": "qa", "question": "Where is the Tillerby desk?", "answer": "On the ground floor."}
    qa_id = submitted(add_json(c, h, bot, qa))
    assert add_json(c, h, bot, qa).json()["id"] == qa_id
    ingested(c)

    listed = c.get(f"/v1/chatbots/{bot}/sources", headers=h).json()["data"]
    assert sorted(s["id"] for s in listed) == sorted([first, qa_id])
    assert get_source(env, first)["chunkCount"] == chunks
    hits = search(c, h, bot, "Tillerby front desk lost badge", k=10)
    texts = [x["text"] for x in hits if x["sourceId"] == first]
    assert len(texts) == chunks and len(set(texts)) == len(texts)  # each chunk once
    # Per chatbot: another chatbot gets its own copy; a deleted source can come back.
    other = create_bot(c, h, "Dedup 2")
    assert submitted(upload(c, h, other, "badges.md", doc, "text/markdown")) != first
    assert c.delete(f"/v1/sources/{first}", headers=h).status_code == 204
    assert submitted(upload(c, h, bot, "badges.md", doc, "text/markdown")) != first
    ingested(c)


# ------------------------------------------------------------------ isolation and paging


def test_another_org_sees_nothing(env: Env) -> None:
    c, h, b = env.client, env.admin, env.org_b.admin
    bot = create_bot(c, h, "Private")
    text = "The Marrowgate vault code is changed every quarter by facilities."
    sid = submitted(add_json(c, h, bot, {"type": "text", "title": "Vault", "content": text}))
    ingested(c)
    for method, path, kwargs in (
        ("GET", f"/v1/chatbots/{bot}/sources", {}),
        (
            "POST",
            f"/v1/chatbots/{bot}/sources",
            {"json": {"type": "text", "title": "x", "content": "y"}},
        ),
        ("POST", f"/v1/chatbots/{bot}/search", {"json": {"query": "vault code"}}),
        ("GET", f"/v1/sources/{sid}", {}),
        ("DELETE", f"/v1/sources/{sid}", {}),
    ):
        for headers in (b, env.org_b.member):
            resp = c.request(method, path, headers=headers, **kwargs)
            assert resp.status_code == 404, (method, path, resp.text)
            assert_error_body(resp.json(), "not_found")
            assert "Marrowgate" not in resp.text and sid not in resp.text
    assert get_source(env, sid)["status"] == "ready"  # B's delete did nothing
    assert hit_sources(search(c, h, bot, "Marrowgate vault code", k=1)) == [sid]
    # B's own copy of the same text is B's: no de-duplication across organizations.
    b_bot = create_bot(c, b, "B's bot")
    b_sid = submitted(add_json(c, b, b_bot, {"type": "text", "title": "Vault", "content": text}))
    ingested(c)
    assert b_sid != sid
    assert hit_sources(search(c, b, b_bot, "Marrowgate vault code", k=5)) == [b_sid]
    assert c.get(f"/v1/sources/{b_sid}", headers=h).status_code == 404


def test_source_pages_and_delete(env: Env) -> None:
    c, h = env.client, env.admin
    bot = create_bot(c, h, "Paging")
    made = [
        submitted(
            add_json(
                c,
                h,
                bot,
                {
                    "type": "qa",
                    "question": f"Question {i}?",
                    "answer": f"Answer number {i} about the Yarrowby kiosk.",
                },
            )
        )
        for i in range(5)
    ]
    url = f"/v1/chatbots/{bot}/sources"
    seen: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        resp = c.get(url, params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=h)
        assert resp.status_code == 200
        body = resp.json()
        assert len(body["data"]) <= 2 and body["hasMore"] == (body["nextCursor"] is not None)
        seen += body["data"]
        pages += 1
        cursor = body["nextCursor"]
        if not cursor:
            break
    assert pages == 3 and sorted(s["id"] for s in seen) == sorted(made)
    stamps = [(s["createdAt"], s["id"]) for s in seen]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    for bad in ({"limit": 0}, {"limit": 101}, {"cursor": "garbage!"}, {"status": "done"}):
        resp = c.get(url, params=bad, headers=h)
        assert resp.status_code == 400, (bad, resp.text)
        assert_error_body(resp.json(), "bad_request")

    ingested(c)
    assert len(c.get(url, params={"status": "ready"}, headers=h).json()["data"]) == 5
    gone = made[2]
    resp = c.delete(f"/v1/sources/{gone}", headers=h)
    assert resp.status_code == 204 and resp.content == b""
    assert c.get(f"/v1/sources/{gone}", headers=h).status_code == 404
    assert c.delete(f"/v1/sources/{gone}", headers=h).status_code == 404
    assert gone not in [s["id"] for s in c.get(url, headers=h).json()["data"]]
    assert gone not in hit_sources(search(c, h, bot, "Answer number 2 Yarrowby kiosk", k=10))
    assert c.get("/v1/sources/src_doesnotexist", headers=h).status_code == 404


# ------------------------------------------------------------------ restart resumes work


def test_queued_sources_resume_after_a_restart(tmp_path: Path) -> None:
    settings = models_settings(tmp_path / "data")
    h = {"x-api-key": bootstrap(settings)}
    docs = {
        name: f"The {name} room of the Brackenholt wing seats {seats} people."
        for name, seats in (("Alder", 4), ("Birch", 8), ("Cedar", 12))
    }
    with TestClient(create_app(settings)) as c:
        bot = create_bot(c, h, "Resume")
        # The worker stops, as if the server had been killed before it got to the backlog.
        c.app.state.knowledge.close()
        ids = [
            submitted(add_json(c, h, bot, {"type": "text", "title": t, "content": x}))
            for t, x in docs.items()
        ]
        assert {get_source_in(c, h, i)["status"] for i in ids} == {"queued"}
    with TestClient(create_app(settings)) as c:
        ingested(c)
        for sid in ids:
            src = get_source_in(c, h, sid)
            assert src["status"] == "ready" and src["chunkCount"] == 1, src
        assert hit_sources(search(c, h, bot, "How many people fit in the Birch room?", k=1)) == [ids[1]]


def get_source_in(client: TestClient, headers: dict[str, str], source_id: str) -> dict[str, Any]:
    resp = client.get(f"/v1/sources/{source_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())
