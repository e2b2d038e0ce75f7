"""Helpers for the knowledge API tests: models-loaded settings, uploads, documents.

Documents are built here or by the parser tests' generators (a real PDF, a real docx,
noisy HTML); data goes in through the public API, never into tables.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from helpfaster_box.settings import Settings
from support.documents import NOISY_HTML, make_docx, make_pdf
from support.helpers import make_settings

__all__ = [
    "NOISY_HTML",
    "add_json",
    "create_bot",
    "ingested",
    "make_docx",
    "make_heavy_docx",
    "make_pdf",
    "make_zip_bomb_docx",
    "models_settings",
    "search",
    "upload",
]

IDLE_TIMEOUT_S = 120.0  # a loaded 2-core machine; a healthy run takes a few seconds


def models_settings(data_dir: Path | str, **overrides: Any) -> Settings:
    """Settings with the real models loaded, and a rate limit tests never reach."""
    return make_settings(data_dir, load_models=True, rate_limit_scale=1_000_000, **overrides)


def create_bot(client: TestClient, headers: dict[str, str], name: str = "Docs bot") -> str:
    resp = client.post("/v1/chatbots", json={"name": name}, headers=headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def upload(
    client: TestClient,
    headers: dict[str, str],
    bot_id: str,
    filename: str,
    data: bytes,
    content_type: str = "application/octet-stream",
    **form: str,
) -> Any:
    """POST a multipart document; returns the response."""
    return client.post(
        f"/v1/chatbots/{bot_id}/sources",
        files={"file": (filename, data, content_type)},
        data=form or None,
        headers=headers,
    )


def add_json(client: TestClient, headers: dict[str, str], bot_id: str, spec: dict[str, Any]) -> Any:
    return client.post(f"/v1/chatbots/{bot_id}/sources", json=spec, headers=headers)


def ingested(client: TestClient) -> None:
    """Wait until the background worker has processed everything submitted so far."""
    assert client.app.state.knowledge.wait_idle(IDLE_TIMEOUT_S), "ingestion did not finish"


def search(
    client: TestClient, headers: dict[str, str], bot_id: str, query: str, k: int = 5
) -> list[dict[str, Any]]:
    resp = client.post(f"/v1/chatbots/{bot_id}/search", json={"query": query, "k": k}, headers=headers)
    assert resp.status_code == 200, resp.text
    hits = resp.json()["data"]
    assert len(hits) <= k
    return list(hits)


def make_zip_bomb_docx(megabytes: int = 40) -> bytes:
    """A valid docx plus one member of zeros that deflates ~1000:1 (40 MB -> ~40 KB)."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(make_docx())) as src,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        with dst.open("word/media/image1.png", "w") as member:
            for _ in range(megabytes):
                member.write(bytes(1 << 20))
    return buffer.getvalue()


def make_heavy_docx(paragraphs: int = 20_000, seed: int = 7) -> bytes:
    """A valid docx whose document.xml is large and only ~5x compressible, so it passes
    the zip-bomb checks: python-docx takes minutes on 100,000 such paragraphs (355 s
    measured), ~20 s on the default 20,000, while memory grows."""
    import random

    rnd = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
    src = zipfile.ZipFile(io.BytesIO(make_docx()))
    head = src.read("word/document.xml").decode().partition("<w:body>")[0]
    body = "".join(
        "<w:p><w:r><w:t>"
        + " ".join(f"{rnd.choice(words)}{rnd.randrange(1000)}" for _ in range(12))
        + "</w:t></w:r></w:p>"
        for _ in range(paragraphs)
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "word/document.xml":
                data = f"{head}<w:body>{body}<w:sectPr/></w:body></w:document>".encode()
            dst.writestr(info.filename, data)
    return out.getvalue()
