"""Parsers against real small files built here, and against hostile ones."""

from __future__ import annotations

import io
import random
import zipfile

import pypdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.documents import NOISY_HTML, make_docx, make_pdf

from helpfaster_box.knowledge import parsers
from helpfaster_box.knowledge.parsers import ParseError, detect_type, parse

# ------------------------------------------------------------------ detection


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "expected"),
    [
        (b"%PDF-1.4\n...", "manual.txt", "text/plain", "pdf"),
        (b"junk\r\n%PDF-1.7\n1 0 obj\n<<>>\nendobj", None, None, "pdf"),
        (b"PDF files start with %PDF-1.x, see the spec.", "notes.txt", None, "txt"),
        (NOISY_HTML, "page.txt", None, "html"),
        (b"# Title\n\nSome *markdown*.", "notes.md", None, "md"),
        (b"# Title\n\nSome text.", "notes.txt", None, "txt"),
        (b"# Title\n\nSome text.", None, "text/markdown; charset=utf-8", "md"),
        (b"# Title\n\nSome text.", None, None, "md"),
        (b"<p>fragment</p>", None, None, "html"),
        (b"<p>fragment</p>", "x.md", None, "md"),
        (b"Just a plain note.\n\nSecond paragraph.", None, None, "txt"),
        ("Grüße aus Köln".encode("cp1252"), "x.txt", None, "txt"),
    ],
)
def test_detect_type_from_content(data, filename, content_type, expected):
    assert detect_type(data, filename, content_type) == expected


def test_detect_docx_by_zip_content_not_name():
    assert detect_type(make_docx(), "upload.bin", "application/octet-stream") == "docx"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"   \n\t  \r\n", "empty"),
        (random.Random(0).randbytes(4096), "binary"),
        (bytes(random.Random(1).choices(range(1, 256), k=4096)), "not valid text"),
        (bytes(random.Random(2).choices([*range(1, 9), 65, 66], k=2000)), "control characters"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "image"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "legacy"),
        (b"PK\x03\x04 not really a zip", "zip"),
    ],
)
def test_detect_type_rejects_unsupported_content(data, reason):
    with pytest.raises(ParseError, match=reason):
        detect_type(data, "notes.txt", "text/plain")


def test_detect_rejects_other_office_zip():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(ParseError, match="Excel"):
        detect_type(buffer.getvalue(), "sheet.docx", None)


# ------------------------------------------------------------------ formats


def test_pdf_text_per_page_with_title_and_page_anchors():
    data = make_pdf(
        [["Reset your password", "Open Settings and choose Security."], ["Billing questions go to finance."]],
        title="Admin Guide",
    )
    doc = parse(data, "pdf")
    assert doc.title == "Admin Guide"
    assert [(s.heading, s.anchor) for s in doc.sections] == [("Page 1", "page=1"), ("Page 2", "page=2")]
    assert "Open Settings and choose Security." in doc.sections[0].text
    assert "finance" in doc.sections[1].text


def test_pdf_title_falls_back_to_hint():
    assert parse(make_pdf([["Hello there"]]), "pdf", title_hint="guide.pdf").title == "guide.pdf"


def test_docx_headings_become_sections_and_tables_are_kept():
    doc = parse(make_docx(), "docx")
    assert doc.title == "Employee Handbook"
    assert [(s.heading, s.level) for s in doc.sections] == [(None, 0), ("Leave policy", 1), ("Sick leave", 2)]
    assert doc.sections[0].text == "Welcome aboard, new colleague."
    sick = doc.sections[2].text
    assert "Type | Days\nSick | 10" in sick
    assert sick.index("Sick | 10") < sick.index("Report sickness")


def test_html_keeps_content_and_drops_boilerplate():
    doc = parse(NOISY_HTML, "html")
    assert doc.title == "Reset password - ACME Help"
    everything = " ".join([doc.title or ""] + [f"{s.heading} {s.text}" for s in doc.sections])
    for noise in (
        "stylenoise",
        "scriptnoise",
        "headernoise",
        "navnoise",
        "cookienoise",
        "noscriptnoise",
        "formnoise",
        "hiddennoise",
        "asidenoise",
        "footernoise",
        "svgnoise",
        "iframenoise",
    ):
        assert noise not in everything
    assert [(s.heading, s.anchor, s.level) for s in doc.sections] == [
        ("Reset your password", "reset", 1),
        ("Two-factor login", "two-factor", 2),
        ("Legacy accounts", "legacy", 3),
    ]
    assert doc.sections[0].text == "Open Settings and choose Security."
    assert "Plan | Methods" in doc.sections[1].text
    assert "reset --user  alice\n    --force" in doc.sections[2].text  # <pre> keeps spacing


def test_html_title_from_first_h1_and_class_heuristic_keeps_main_content():
    page = (
        b"<html><body class='has-navbar'><div class='page-with-navbar'>"
        b"<h1>Shipping times</h1><p>Orders ship in two days.</p></div>"
        b"<div class='navbar'>navbarnoise</div></body></html>"
    )
    doc = parse(page, "html")
    assert doc.title == "Shipping times"
    assert doc.sections[0].text == "Orders ship in two days."
    assert "navbarnoise" not in str(doc)


def test_html_docbook_sidebar_boxes_are_content():
    # DocBook (the Debian handbook) puts TIP / CAUTION boxes in <div class="sidebar">.
    page = (
        b"<html><body><h1>Users</h1><p>Edit the files with care.</p>"
        b"<div class='sidebar'><div class='titlepage'><p><strong>TIP</strong></p></div>"
        b"<p>Use vipw and vigr to edit /etc/passwd safely.</p></div>"
        b"<aside>asidenoise</aside></body></html>"
    )
    text = str(parse(page, "html"))
    assert "vipw and vigr" in text
    assert "asidenoise" not in text


def test_html_legacy_charset_and_xml_declaration():
    page = (
        '<?xml version="1.0" encoding="iso-8859-1"?><html><head>'
        '<meta charset="iso-8859-1"></head><body><p>Café crème</p></body></html>'
    )
    assert parse(page.encode("latin-1"), "html").sections[0].text == "Café crème"


def test_markdown_headings_slugs_front_matter_and_code():
    text = """---
title: Setup Guide
---
Intro line.

# Getting *started*

See [the docs](https://example.com) now.

```sh
# not a heading
```

Network setup
-------------

## Getting started

Again.
"""
    doc = parse(text.encode(), "md")
    assert doc.title == "Setup Guide"
    assert [(s.heading, s.anchor, s.level) for s in doc.sections] == [
        (None, None, 0),
        ("Getting started", "getting-started", 1),
        ("Network setup", "network-setup", 2),
        ("Getting started", "getting-started-1", 2),
    ]
    assert "See the docs now." in doc.sections[1].text
    assert "# not a heading" in doc.sections[1].text


def test_github_slug_rules():
    seen: dict[str, int] = {}
    assert parsers.github_slug("What's new in v2.0?", seen) == "whats-new-in-v20"
    assert parsers.github_slug("Über `config_file` & more", seen) == "über-config_file--more"
    assert parsers.github_slug("What's new in v2.0?", seen) == "whats-new-in-v20-1"


def test_txt_paragraphs():
    doc = parse(b"First para\nstill first.\r\n\r\n\n  Second para.  \n", "txt", title_hint="a.txt")
    assert doc.title == "a.txt"
    assert doc.sections == [parsers.Section(None, None, "First para\nstill first.\n\nSecond para.", 0)]


# ------------------------------------------------------------------ hostile inputs


def test_truncated_pdf():
    data = make_pdf([["Some text on the page"]])
    for cut in (40, len(data) // 2, len(data) - 30):
        with pytest.raises(ParseError, match="PDF"):
            parse(data[:cut], "pdf")


def test_scanned_pdf_without_text():
    with pytest.raises(ParseError, match=r"no extractable text \(scanned PDF\?\)"):
        parse(make_pdf([[], []]), "pdf")


def _encrypt(data: bytes, user_password: str, algorithm: str = "RC4-128") -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password, owner_password="owner", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_encrypted_pdf_is_refused_but_permission_only_pdf_opens():
    data = make_pdf([["Confidential roadmap"]])
    with pytest.raises(ParseError, match="encrypted"):
        parse(_encrypt(data, "secret"), "pdf")
    assert "roadmap" in parse(_encrypt(data, ""), "pdf").sections[0].text


def test_aes_permission_only_pdf_opens():
    import cryptography  # noqa: F401  - a declared dependency: pypdf needs it for AES

    data = make_pdf([["Quarterly numbers"]])
    assert "Quarterly" in parse(_encrypt(data, "", "AES-256"), "pdf").sections[0].text
    with pytest.raises(ParseError, match="encrypted"):
        parse(_encrypt(data, "pw", "AES-128"), "pdf")


def test_pdf_page_cap():
    with pytest.raises(ParseError, match="3 pages; the limit is 2"):
        parse(make_pdf([["a"], ["b"], ["c"]]), "pdf", max_pages=2)


def test_zip_bomb_docx_is_refused_before_extraction():
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(make_docx())) as src,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        with dst.open("word/media/image1.png", "w") as member:
            for _ in range(40):  # 40 MB of zeros deflates to ~40 KB
                member.write(bytes(1 << 20))
    bomb = buffer.getvalue()
    assert len(bomb) < 200_000
    assert detect_type(bomb, "bomb.docx", None) == "docx"
    with pytest.raises(ParseError, match="zip bomb"):
        parse(bomb, "docx")


def test_docx_total_uncompressed_cap(monkeypatch):
    monkeypatch.setattr(parsers.docx, "ZIP_MAX_TOTAL", 10_000)
    with pytest.raises(ParseError, match="expands to more than"):
        parse(make_docx(), "docx")


def test_corrupt_docx():
    data = make_docx()
    with pytest.raises(ParseError, match="Word document"):
        parse(data[: len(data) // 2], "docx")


@pytest.mark.parametrize("kind", ["txt", "md", "html"])
def test_junk_bytes_as_text(kind):
    with pytest.raises(ParseError, match=r"binary|not valid text"):
        parse(random.Random(3).randbytes(2048), kind)


@pytest.mark.parametrize("kind", ["pdf", "docx", "html", "md", "txt"])
def test_empty_and_whitespace_documents(kind):
    for data in (b"", b" \n\t\n "):
        with pytest.raises(ParseError, match="empty"):
            parse(data, kind)


def test_html_without_text():
    page = b"<html><head><script>x=1</script></head><body><nav>menu</nav><img src=a></body></html>"
    with pytest.raises(ParseError, match="no readable text"):
        parse(page, "html")


def test_text_size_cap():
    with pytest.raises(ParseError, match=r"larger than the 0\.001 MB limit"):
        parse(b"word " * 400, "txt", max_text_bytes=1000)
    with pytest.raises(ParseError, match="limit"):
        parse(make_pdf([["x" * 80] * 20]), "pdf", max_text_bytes=1000)


def test_input_size_cap():
    with pytest.raises(ParseError, match="larger than"):
        parse(b"a" * 2_000_001, "txt", max_input_bytes=1_000_000)


def test_unknown_kind():
    with pytest.raises(ParseError, match="unsupported document type"):
        parse(b"hello", "rtf")


def test_third_party_crash_becomes_short_parse_error(monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("internal failure\nTraceback (most recent call last): ...")

    monkeypatch.setattr(pypdf, "PdfReader", explode)
    with pytest.raises(ParseError) as info:
        parse(make_pdf([["text"]]), "pdf")
    assert str(info.value) == "PDF could not be read: internal failure"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=600),
        st.sampled_from([b"%PDF-1.4\n", b"PK\x03\x04", b"<html>", b"# ", b"\xef\xbb\xbf"]).flatmap(
            lambda prefix: st.binary(max_size=400).map(lambda tail: prefix + tail)
        ),
    )
)
def test_arbitrary_bytes_never_escape_as_other_errors(data):
    try:
        kind = detect_type(data, None, None)
    except ParseError:
        kind = "txt"
    try:
        parse(data, kind)
    except ParseError as exc:
        assert str(exc) and "\n" not in str(exc)
