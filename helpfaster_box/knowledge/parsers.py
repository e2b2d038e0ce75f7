"""Turn uploaded documents (pdf, docx, html, md, txt) into a title and titled sections.

Every input is untrusted. Sizes are checked before the expensive step rather than after, and
anything a third-party parser throws becomes a ParseError whose message is fit to show an
operator in a source's `error` field.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import NamedTuple

from lxml import etree
from lxml import html as lxml_html

KINDS = ("pdf", "docx", "html", "md", "txt")
MAX_TEXT_BYTES = 5_000_000
MAX_PAGES = 2_000
MAX_INPUT_BYTES = 64_000_000
# Real .docx XML compresses 5-30x; bombs compress ~1000x. zipfile never inflates a member past
# its declared size, so checking declared sizes up front is enough to bound memory.
_ZIP_MAX_TOTAL = 100_000_000
_ZIP_MAX_RATIO = 100
_ZIP_RATIO_FLOOR = 1_000_000
_ZIP_MAX_MEMBERS = 5_000
_PDF_MAX_SECONDS = 120.0


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
_STRONG_HTML = re.compile(r"<(?:!doctype\s+html|html|head|body)[\s>/]")
# WHATWG mime-sniffing tags; only trusted when the name does not claim markdown.
_WEAK_HTML = re.compile(r"<(?:script|iframe|h1|div|font|table|a|style|title|b|br|p|!--)[\s>/]")
_MD_HINT = re.compile(r"^(?:#{1,6}[ \t]+\S|```|\* \S|- \S|\d+\. \S|\[[^\]]+\]\()", re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
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
    text = _decode_text(data)
    name = (filename or "").lower()
    ctype = (content_type or "").split(";")[0].strip().lower()
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
    with _guard("zip file"):
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        raise ParseError("unsupported file type: Excel spreadsheets are not supported")
    if "ppt/presentation.xml" in names:
        raise ParseError("unsupported file type: PowerPoint files are not supported")
    raise ParseError("unsupported file type: a zip archive, not a Word document")


def _decode_text(data: bytes) -> str:
    if not data.strip():
        raise ParseError("document is empty")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return _check_text(data.decode("utf-16"))
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
    return _check_text(text)


def _check_text(text: str) -> str:
    sample = text[:100_000]
    if len(_CONTROL.findall(sample)) > max(2, len(sample) // 100):
        raise ParseError("file looks binary (too many control characters), not text")
    if not text.strip():
        raise ParseError("document is empty")
    return text


# ---------------------------------------------------------------- entry point


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
        doc = _parse_markdown(_decode_text(data))
    elif kind == "txt":
        doc = ParsedDocument(None, [Section(None, None, _paragraphs(_decode_text(data)), 0)])
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


@contextmanager
def _guard(what: str) -> Iterator[None]:
    """Turn any library failure into a one-line ParseError; tracebacks never reach users."""
    try:
        yield
    except ParseError:
        raise
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ParseError(f"{what} could not be read: {detail}") from None


def _paragraphs(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paras = (re.sub(r"[ \t]+\n", "\n", p).strip() for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paras if p)


# ---------------------------------------------------------------- PDF


def _parse_pdf(data: bytes, max_text: int, max_pages: int) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    with _guard("PDF"):
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
        pages = len(reader.pages)
        if pages > max_pages:
            raise ParseError(f"PDF has {pages} pages; the limit is {max_pages}")
        meta = reader.metadata
        title = str(meta.title) if meta and meta.title else None
        sections, total, started = [], 0, time.monotonic()
        for number, page in enumerate(reader.pages, start=1):
            # Hyphenated line breaks split words the retriever then cannot match.
            text = re.sub(r"(\w)-\n(\w)", r"\1\2", page.extract_text() or "")
            text = _paragraphs(text)
            total += len(text)
            if total > max_text:
                raise ParseError(f"document text is larger than the {max_text / 1e6:g} MB limit")
            if time.monotonic() - started > _PDF_MAX_SECONDS:
                raise ParseError("PDF took too long to read")
            if text:
                sections.append(Section(f"Page {number}", f"page={number}", text, 1))
    return ParsedDocument(title, sections)


# ---------------------------------------------------------------- DOCX


def _check_zip(data: bytes) -> None:
    with _guard("Word document"):
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    if len(infos) > _ZIP_MAX_MEMBERS:
        raise ParseError("Word document has too many parts (possible zip bomb)")
    total = 0
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ParseError("Word document uses an unsupported zip compression")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _ZIP_RATIO_FLOOR and ratio > _ZIP_MAX_RATIO:
            raise ParseError(f"Word document looks like a zip bomb ({info.filename} expands {ratio:.0f}x)")
        total += info.file_size
    if total > _ZIP_MAX_TOTAL:
        raise ParseError(f"Word document expands to more than {_ZIP_MAX_TOTAL // 1_000_000} MB (zip bomb?)")


_HEADING_STYLE = re.compile(r"heading\s*(\d)", re.IGNORECASE)


def _docx_level(paragraph: object) -> int:
    style = getattr(paragraph, "style", None)
    match = _HEADING_STYLE.match(getattr(style, "name", "") or "")
    if match:
        return min(int(match.group(1)), 6)
    # Localized Word ("Überschrift 1") keeps the outline level even when the name differs.
    for element in (paragraph._p, getattr(style, "element", None)):  # type: ignore[attr-defined]
        if element is None:
            continue
        found = element.xpath("./w:pPr/w:outlineLvl/@w:val")
        if found and found[0].isdigit() and int(found[0]) < 9:
            return min(int(found[0]) + 1, 6)
    return 0


def _parse_docx(data: bytes) -> ParsedDocument:
    _check_zip(data)
    import docx
    from docx.table import Table

    with _guard("Word document"):
        document = docx.Document(io.BytesIO(data))
        title = document.core_properties.title or None
        sections: list[Section] = []
        heading, level, paras = None, 0, []
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                rows = []
                for row in block.rows:
                    seen, cells = set(), []
                    for cell in row.cells:  # merged cells repeat; keep each once
                        if id(cell._tc) not in seen and cell.text.strip():
                            seen.add(id(cell._tc))
                            cells.append(" ".join(cell.text.split()))
                    if cells:
                        rows.append(" | ".join(cells))
                if rows:
                    paras.append("\n".join(rows))
                continue
            text = block.text.strip()
            if not text:
                continue
            if getattr(block.style, "name", "") == "Title":
                title = title or text
            elif new_level := _docx_level(block):
                sections.append(Section(heading, None, "\n\n".join(paras), level))
                heading, level, paras = " ".join(text.split()), new_level, []
            else:
                paras.append(text)
        sections.append(Section(heading, None, "\n\n".join(paras), level))
    return ParsedDocument(title, sections)


# ---------------------------------------------------------------- HTML

_DROP = (
    "nav",
    "header",
    "footer",
    "aside",
    "script",
    "style",
    "noscript",
    "form",
    "svg",
    "iframe",
    "template",
    "button",
    "select",
    "textarea",
    "canvas",
    "object",
    "embed",
    "dialog",
    "menu",
)
_BOILER_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "dialog"}
# Not "sidebar": DocBook and Sphinx put tips and warnings inside the text in
# <div class="sidebar"> (26% of the Debian handbook); page sidebars are <aside>
# or role=complementary, dropped above.
_BOILER_NAME = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navigation|menu|breadcrumbs?|cookies?|consent|gdpr"
    r"|skip-?link|share|sharing|social|ads?|advert\w*|sponsored|popup|modal|pagination"
    r"|pager|newsletter|subscribe)(?:$|[\s_-])",
    re.IGNORECASE,
)
_BLOCK = {
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "table",
    "tr",
    "blockquote",
    "pre",
    "section",
    "article",
    "main",
    "figure",
    "figcaption",
    "hr",
    "address",
    "details",
    "summary",
    "caption",
    "body",
    "tbody",
    "thead",
}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_-]+)", re.IGNORECASE)


def _html_text(data: bytes) -> str:
    declared = _META_CHARSET.search(data[:4096])
    text = None
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        with suppress(LookupError):
            text = data.decode(declared.group(1).decode(), errors="replace")
    # lxml refuses str input that still carries an XML encoding declaration (XHTML pages).
    return re.sub(r"^\s*<\?xml[^>]*\?>", "", text if text is not None else _decode_text(data))


def _heading_anchor(el: etree._Element) -> str | None:
    inner = el.xpath("./@id | .//@id | .//a/@name")
    if inner:
        return str(inner[0])
    parent, before = el.getparent(), el.getprevious()
    # Sphinx and many CMSs put the id on the wrapping <section>, or on an empty <a> before.
    if parent is not None and parent.get("id") and before is None:
        return str(parent.get("id"))
    if before is not None and before.tag == "a" and not before.text_content().strip():
        found = before.get("id") or before.get("name")
        return str(found) if found else None
    return None


def _strip_boilerplate(root: etree._Element) -> None:
    for el in list(root.iter(*_DROP)):
        if el.tag == "header" and el.xpath("ancestor::article | ancestor::main"):
            continue  # an article's own header carries its h1
        el.drop_tree()
    page_len = len(root.text_content())
    for el in list(root.iter(etree.Element)):
        style = (el.get("style") or "").replace(" ", "").lower()
        hidden = (
            el.get("hidden") is not None
            or el.get("aria-hidden") == "true"
            or "display:none" in style
            or "visibility:hidden" in style
            or (el.get("role") or "").lower() in _BOILER_ROLES
        )
        named = _BOILER_NAME.search(f"{el.get('class') or ''} {el.get('id') or ''}")
        # Class names are a weak signal: never let one remove the page's main content.
        if (
            named
            and not hidden
            and (el.xpath(".//h1 | .//main | .//article") or len(el.text_content()) > page_len // 2)
        ):
            continue
        if (hidden or named) and el.tag not in ("html", "body"):
            el.drop_tree()


def _parse_html(data: bytes) -> ParsedDocument:
    with _guard("HTML"):
        parser = lxml_html.HTMLParser(remove_comments=True, remove_pis=True, no_network=True)
        doc = lxml_html.document_fromstring(_html_text(data), parser=parser)
        title = " ".join(" ".join(doc.xpath("//title//text()")).split()) or None
        if not title:
            first_h1 = doc.xpath("//h1")
            title = " ".join(first_h1[0].text_content().split()) if first_h1 else None
        _strip_boilerplate(doc)
        mains = doc.xpath("//main | //*[@role='main']") or doc.xpath("//article")
        root = mains[0] if len(mains) == 1 and mains[0].text_content().strip() else doc.body
        return ParsedDocument(title, _html_sections(root))


def _html_sections(root: etree._Element) -> list[Section]:
    sections: list[Section] = []
    heading: tuple[str | None, str | None, int] = (None, None, 0)
    paras: list[str] = []
    buf: list[str] = []
    in_heading: etree._Element | None = None
    pre_depth, buf_pre = 0, False

    def flush() -> None:
        nonlocal buf_pre
        text = "".join(buf)
        lines = [ln.rstrip() if buf_pre else ln.strip() for ln in text.split("\n")]
        text = "\n".join(ln for ln in lines if ln.strip()).strip("\n")
        if text.strip():
            paras.append(text)
        buf.clear()
        buf_pre = False

    def add(text: str | None) -> None:
        nonlocal buf_pre
        if text:
            buf.append(text if pre_depth else re.sub(r"\s+", " ", text))
            buf_pre = buf_pre or pre_depth > 0

    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag if isinstance(el.tag, str) else ""
        if event == "start":
            if tag in _HEADINGS and in_heading is None:
                flush()
                sections.append(Section(heading[0], heading[1], "\n\n".join(paras), heading[2]))
                paras.clear()
                in_heading = el
            elif in_heading is not None:
                pass  # markup inside a heading stays part of the heading text
            elif tag == "br":
                buf.append("\n")
            elif tag in _BLOCK:
                flush()
            elif tag in ("td", "th") and buf and not buf[-1].endswith("\n"):
                buf.append(" | ")
            pre_depth += tag == "pre"
            add(el.text)
            continue
        if el is in_heading:
            text = " ".join("".join(buf).split())
            buf.clear()
            heading = (text, _heading_anchor(el), _HEADINGS[tag]) if text else (None, None, 0)
            in_heading = None
        elif tag in _BLOCK and in_heading is None:
            flush()
        pre_depth -= tag == "pre"
        if el is not root:
            add(el.tail)
    flush()
    sections.append(Section(heading[0], heading[1], "\n\n".join(paras), heading[2]))
    return sections


# ---------------------------------------------------------------- Markdown

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def _md_inline(text: str) -> str:
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    return re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)


def github_slug(heading: str, seen: dict[str, int]) -> str | None:
    """The id GitHub gives a heading: lowercase, punctuation dropped, spaces to hyphens."""
    plain = re.sub(r"[*`]|__", "", _md_inline(heading)).strip().lower()
    base = "".join(c for c in plain if c.isalnum() or c in " -_").replace(" ", "-")
    if not base:
        return None
    slug, n = base, seen.get(base, 0)
    while slug in seen:
        n += 1
        slug = f"{base}-{n}"
    seen[base] = n
    seen[slug] = 0
    return slug


def _parse_markdown(text: str) -> ParsedDocument:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    title = None
    if lines and lines[0].strip() == "---":  # YAML front matter
        end = next((i for i, ln in enumerate(lines[1:200], 1) if ln.strip() in ("---", "...")), 0)
        for ln in lines[1:end]:
            if ln.lower().startswith("title:"):
                title = ln[6:].strip().strip("\"'") or None
        lines = lines[end + 1 :] if end else lines
    sections: list[Section] = []
    seen: dict[str, int] = {}
    heading: str | None = None
    anchor: str | None = None
    body: list[str] = []
    level, fence = 0, ""

    def start(new_heading: str, new_level: int) -> None:
        nonlocal heading, anchor, level, body, title
        sections.append(Section(heading, anchor, _paragraphs(_md_inline("\n".join(body))), level))
        shown = " ".join(re.sub(r"[*`]|__", "", _md_inline(new_heading)).split())
        heading, anchor, level, body = shown or None, github_slug(new_heading, seen), new_level, []
        if new_level == 1 and title is None:
            title = shown

    for line in lines:
        if fence:
            body.append(line)
            fence = "" if line.strip().startswith(fence) else fence
        elif m := _FENCE.match(line):
            fence = m.group(1)
            body.append(line)
        elif (m := _ATX.match(line)) and (m.group(2) or "").strip():
            start(m.group(2).strip(), len(m.group(1)))
        elif (m := _SETEXT.match(line)) and body and body[-1].strip() and not _FENCE.match(body[-1]):
            para_start = len(body)
            while para_start > 0 and body[para_start - 1].strip():
                para_start -= 1
            text = " ".join(ln.strip() for ln in body[para_start:])
            del body[para_start:]
            start(text, 1 if m.group(1)[0] == "=" else 2)
        else:
            body.append(line)
    sections.append(Section(heading, anchor, _paragraphs(_md_inline("\n".join(body))), level))
    return ParsedDocument(title, sections)
