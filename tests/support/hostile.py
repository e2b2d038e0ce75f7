"""Hostile documents built in code, each small on the wire and expensive if handled naively.

- `pdf_with_pages(100_000)`: one page object referenced 100,000 times from the page tree
  (~0.6 MB), so a reader that walks the tree sees 100,000 pages.
- `entity_bomb_docx()`: a valid .docx whose document.xml carries the billion-laughs DTD
  (10 levels of 10 references: 10^10 "lol"s if expanded).
- `billion_laughs_html()`: the same DTD in front of an HTML page.
- `truncated_pdf()`, `garbage_pdf()`: a real PDF cut in half, and a PDF header before junk.
"""

from __future__ import annotations

import io
import zipfile

from support.documents import make_docx, make_pdf, pdf_file


def pdf_with_pages(pages: int) -> bytes:
    stream = b"BT /F1 12 Tf 72 720 Td (The same page again.) Tj ET"
    kids = b" ".join([b"3 0 R"] * pages)
    return pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def laughs_dtd(root: str, levels: int = 10) -> str:
    lines = ['<!ENTITY lol0 "lol">']
    lines += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)]
    return f"<!DOCTYPE {root} [\n" + "\n".join(lines) + "\n]>"


def entity_bomb_docx() -> bytes:
    src = zipfile.ZipFile(io.BytesIO(make_docx()))
    original = src.read("word/document.xml").decode()
    decl, _, rest = original.partition("?>")
    body = "<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p><w:sectPr/></w:body>"
    head = rest.partition("<w:body>")[0]
    xml = f"{decl}?>\n{laughs_dtd('w:document')}{head.strip()}{body}</w:document>"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = xml.encode() if info.filename == "word/document.xml" else src.read(info.filename)
            dst.writestr(info.filename, data)
    return out.getvalue()


def billion_laughs_html() -> bytes:
    return f"{laughs_dtd('html')}\n<html><body><p>&lol9;</p></body></html>\n".encode()


def truncated_pdf() -> bytes:
    whole = make_pdf([["Page one of a manual."], ["Page two of a manual."]])
    return whole[: len(whole) // 3]


def garbage_pdf() -> bytes:
    return b"%PDF-1.7\n" + bytes(range(256)) * 64
