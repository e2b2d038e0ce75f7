"""PDF text with pypdf: page and time limits, text size checked as pages are read."""

from __future__ import annotations

import io
import re
import time
from typing import Any

from helpfaster_box.knowledge.parsers.base import (
    PDF_MAX_SECONDS,
    ParsedDocument,
    ParseError,
    Section,
    guard,
    paragraphs,
)

# ---------------------------------------------------------------- PDF


def _parse_pdf(data: bytes, max_text: int, max_pages: int) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    with guard("PDF"):
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:  # permission-only PDFs open with the empty password
                opened = bool(reader.decrypt(""))
            except DependencyError:
                raise ParseError(
                    "PDF is AES-encrypted and the `cryptography` package is not installed"
                ) from None
            except Exception:
                opened = False
            if not opened:
                raise ParseError("PDF is encrypted (password-protected)")
        declared = _declared_pages(reader)
        if declared > max_pages:  # before pypdf walks the page tree (100,000 kids: 2.6 s)
            raise ParseError(f"PDF has {declared} pages; the limit is {max_pages}")
        pages = len(reader.pages)
        if pages > max_pages:
            raise ParseError(f"PDF has {pages} pages; the limit is {max_pages}")
        meta = reader.metadata
        title = str(meta.title) if meta and meta.title else None
        sections, total, started = [], 0, time.monotonic()
        for number, page in enumerate(reader.pages, start=1):
            # Hyphenated line breaks split words the retriever then cannot match.
            text = re.sub(r"(\w)-\n(\w)", r"\1\2", page.extract_text() or "")
            text = paragraphs(text)
            total += len(text)
            if total > max_text:
                raise ParseError(f"document text is larger than the {max_text / 1e6:g} MB limit")
            if time.monotonic() - started > PDF_MAX_SECONDS:
                raise ParseError("PDF took too long to read")
            if text:
                sections.append(Section(f"Page {number}", f"page={number}", text, 1))
    return ParsedDocument(title, sections)


def _declared_pages(reader: Any) -> int:
    """The root page tree's /Count, 0 when unreadable (then the real count is checked)."""
    try:
        count = reader.trailer["/Root"]["/Pages"]["/Count"]
        return int(count)
    except Exception:
        return 0
