"""Knowledge sources (upload, list, read, delete) and retrieval without generation."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, JSONBody, Parameter
from litestar.response import Response

from helpfaster_box.chatbots import service as chatbots
from helpfaster_box.errors import Invalid
from helpfaster_box.knowledge import service
from helpfaster_box.knowledge.schemas import JsonSource, SearchRequest, SearchResults, SourceOut
from helpfaster_box.schemas import Page
from helpfaster_box.web.deps import Auth, Config, Db, Knowledge
from helpfaster_box.web.params import Cursor, Limit

FORM_FIELD_LIMITS = (("title", 500), ("url", 2000))
# The body add_source reads itself, for the OpenAPI document (web/docs.py `bodies`).
UPLOAD_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "pdf, docx, html, md or txt"},
        **{name: {"type": "string", "maxLength": limit} for name, limit in FORM_FIELD_LIMITS},
        "evaluate": {"type": "string", "enum": ["true", "false", "1", "0"]},
    },
}


async def _from_multipart(request: Request[Any, Any, Any]) -> tuple[dict[str, Any], bytes]:
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise Invalid("Send the document as a multipart field named 'file'.", field="file")
    data = await upload.read()
    if not data:
        raise Invalid("The uploaded file is empty.", field="file")
    fields: dict[str, Any] = {
        "type": "file",
        "filename": service.safe_filename(upload.filename),
        "content_type": upload.content_type,
    }
    for name, limit in FORM_FIELD_LIMITS:
        value = form.get(name)
        if value is not None and not isinstance(value, str):
            raise Invalid(f"{name} must be a text field.", field=name)
        if value:
            if len(value) > limit:
                raise Invalid(f"{name} is longer than {limit} characters.", field=name)
            fields[name] = value
    evaluate = form.get("evaluate")
    if evaluate is not None:
        if not isinstance(evaluate, str) or evaluate.lower() not in ("true", "false", "1", "0"):
            raise Invalid("evaluate must be true or false.", field="evaluate")
        if evaluate.lower() in ("true", "1"):
            fields["evaluate"] = True  # re-run the saved golden questions once ingested
    return fields, data


async def _from_json(
    request: Request[Any, Any, Any], settings: Config
) -> tuple[dict[str, Any], bytes | None]:
    try:
        spec = msgspec.json.decode(await request.body(), type=JsonSource)
    except msgspec.DecodeError as exc:
        raise Invalid(f"Invalid source: {exc}") from None
    return service.from_json(spec, settings)


async def add_source(
    request: Request[Any, Any, Any],
    auth: Auth,
    db: Db,
    settings: Config,
    knowledge: Knowledge,
    bot_id: FromPath[str],
) -> Response[SourceOut]:
    """Add knowledge: a multipart `file` (pdf, docx, html, md, txt) with optional `title`
    and `url`, or JSON {"type": "text"|"qa"|"url", ...}. Ingestion runs in the background.
    With `evaluate` true (a JSON field, or the form field `evaluate=true`) the chatbot's
    saved golden questions are run once the source is ingested (see evaluations)."""
    await chatbots.load(db, auth.org_id, bot_id)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: bytes | None
    if ctype == "multipart/form-data":
        fields, data = await _from_multipart(request)
    else:
        fields, data = await _from_json(request, settings)
    out, created = await service.add(db, service.running(knowledge), auth.org_id, bot_id, fields, data)
    return Response(out, status_code=202 if created else 200)


def add_source_handler(max_upload_bytes: int) -> Any:
    """The upload route, built per app: its body limit is a setting."""
    return post(
        "/chatbots/{bot_id:str}/sources",
        status_code=202,
        tags=["Sources"],
        request_max_body_size=max_upload_bytes,
        name="add_source",
        opt={
            "errors": (409, 503),
            "duplicate": SourceOut,
            "bodies": {"multipart/form-data": UPLOAD_FORM, "application/json": JsonSource},
        },
    )(add_source)


class SourcesController(Controller):
    tags = ["Sources"]  # noqa: RUF012 - declared by Litestar's Controller

    @get("/chatbots/{bot_id:str}/sources")
    async def list_sources(
        self,
        auth: Auth,
        db: Db,
        bot_id: FromPath[str],
        limit: Limit = 20,
        cursor: Cursor = None,
        status: Annotated[
            Literal["queued", "processing", "ready", "failed"] | None,
            Parameter(description="Only this status."),
        ] = None,
    ) -> Page[SourceOut]:
        await chatbots.load(db, auth.org_id, bot_id)
        return await service.list_page(db, bot_id, limit=limit, cursor=cursor, status=status)

    @get("/sources/{source_id:str}")
    async def get_source(self, auth: Auth, db: Db, source_id: FromPath[str]) -> SourceOut:
        return await service.get(db, auth.org_id, source_id)

    @delete("/sources/{source_id:str}", status_code=204, opt={"errors": (503,)})
    async def delete_source(self, auth: Auth, db: Db, knowledge: Knowledge, source_id: FromPath[str]) -> None:
        await service.delete(db, knowledge, auth.org_id, source_id)

    @post("/chatbots/{bot_id:str}/search", status_code=200, opt={"errors": (503,)})
    async def search(
        self,
        auth: Auth,
        db: Db,
        knowledge: Knowledge,
        bot_id: FromPath[str],
        data: JSONBody[SearchRequest],
    ) -> SearchResults:
        await chatbots.load(db, auth.org_id, bot_id)
        return await service.search(service.running(knowledge), bot_id, data.query, data.k)
