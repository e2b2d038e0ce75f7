"""Hostile documents as real uploads: multipart `POST /v1/chatbots/{id}/sources` to a real
`serve` with the real models. Each is refused at upload with a 4xx and the standard body, or
accepted (202) and then `failed` with a reason that says what was wrong (the billion-laughs
HTML page is the one that ends `ready`: HTML has no DTDs, the subset is dropped and its
entities are never expanded, so its "text" is the 6 characters `&lol9;`). Never a 500.

Memory: the server's RSS (VmRSS of the serve pid) may grow at most RSS_CEILING_MB over its
RSS after the first, normal ingestion, for every hostile upload; parsing happens in a
limited child process (knowledge/sandbox.py), so what a bomb allocates is the child's.
Afterwards the process is healthy and an ordinary source still ingests.

The parser-level cases are in tests/unit/test_parsers*.py; this is the same corpus end to end.
Run with `-s` to see one line per upload: status, outcome, seconds, RSS before/after.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from support.helpers import assert_error_body
from support.hostile import (
    billion_laughs_html,
    entity_bomb_docx,
    garbage_pdf,
    pdf_with_pages,
    truncated_pdf,
)
from support.knowledge import make_zip_bomb_docx
from support.server import Server

pytestmark = [pytest.mark.e2e, pytest.mark.models]

RSS_CEILING_MB = 300  # documented in README "Limits": growth of the server per hostile upload
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
OCTET = "application/octet-stream"


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    make: Callable[[], bytes]
    content_type: str
    status: int  # at upload
    outcome: str  # a regex: the source's error (failed), or "ready"


CASES = [
    Case("pdf-100k-pages", "manual.pdf", lambda: pdf_with_pages(100_000), "application/pdf", 202, r"100000 pages; the limit is 2000"),
    Case("xml-entity-bomb-docx", "lol.docx", entity_bomb_docx, DOCX, 202, r"declares a DTD.*entity bomb"),
    Case("zip-bomb-docx", "zip.docx", make_zip_bomb_docx, DOCX, 202, r"zip bomb"),
    Case("billion-laughs-html", "lol.html", billion_laughs_html, "text/html", 202, r"ready"),
    Case("png-named-pdf", "photo.pdf", lambda: b"\x89PNG\r\n\x1a\n" + bytes(4096), "application/pdf", 202, r"image \(PNG\)"),
    Case("text-named-docx", "notes.docx", lambda: b"Plain text, not a zip.\n", DOCX, 202, r"named or typed as a Word document"),
    Case("truncated-pdf", "cut.pdf", truncated_pdf, "application/pdf", 202, r"PDF could not be read"),
    Case("garbage-pdf", "junk.pdf", garbage_pdf, "application/pdf", 202, r"PDF could not be read"),
    Case("zero-bytes", "empty.txt", lambda: b"", "text/plain", 400, r"empty"),
    Case("path-traversal-name", "../../etc/passwd.txt", lambda: b"root:x:0:0 is not a secret here.\n", OCTET, 202, r"ready"),
]  # fmt: skip


@dataclass
class Uploads:
    server: Server
    http: httpx.Client
    bot: str
    rss_base: int
    rows: list[str]

    def rss(self) -> int:
        return int(psutil.Process(self.server.proc.pid).memory_info().rss)

    def upload(self, filename: str, data: bytes, ctype: str) -> httpx.Response:
        files = {"file": (filename, data, ctype)}
        return self.http.post(f"/v1/chatbots/{self.bot}/sources", files=files)

    def settle(self, source_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            src = self.http.get(f"/v1/sources/{source_id}").json()
            if src["status"] in ("ready", "failed"):
                return dict(src)
            time.sleep(0.1)
        raise AssertionError(f"{source_id} never settled")


@pytest.fixture(scope="module")
def box(models_box: Any) -> Iterator[Uploads]:
    with httpx.Client(base_url=models_box.url, headers=models_box.headers, timeout=60) as http:
        bot = http.post("/v1/chatbots", json={"name": "Hostile"}).json()["id"]
        box = Uploads(models_box.server, http, bot, 0, [])
        first = box.upload("hours.md", b"# Hours\n\nThe office opens at nine.\n", "text/markdown")
        assert box.settle(first.json()["id"])["status"] == "ready"
        box.rss_base = box.rss()
        yield box
        print("\n" + "\n".join(box.rows))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_hostile_upload_is_refused_or_fails_with_a_reason(box: Uploads, case: Case) -> None:
    data = case.make()
    before, started = box.rss(), time.monotonic()
    resp = box.upload(case.filename, data, case.content_type)
    assert resp.status_code == case.status, resp.text
    if resp.status_code >= 400:
        assert_error_body(resp.json(), "bad_request")
        assert re.search(case.outcome, resp.json()["message"]), resp.json()
        outcome = resp.json()["message"]
    else:
        src = box.settle(resp.json()["id"])
        outcome = src["status"] if case.outcome == "ready" else src["error"] or ""
        assert re.search(case.outcome, outcome), src
        if case.name == "billion-laughs-html":  # nothing was expanded
            assert src["chunkCount"] == 1, src
            hits = box.http.post(f"/v1/chatbots/{box.bot}/search", json={"query": "lol", "k": 5}).json()
            assert all("lollol" not in h["text"] for h in hits["data"]), hits
        if case.name == "path-traversal-name":
            assert src["filename"] == "passwd.txt", src
    after = box.rss()
    box.rows.append(
        f"{case.name:22} {len(data):>8} B  {resp.status_code}  {time.monotonic() - started:5.1f} s  "
        f"rss {before / 2**20:.0f} -> {after / 2**20:.0f} MB  {outcome[:70]}"
    )
    assert after - box.rss_base < RSS_CEILING_MB * 2**20, (box.rss_base, after)
    assert box.http.get("/v1/health").status_code == 200


def test_afterwards_the_server_is_healthy_and_ordinary_sources_ingest(box: Uploads) -> None:
    resp = box.upload("returns.md", b"# Returns\n\nReturns are accepted within 30 days.\n", "text/markdown")
    assert resp.status_code == 202, resp.text
    assert box.settle(resp.json()["id"])["status"] == "ready"
    hits = box.http.post(f"/v1/chatbots/{box.bot}/search", json={"query": "returns within 30 days"}).json()
    assert any("30 days" in h["text"] for h in hits["data"]), hits
    assert box.server.proc.poll() is None
    assert box.http.get("/v1/health").json()["status"] == "ok"
    stderr = "".join(box.server.stderr)
    assert "Traceback" not in stderr and " 500 " not in stderr, stderr[-3000:]


def test_uploaded_originals_stay_inside_the_data_dir(box: Uploads) -> None:
    """The traversal name was only a name: nothing was written outside uploads/<bot>/."""
    data_dir = Path(box.server.proc.args[-1])
    uploads = data_dir / "uploads" / box.bot
    names = [p.name for p in uploads.iterdir()]
    assert names and all(n.startswith("src_") for n in names), names
    assert not (data_dir.parent / "etc").exists()
