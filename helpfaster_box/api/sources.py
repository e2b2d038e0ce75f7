"""Knowledge sources (upload, list, read, delete) and retrieval without generation."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.datastructures import UploadFile
from litestar.params import Parameter
from litestar.response import Response
from msgspec import Meta

from ..errors import ApiError, bad_request, not_found
from ..knowledge.fetch import FetchError, check_url
from ..store import chatbots as bots_q
from ..store import sources as src_q
from ..store.db import Database
from ..store.ids import iso, new_id
from .auth import AuthContext
from .chatbots import load_chatbot
from .common import Cursor, Limit, Out, Page, make_page

Title = Annotated[str, Meta(min_length=1, max_length=500)]
Url = Annotated[str, Meta(min_length=1, max_length=2000)]


class TextSource(msgspec.Struct, tag="text", tag_field="type", forbid_unknown_fields=True):
    title: Title
    content: Annotated[str, Meta(min_length=1)]
    url: Url | None = None


class QASource(msgspec.Struct, tag="qa", tag_field="type", forbid_unknown_fields=True):
    question: Annotated[str, Meta(min_length=1, max_length=2000)]
    answer: Annotated[str, Meta(min_length=1, max_length=20_000)]
    title: Title | None = None
    url: Url | None = None


class UrlSource(msgspec.Struct, tag="url", tag_field="type", forbid_unknown_fields=True):
    url: Url
    title: Title | None = None


JsonSource = TextSource | QASource | UrlSource


class SourceOut(Out):
    id: str
    chatbot_id: str
    type: str
    format: str | None
    title: str | None
    url: str | None
    filename: str | None
    size_bytes: int
    status: str
    error: str | None
    chunk_count: int
    created_at: str
    updated_at: str


def source_out(row: dict[str, Any]) -> SourceOut:
    return SourceOut(
        id=row["id"], chatbot_id=row["chatbot_id"], type=row["type"], format=row["format"],
        title=row["title"], url=row["url"], filename=row["filename"], size_bytes=row["size_bytes"],
        status=row["status"], error=row["error"], chunk_count=row["chunk_count"],
        created_at=iso(row["created_at"]), updated_at=iso(row["updated_at"]),
    )


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    query: Annotated[str, Meta(min_length=1, max_length=2000)]
    k: Annotated[int, Meta(ge=1, le=50)] = 5


class SearchHit(Out):
    source_id: str
    title: str | None
    url: str | None
    section: str | None
    text: str
    score: float


def _knowledge(request: Request) -> Any:
    service = getattr(request.app.state, "knowledge", None)
    if service is None:
        raise ApiError(503, "Knowledge is unavailable: the embedding model is not loaded.")
    return service


async def _from_json(request: Request, settings: Any) -> tuple[dict[str, Any], bytes | None]:
    try:
        spec = msgspec.json.decode(await request.body(), type=JsonSource)
    except msgspec.DecodeError as exc:
        raise bad_request(f"Invalid source: {exc}") from None
    if isinstance(spec, TextSource):
        data = spec.content.encode("utf-8")
        # No content type: markdown or plain text is told from the content itself.
        fields = {"type": "text", "title": spec.title, "url": spec.url}
        return fields, data
    if isinstance(spec, QASource):
        data = f"# {spec.question.strip()}\n\n{spec.answer.strip()}\n".encode()
        fields = {"type": "qa", "title": spec.title or spec.question[:200], "url": spec.url,
                  "filename": "qa.md", "content_type": "text/markdown"}
        return fields, data
    try:
        check_url(spec.url, settings.url_allowed_hosts)
    except FetchError as exc:
        raise bad_request(str(exc), field="url") from None
    return {"type": "url", "title": spec.title, "url": spec.url}, None


async def _from_multipart(request: Request) -> tuple[dict[str, Any], bytes]:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise bad_request("Send the document as a multipart field named 'file'.", field="file")
    data = await upload.read()
    if not data:
        raise bad_request("The uploaded file is empty.", field="file")
    fields: dict[str, Any] = {"type": "file", "filename": (upload.filename or "")[:255] or None,
                              "content_type": upload.content_type}
    for name, limit in (("title", 500), ("url", 2000)):
        value = form.get(name)
        if value is not None and not isinstance(value, str):
            raise bad_request(f"{name} must be a text field.", field=name)
        if value:
            if len(value) > limit:
                raise bad_request(f"{name} is longer than {limit} characters.", field=name)
            fields[name] = value
    return fields, data


async def add_source(request: Request, auth: AuthContext, db: Database, bot_id: str) -> Response[SourceOut]:
    """Add knowledge: a multipart `file` (pdf, docx, html, md, txt) with optional `title`
    and `url`, or JSON {"type": "text"|"qa"|"url", ...}. Ingestion runs in the background."""
    await load_chatbot(db, auth, bot_id)
    settings = request.app.state.settings
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: bytes | None
    if ctype == "multipart/form-data":
        fields, data = await _from_multipart(request)
    else:
        fields, data = await _from_json(request, settings)
        if data is not None and len(data) > settings.max_upload_bytes:
            raise ApiError(413, f"Content is larger than max_upload_bytes ({settings.max_upload_bytes}).")
    service = _knowledge(request)
    digest = hashlib.sha256(data if data is not None else fields["url"].encode()).hexdigest()
    source_id = new_id("src")
    if data is not None:
        await asyncio.to_thread(service.save_original, bot_id, source_id, data)

    def insert(cur: Any) -> tuple[dict[str, Any], bool]:
        if bots_q.get_chatbot(cur, auth.org_id, bot_id) is None:
            raise not_found("Chatbot")  # deleted while the upload arrived
        existing = src_q.find_duplicate(cur, bot_id, digest)
        if existing is not None:
            return existing, False
        row = src_q.create_source(
            cur,
            {"id": source_id, "org_id": auth.org_id, "chatbot_id": bot_id, "content_hash": digest,
             "size_bytes": len(data) if data is not None else 0, **fields},
        )
        return row, True

    try:
        row, created = await db.awrite(insert)
    except BaseException:
        service.upload_path(bot_id, source_id).unlink(missing_ok=True)
        raise
    if not created:
        # Same content again: nothing new to index; answer with the existing source.
        service.upload_path(bot_id, source_id).unlink(missing_ok=True)
        return Response(source_out(row), status_code=200)
    service.enqueue(source_id)
    return Response(source_out(row), status_code=202)


def add_source_handler(max_upload_bytes: int) -> Any:
    """The upload route, built per app: its body limit is a setting."""
    return post(
        "/chatbots/{bot_id:str}/sources", status_code=202, tags=["Sources"],
        request_max_body_size=max_upload_bytes, name="add_source",
    )(add_source)


class SourcesController(Controller):
    tags = ["Sources"]  # noqa: RUF012 - declared by Litestar's Controller

    @get("/chatbots/{bot_id:str}/sources")
    async def list_sources(
        self, auth: AuthContext, db: Database, bot_id: str, limit: Limit = 20, cursor: Cursor = None,
        status: Annotated[
            Literal["queued", "processing", "ready", "failed"] | None, Parameter(description="Only this status.")
        ] = None,
    ) -> Page[SourceOut]:
        await load_chatbot(db, auth, bot_id)
        rows, nxt = await db.aread(
            lambda cur: src_q.list_sources(cur, bot_id, limit=limit, cursor=cursor, status=status)
        )
        return make_page([source_out(r) for r in rows], nxt)

    @get("/sources/{source_id:str}")
    async def get_source(self, auth: AuthContext, db: Database, source_id: str) -> SourceOut:
        row = await db.aread(src_q.get_source, auth.org_id, source_id)
        if row is None:
            raise not_found("Source")
        return source_out(row)

    @delete("/sources/{source_id:str}", status_code=204)
    async def delete_source(self, request: Request, auth: AuthContext, db: Database, source_id: str) -> None:
        def remove(cur: Any) -> tuple[str, list[int]] | None:
            row = src_q.get_source(cur, auth.org_id, source_id)
            if row is None:
                return None
            return row["chatbot_id"], src_q.delete_source(cur, source_id)

        removed = await db.awrite(remove)
        if removed is None:
            raise not_found("Source")
        _knowledge(request).source_deleted(removed[0], source_id, removed[1])

    @post("/chatbots/{bot_id:str}/search", status_code=200)
    async def search(
        self, request: Request, auth: AuthContext, db: Database, bot_id: str, data: SearchRequest
    ) -> dict[str, list[SearchHit]]:
        await load_chatbot(db, auth, bot_id)
        hits = await asyncio.to_thread(_knowledge(request).search, bot_id, data.query, data.k)
        return {
            "data": [
                SearchHit(source_id=h.source_id, title=h.title, url=h.url, section=h.section,
                          text=h.text, score=round(h.score, 6))
                for h in hits
            ]
        }
