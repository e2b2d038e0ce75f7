"""Documents whose name or structure lies: they fail with a reason, or parse without debris."""

from __future__ import annotations

import time

import pytest
from support.hostile import entity_bomb_docx, pdf_with_pages

from helpfaster_box.knowledge import parsers
from helpfaster_box.knowledge.service import safe_filename

DTD_PAGES = [
    b'<!DOCTYPE html [<!ENTITY x "boom">]><html><body><p>Hello &x; world</p></body></html>',
    b'<!DOCTYPE html [<!ENTITY x "a]b>c">]><html><body><p>Hello world</p></body></html>',
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n <!ENTITY lol2 "&lol;&lol;&lol;&lol;">\n'
    b' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">\n]>\n<html><body><p>Hello &lol3; world</p></body></html>',
]


@pytest.mark.parametrize("page", DTD_PAGES)
def test_an_internal_dtd_leaves_no_debris_and_expands_no_entity(page):
    doc = parsers.parse(page, parsers.detect_type(page, "page.html", None))
    text = "\n".join(s.text for s in doc.sections)
    assert "]>" not in text and "ENTITY" not in text
    assert "Hello" in text and "lollol" not in text


@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        ("report.docx", None),
        ("REPORT.DOCX", "application/octet-stream"),
        ("upload.bin", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("manual.pdf", None),
        ("scan", "application/pdf"),
    ],
)
def test_a_file_that_is_not_what_its_name_says_is_a_bad_document(name, ctype):
    with pytest.raises(parsers.ParseError, match="but its content is not one"):
        parsers.detect_type(b"just some plain text, not a zip and not a PDF", name, ctype)


def test_a_docx_carrying_a_dtd_is_refused_by_name_before_the_xml_is_parsed():
    bomb = entity_bomb_docx()
    with pytest.raises(parsers.ParseError, match=r"word/document.xml declares a DTD"):
        parsers.parse(bomb, parsers.detect_type(bomb, "lol.docx", None))


def test_a_pdf_over_the_page_limit_fails_on_its_declared_count_without_walking_the_tree():
    pdf = pdf_with_pages(100_000)
    started = time.monotonic()
    with pytest.raises(parsers.ParseError, match="100000 pages; the limit is 50"):
        parsers.parse(pdf, "pdf", max_pages=50)
    # Reading the file takes ~0.8 s; walking its 100,000 kids (len(reader.pages)) 2.6 s more.
    assert time.monotonic() - started < 2.5
    assert len(parsers.parse(pdf_with_pages(3), "pdf", max_pages=50).sections) == 3


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("/abs/path/guide.md", "guide.md"),
        ("nul\x00in\x1fname.pdf", "nulinname.pdf"),
        ("...", None),
        ("  .hidden.md  ", "hidden.md"),
        ("a" * 300 + ".md", "a" * 255),
        (None, None),
    ],
)
def test_an_upload_name_is_stored_as_a_bare_file_name(name, stored):
    assert safe_filename(name) == stored


def test_a_page_of_100000_plain_elements_keeps_its_text_through_the_furniture_rules():
    """A page of 100,000 nameless elements loses nothing to the class/id rules (their
    cost on it: tests/bench/bench_parse.py; an xpath call per element took the two
    stripping passes from 0.37 s to 1.35 s)."""
    from lxml import html as lxml_html

    from helpfaster_box.knowledge.parsers import html

    cell = "<p>" + "<span>" * 250 + "x " * 2000 + "</span>" * 250 + "</p>"
    doc = lxml_html.document_fromstring(f"<html><body>{cell * 400}</body></html>")
    assert len(doc.xpath("//*")) > 100_000
    html._strip_boilerplate(doc)
    html._strip_navigation(doc)
    assert len(doc.xpath("//span")) == 100_000 and doc.text_content().count("x") == 800_000
