"""DOCX: zip-bomb checks before python-docx reads the XML; headings by paragraph style."""

from __future__ import annotations

import io
import re
import zipfile

from helpfaster_box.knowledge.parsers.base import (
    ZIP_MAX_MEMBERS,
    ZIP_MAX_RATIO,
    ZIP_MAX_TOTAL,
    ZIP_RATIO_FLOOR,
    ParsedDocument,
    ParseError,
    Section,
    guard,
)

# ---------------------------------------------------------------- DOCX


def _check_zip(data: bytes) -> None:
    with guard("Word document"):
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    if len(infos) > ZIP_MAX_MEMBERS:
        raise ParseError("Word document has too many parts (possible zip bomb)")
    total = 0
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ParseError("Word document uses an unsupported zip compression")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > ZIP_RATIO_FLOOR and ratio > ZIP_MAX_RATIO:
            raise ParseError(f"Word document looks like a zip bomb ({info.filename} expands {ratio:.0f}x)")
        total += info.file_size
    if total > ZIP_MAX_TOTAL:
        raise ParseError(f"Word document expands to more than {ZIP_MAX_TOTAL // 1_000_000} MB (zip bomb?)")
    _check_no_dtd(data, infos)


def _check_no_dtd(data: bytes, infos: list[zipfile.ZipInfo]) -> None:
    """OOXML parts may not carry a DTD (ECMA-376 part 2, M1.17), and the only use of one in
    an upload is an entity bomb: refused up front with a reason that says so, rather than
    libxml2's "Maximum entity amplification factor exceeded" half-way through the parse."""
    with guard("Word document"), zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in infos:
            if info.filename.endswith((".xml", ".rels")):
                with archive.open(info) as member:
                    prolog = member.read(DTD_SCAN_BYTES)
                if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
                    raise ParseError(
                        f"Word document part {info.filename} declares a DTD, which .docx files "
                        "never do (an XML entity bomb?)"
                    )


DTD_SCAN_BYTES = 65_536  # a DTD precedes the root element, so it sits in the first bytes
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

    with guard("Word document"):
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
