"""Knowledge sources: accept (hash, dedupe, keep the original, queue), list, read, delete,
and search. No HTTP here; the ingestion itself runs in `ingestion.KnowledgeService`."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

from helpfaster_box.chatbots import queries as bots_q
from helpfaster_box.errors import Conflict, Invalid, NotFound, TooLarge, Unavailable
from helpfaster_box.knowledge import queries as src_q
from helpfaster_box.knowledge.fetch import FetchError, check_url
from helpfaster_box.knowledge.ingestion import KnowledgeService
from helpfaster_box.knowledge.schemas import (
    JsonSource,
    QASource,
    SearchHit,
    SearchResults,
    SourceOut,
    TextSource,
)
from helpfaster_box.schemas import Page, make_page
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import Database
from helpfaster_box.store.ids import iso, new_id

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def running(knowledge: KnowledgeService | None) -> KnowledgeService:
    """The knowledge engine, or 503 `unavailable` when the embedding model is not loaded."""
    if knowledge is None:
        raise Unavailable("Knowledge is unavailable: the embedding model is not loaded.")
    return knowledge


def source_out(row: dict[str, Any]) -> SourceOut:
    return SourceOut(
        id=row["id"],
        chatbot_id=row["chatbot_id"],
        type=row["type"],
        format=row["format"],
        title=row["title"],
        url=row["url"],
        filename=row["filename"],
        size_bytes=row["size_bytes"],
        status=row["status"],
        error=row["error"],
        chunk_count=row["chunk_count"],
        created_at=iso(row["created_at"]),
        updated_at=iso(row["updated_at"]),
    )


def safe_filename(name: str | None) -> str | None:
    """The upload's name as a bare file name: directories (either slash), control
    characters and leading dots dropped, at most 255 characters. The original is stored by
    source id, never by this name; the name is still shown, exported and used to tell
    the format, so `../../etc/passwd.txt` is kept as `passwd.txt`."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = CONTROL.sub("", base).strip().lstrip(".").strip()
    return base[:255] or None


def from_json(spec: JsonSource, settings: Settings) -> tuple[dict[str, Any], bytes | None]:
    """The source row's fields and its content (None for a URL, fetched at ingestion)."""
    fields, data = _from_json(spec, settings)
    if spec.evaluate:
        fields["evaluate"] = True  # see KnowledgeService.on_ingested
    return fields, data


def _from_json(spec: JsonSource, settings: Settings) -> tuple[dict[str, Any], bytes | None]:
    if isinstance(spec, TextSource):
        # No content type: markdown or plain text is told from the content itself.
        data = spec.content.encode("utf-8")
        if len(data) > settings.max_upload_bytes:
            raise TooLarge(f"Content is larger than max_upload_bytes ({settings.max_upload_bytes}).")
        return {"type": "text", "title": spec.title, "url": spec.url}, data
    if isinstance(spec, QASource):
        data = f"# {spec.question.strip()}\n\n{spec.answer.strip()}\n".encode()
        fields = {
            "type": "qa",
            "title": spec.title or spec.question[:200],
            "url": spec.url,
            "filename": "qa.md",
            "content_type": "text/markdown",
        }
        return fields, data
    try:
        check_url(spec.url, settings.url_allowed_hosts)
    except FetchError as exc:
        raise Invalid(str(exc), field="url") from None
    return {"type": "url", "title": spec.title, "url": spec.url}, None


async def add(
    db: Database,
    knowledge: KnowledgeService,
    org_id: str,
    bot_id: str,
    fields: dict[str, Any],
    data: bytes | None,
) -> tuple[SourceOut, bool]:
    """Store a new source and queue its ingestion; the same content again returns the
    existing source. Returns (source, created). A chatbot holds at most
    max_sources_per_chatbot sources (409 above): each keeps its original on disk and its
    chunks in the index, so an unbounded count is unbounded disk and index memory."""
    digest = hashlib.sha256(data if data is not None else fields["url"].encode()).hexdigest()
    source_id = new_id("src")
    limit = knowledge.settings.max_sources_per_chatbot
    if data is not None:
        await asyncio.to_thread(knowledge.save_original, bot_id, source_id, data)

    def insert(cur: Any) -> tuple[dict[str, Any], bool]:
        if not bots_q.exists(cur, org_id, bot_id):
            raise NotFound.of("Chatbot")  # deleted while the upload arrived
        existing = src_q.find_duplicate(cur, bot_id, digest)
        if existing is not None:
            return existing, False
        if src_q.source_count(cur, bot_id) >= limit:
            raise Conflict(
                f"This chatbot already has {limit} sources, the most it may hold "
                "(max_sources_per_chatbot); delete some first."
            )
        row = src_q.create_source(
            cur,
            {
                "id": source_id,
                "org_id": org_id,
                "chatbot_id": bot_id,
                "content_hash": digest,
                "size_bytes": len(data) if data is not None else 0,
                **fields,
            },
        )
        return row, True

    try:
        row, created = await db.awrite(insert)
    except BaseException:
        knowledge.upload_path(bot_id, source_id).unlink(missing_ok=True)
        raise
    if not created:
        # Same content again: nothing new to index; answer with the existing source.
        knowledge.upload_path(bot_id, source_id).unlink(missing_ok=True)
        return source_out(row), False
    knowledge.enqueue(source_id, org_id)
    return source_out(row), True


async def list_page(
    db: Database, bot_id: str, *, limit: int, cursor: str | None, status: str | None
) -> Page[SourceOut]:
    rows, nxt = await db.aread(
        lambda cur: src_q.list_sources(cur, bot_id, limit=limit, cursor=cursor, status=status)
    )
    return make_page([source_out(r) for r in rows], nxt)


async def get(db: Database, org_id: str, source_id: str) -> SourceOut:
    row = await db.aread(src_q.get_source, org_id, source_id)
    if row is None:
        raise NotFound.of("Source")
    return source_out(row)


async def delete(db: Database, knowledge: KnowledgeService | None, org_id: str, source_id: str) -> None:
    def remove(cur: Any) -> tuple[str, list[int]] | None:
        row = src_q.get_source(cur, org_id, source_id)
        if row is None:
            return None
        return row["chatbot_id"], src_q.delete_source(cur, source_id)

    removed = await db.awrite(remove)
    if removed is None:
        raise NotFound.of("Source")
    running(knowledge).source_deleted(removed[0], source_id, removed[1])


async def search(knowledge: KnowledgeService, bot_id: str, query: str, k: int) -> SearchResults:
    hits = await asyncio.to_thread(knowledge.search, bot_id, query, k)
    return SearchResults(
        data=[
            SearchHit(
                source_id=h.source_id,
                title=h.title,
                url=h.url,
                section=h.section,
                text=h.text,
                score=round(h.score, 6),
            )
            for h in hits
        ]
    )
