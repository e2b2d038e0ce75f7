"""Turn uploaded documents (pdf, docx, html, md, txt) into a title and titled sections.

Every input is untrusted. Sizes are checked before the expensive step rather than after, and
anything a third-party parser throws becomes a ParseError whose message is fit to show an
operator in a source's `error` field.
"""

from __future__ import annotations

from helpfaster_box.knowledge.parsers.base import (
    KINDS,
    MAX_INPUT_BYTES,
    MAX_PAGES,
    MAX_TEXT_BYTES,
    ParsedDocument,
    ParseError,
    Section,
    decode_text,
    paragraphs,
)
from helpfaster_box.knowledge.parsers.detect import detect_type
from helpfaster_box.knowledge.parsers.docx import _parse_docx
from helpfaster_box.knowledge.parsers.html import _parse_html
from helpfaster_box.knowledge.parsers.markdown import _parse_markdown, github_slug
from helpfaster_box.knowledge.parsers.pdf import _parse_pdf

__all__ = [
    "KINDS",
    "ParseError",
    "ParsedDocument",
    "Section",
    "detect_type",
    "github_slug",
    "parse",
]


def parse(
    data: bytes,
    kind: str,
    *,
    title_hint: str | None = None,
    max_text_bytes: int = MAX_TEXT_BYTES,
    max_pages: int = MAX_PAGES,
    max_input_bytes: int = MAX_INPUT_BYTES,
) -> ParsedDocument:
    """Parse `data` of a kind from detect_type; title_hint is used when the file has no title."""
    if len(data) > max_input_bytes:
        raise ParseError(f"file is larger than the {max_input_bytes // 1_000_000} MB limit")
    if not data.strip():
        raise ParseError("document is empty")
    if kind == "pdf":
        doc = _parse_pdf(data, max_text_bytes, max_pages)
    elif kind == "docx":
        doc = _parse_docx(data)
    elif kind == "html":
        doc = _parse_html(data)
    elif kind == "md":
        doc = _parse_markdown(decode_text(data))
    elif kind == "txt":
        doc = ParsedDocument(None, [Section(None, None, paragraphs(decode_text(data)), 0)])
    else:
        raise ParseError(f"unsupported document type {kind!r}; expected one of {', '.join(KINDS)}")
    doc.title = (doc.title or "").strip() or (title_hint or None)
    doc.sections = [s for s in doc.sections if s.text or s.heading]
    size = sum(len(s.text.encode()) for s in doc.sections)
    if size > max_text_bytes:
        raise ParseError(f"document text is larger than the {max_text_bytes / 1e6:g} MB limit")
    if not any(s.text for s in doc.sections):
        raise ParseError(
            {"pdf": "no extractable text (scanned PDF?)", "html": "page has no readable text"}.get(
                kind, "document is empty"
            )
        )
    return doc
