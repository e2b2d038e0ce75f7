"""Documents whose name or structure lies: they fail with a reason, or parse without debris."""

from __future__ import annotations

import pytest

from helpfaster_box.knowledge import parsers

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
