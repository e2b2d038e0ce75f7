"""Which kind of document a file is: magic bytes, then name and declared type, then the content."""

from __future__ import annotations

import io
import re
import zipfile

from helpfaster_box.knowledge.parsers.base import (
    ParseError,
    decode_text,
    guard,
)

# ---------------------------------------------------------------- detection

_MAGIC = (
    (b"\xd0\xcf\x11\xe0", "a legacy or password-protected Office file; save it as .docx"),
    (b"\x89PNG", "an image (PNG)"),
    (b"\xff\xd8\xff", "an image (JPEG)"),
    (b"GIF8", "an image (GIF)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "an executable"),
    (b"{\\rtf", "an RTF file; save it as .docx"),
    (b"%!PS", "a PostScript file"),
)
_BINARY_CLAIMS = (
    (".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "a Word document"),
    (".pdf", "application/pdf", "a PDF"),
)
_STRONG_HTML = re.compile(r"<(?:!doctype\s+html|html|head|body)[\s>/]")
# WHATWG mime-sniffing tags; only trusted when the name does not claim markdown.
_WEAK_HTML = re.compile(r"<(?:script|iframe|h1|div|font|table|a|style|title|b|br|p|!--)[\s>/]")
_MD_HINT = re.compile(r"^(?:#{1,6}[ \t]+\S|```|\* \S|- \S|\d+\. \S|\[[^\]]+\]\()", re.MULTILINE)
_MD_EXT = (".md", ".markdown", ".mdown", ".mkd")
_HTML_EXT = (".html", ".htm", ".xhtml")


def detect_type(data: bytes, filename: str | None, content_type: str | None) -> str:
    """Return one of KINDS from the content; the name and content type only split md/txt/html."""
    header = data[:1024].find(b"%PDF-")
    # Readers accept junk before the header; a note that merely mentions "%PDF-" has no objects.
    if header == 0 or (header > 0 and b"endobj" in data):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return _detect_zip(data)
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise ParseError(f"unsupported file type: this is {what}")
    name = (filename or "").lower()
    ctype = (content_type or "").split(";")[0].strip().lower()
    for ext, mime, what in _BINARY_CLAIMS:
        if name.endswith(ext) or ctype == mime:  # the name promises a format the bytes are not
            raise ParseError(f"the file is named or typed as {what}, but its content is not one")
    text = decode_text(data)
    head = text.lstrip()[:1024].lower()
    if _STRONG_HTML.match(head):
        return "html"
    if name.endswith(_MD_EXT) or ctype in ("text/markdown", "text/x-markdown"):
        return "md"
    if name.endswith(_HTML_EXT) or ctype in ("text/html", "application/xhtml+xml"):
        return "html"
    if name.endswith(".txt") or ctype == "text/plain":
        return "txt"
    if _WEAK_HTML.match(head):
        return "html"
    return "md" if _MD_HINT.search(text[:20_000]) else "txt"


def _detect_zip(data: bytes) -> str:
    with guard("zip file"):
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        raise ParseError("unsupported file type: Excel spreadsheets are not supported")
    if "ppt/presentation.xml" in names:
        raise ParseError("unsupported file type: PowerPoint files are not supported")
    raise ParseError("unsupported file type: a zip archive, not a Word document")
