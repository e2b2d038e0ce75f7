"""What every parser shares: limits, the document model, and the error a user sees."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

KINDS = ("pdf", "docx", "html", "md", "txt")
MAX_TEXT_BYTES = 5_000_000
MAX_PAGES = 2_000
MAX_INPUT_BYTES = 64_000_000
# Real .docx XML compresses 5-30x; bombs compress ~1000x. zipfile never inflates a member past
# its declared size, so checking declared sizes up front is enough to bound memory.
ZIP_MAX_TOTAL = 100_000_000
ZIP_MAX_RATIO = 100
ZIP_RATIO_FLOOR = 1_000_000
ZIP_MAX_MEMBERS = 5_000
PDF_MAX_SECONDS = 120.0

CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


class ParseError(ValueError):
    """The document cannot be ingested; str(err) is a short reason for the operator."""


class Section(NamedTuple):
    heading: str | None
    anchor: str | None
    text: str  # paragraphs separated by blank lines
    level: int  # 1-6 for headings, 0 for text before the first heading


@dataclass
class ParsedDocument:
    title: str | None
    sections: list[Section] = field(default_factory=list)


def decode_text(data: bytes) -> str:
    if not data.strip():
        raise ParseError("document is empty")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return check_text(data.decode("utf-16"))
        except UnicodeDecodeError:
            raise ParseError("file is not valid text (broken UTF-16)") from None
    if b"\x00" in data:
        raise ParseError("file looks binary (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:  # what browsers assume for undeclared legacy pages
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise ParseError("file is not valid text (neither UTF-8 nor Windows-1252)") from None
    return check_text(text)


def check_text(text: str) -> str:
    sample = text[:100_000]
    if len(CONTROL_CHARS.findall(sample)) > max(2, len(sample) // 100):
        raise ParseError("file looks binary (too many control characters), not text")
    if not text.strip():
        raise ParseError("document is empty")
    return text


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Turn any library failure into a one-line ParseError; tracebacks never reach users."""
    try:
        yield
    except ParseError:
        raise
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ParseError(f"{what} could not be read: {detail}") from None


def paragraphs(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paras = (re.sub(r"[ \t]+\n", "\n", p).strip() for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paras if p)
