"""Knowledge source and search shapes."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from helpfaster_box.schemas import Out

Title = Annotated[str, Meta(min_length=1, max_length=500)]
Url = Annotated[str, Meta(min_length=1, max_length=2000)]


class TextSource(msgspec.Struct, tag="text", tag_field="type", forbid_unknown_fields=True):
    title: Title
    content: Annotated[str, Meta(min_length=1)]
    url: Url | None = None
    evaluate: bool = False  # re-run the chatbot's saved golden questions once ingested


class QASource(msgspec.Struct, tag="qa", tag_field="type", forbid_unknown_fields=True):
    question: Annotated[str, Meta(min_length=1, max_length=2000)]
    answer: Annotated[str, Meta(min_length=1, max_length=20_000)]
    title: Title | None = None
    url: Url | None = None
    evaluate: bool = False


class UrlSource(msgspec.Struct, tag="url", tag_field="type", forbid_unknown_fields=True):
    url: Url
    title: Title | None = None
    evaluate: bool = False


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


class SearchResults(Out):
    data: list[SearchHit]
