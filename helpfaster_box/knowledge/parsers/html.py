"""HTML: lxml, boilerplate (navigation, headers, footers, scripts) dropped, sections by heading.

Main-content extraction is rules over the lxml tree, not a library, measured: trafilatura
2.3.1 (`extract(favor_recall=True)`) kept 50-88 % of the text of Debian handbook pages
(dev corpus of tests/quality) and dropped the DocBook sidebars (the tips and warnings,
26 % of the handbook) and many headings, which carry the section anchors a citation
links to; readability-style extraction picks one main block the same way. What pages
of manuals add around the text is caught by three generic rules: semantic tags and
ARIA roles (nav, header, footer, aside), class/id names of furniture (docnav,
navheader, breadcrumbs, toc, ...), and link density (readability's rule): a list,
table or block whose text is mostly links is a navigation bar, a table of contents or
an index; a list of questions (every item ends with "?") is a FAQ's index, not an answer.
"""

from __future__ import annotations

import re
from contextlib import suppress

from lxml import etree
from lxml import html as lxml_html

from helpfaster_box.knowledge.parsers.base import (
    ParsedDocument,
    Section,
    decode_text,
    guard,
)

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
# A page's own header and footer by name too ("page-header", "footer", "banner": the
# httpd manual repeated "Apache HTTP Server Version 2.4" and its copyright on every page,
# both quoted as answers; the Debian handbook its "Download the ebook" banner), not a
# bare "header": "section-header", "card-header" hold the text's own headings.
_BOILER_NAME = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navigation|menu|breadcrumbs?|cookies?|consent|gdpr"
    r"|skip-?link|share|sharing|social|ads?|advert\w*|sponsored|popup|modal|pagination"
    r"|pager|newsletter|subscribe|footer|page-?header|site-?header|masthead|banner)(?:$|[\s_-])",
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


_DTD_SUBSET = re.compile(r"""^\s*<!DOCTYPE[^\[>]*\[(?:[^\]"']|"[^"]*"|'[^']*')*\]\s*>""", re.I)


def _html_text(data: bytes) -> str:
    declared = _META_CHARSET.search(data[:4096])
    text = None
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        with suppress(LookupError):
            text = data.decode(declared.group(1).decode(), errors="replace")
    # lxml refuses str input that still carries an XML encoding declaration (XHTML pages).
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text if text is not None else decode_text(data))
    # The HTML parser ends a DOCTYPE at its first '>', leaving an internal DTD subset's
    # "]>" (and any entity text) in the page: drop the subset; entities are never expanded.
    return _DTD_SUBSET.sub("<!DOCTYPE html>", text, count=1)


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


def _is_hidden(el: etree._Element) -> bool:
    style = (el.get("style") or "").replace(" ", "").lower()
    return (
        el.get("hidden") is not None
        or el.get("aria-hidden") == "true"
        or "display:none" in style
        or "visibility:hidden" in style
    )


def _unhide_switched(root: etree._Element) -> None:
    """Key names a script picks per platform: a <span> made only of hidden <span>s, one
    of them with an id starting "default" ("<span class=switchinline><span hidden
    id=MAC..>Command</span><span hidden id=default..>Ctrl</span></span>+Z", LibreOffice
    help). Dropping them all lost every key name ("press +Z"); the default one is what
    the page shows without the script. Nothing else hidden is shown: hidden text on
    other pages is spam, dialogs, icon ligatures or text planted for a model."""
    candidates = root.xpath(  # the shape, found by libxml2 (pages have 100,000s of spans)
        "//span[count(*) > 1 and not(*[not(self::span)])]"
        "[span[starts-with(translate(@id, 'DEFAULT', 'default'), 'default')]]"
    )
    for el in candidates:
        kids = [k for k in el if isinstance(k.tag, str)]
        if len(kids) < 2 or (el.text or "").strip() or _is_hidden(el):
            continue
        if any(k.tag != "span" or not _is_hidden(k) or (k.tail or "").strip() for k in kids):
            continue
        marked = [k for k in kids if (k.get("id") or "").lower().startswith("default")]
        if len(marked) == 1:
            for attr in ("hidden", "aria-hidden", "style"):
                marked[0].attrib.pop(attr, None)


def _strip_boilerplate(root: etree._Element) -> None:
    _unhide_switched(root)
    for el in list(root.iter(*_DROP)):
        if el.tag == "header" and el.xpath("ancestor::article | ancestor::main"):
            continue  # an article's own header carries its h1
        el.drop_tree()
    page_len = len(root.text_content())
    for el in list(root.iter(etree.Element)):
        hidden = _is_hidden(el) or (el.get("role") or "").lower() in _BOILER_ROLES
        # Class names are a weak signal: never let one remove the page's main content,
        # nor a heading (Bootstrap 3 styles them with "page-header").
        named = el.tag not in _HEADINGS and _named(el, _BOILER_NAME)
        if (
            named
            and not hidden
            and (el.xpath(".//h1 | .//main | .//article") or len(el.text_content()) > page_len // 2)
        ):
            continue
        if (hidden or named) and el.tag not in ("html", "body"):
            el.drop_tree()


# Furniture of manuals (DocBook, Sphinx, Javadoc-like generators), by class or id.
_FURNITURE_NAME = re.compile(
    r"(?:^|[\s_-])(?:docnav|navheader|navfooter|subnav|topnav|sidenav|toc|toctree\w*"
    r"|table-of-contents|crumbs?|related|langs?|language-?list)(?:$|[\s_-])",
    re.IGNORECASE,
)
_LINKY = {"ul", "ol", "dl", "table", "div", "p", "td", "section", "menu"}
LINK_DENSITY = 0.7  # share of a block's text inside links above which it is navigation
MIN_LINKS = 3
SWITCHER_LABEL_CHARS = 40  # text of a language switcher outside its links ("Available Languages:")


def _text_len(el: etree._Element) -> int:
    return len(" ".join(el.text_content().split()))


def _is_navigation(el: etree._Element) -> bool:
    """A block made of links (nav bar, TOC, index) or a list of questions (FAQ index)."""
    if el.tag not in _LINKY or el.xpath(".//h1 | .//main | .//article | .//pre"):
        return False
    total = _text_len(el)
    if total == 0:
        return False
    links = el.xpath(".//a[@href]")
    linked = sum(_text_len(a) for a in links)
    if len(links) >= MIN_LINKS and linked >= LINK_DENSITY * total:
        return True
    # A language switcher: links to the same page in other languages, marked hreflang,
    # with at most a label besides ("Available Languages: en | fr | ja | ko"): too short
    # to be dense, and not a sentence that links two translations.
    alternates = [a for a in links if a.get("hreflang") is not None]
    if alternates and len(links) >= 2 and 2 * len(alternates) >= len(links):
        outside = total - linked - 3 * len(links)  # " | " between
        if outside <= SWITCHER_LABEL_CHARS:
            return True
    if el.tag in ("ul", "ol"):
        items = [" ".join(li.text_content().split()) for li in el.xpath("./li")]
        return len(items) >= MIN_LINKS and all(i.endswith("?") for i in items)
    return False


def _named(el: etree._Element, names: re.Pattern[str]) -> bool:
    """Whether the element's class or id is one of `names`, never for code: a
    highlighter's classes ("prettyprint lang-config", "lang-js") name the code's
    language, and read as a language list they dropped every configuration example of
    the httpd manual. The name first: an xpath call on each of a page's 100,000s of
    elements costs seconds."""
    cls, ident = el.get("class") or "", el.get("id") or ""
    if not names.search(f"{cls} {ident}"):
        return False
    if el.tag in ("pre", "code") or el.xpath(".//pre"):
        return False
    return bool(names.search(cls)) or not _heading_slug(el, ident)


def _heading_slug(el: etree._Element, ident: str) -> bool:
    """Whether `ident` is made from the text of the element's first heading, of two words
    or more: Sphinx's <section id="changing-the-footer"> (the anchor of its heading,
    "Changing the footer"), not <div id="footer"> with a hidden "Footer" heading."""
    heading = el.xpath("(.//h1 | .//h2 | .//h3 | .//h4 | .//h5 | .//h6)[1]")
    if not heading:
        return False
    words = heading[0].text_content().split()
    key = re.sub(r"[\W_]+", "", "".join(words).lower())
    return len(words) >= 2 and bool(key) and re.sub(r"[\W_]+", "", ident.lower()).endswith(key)


def _strip_navigation(root: etree._Element) -> None:
    for el in list(root.iter(etree.Element)):
        named = _named(el, _FURNITURE_NAME)
        if named and el.tag not in ("html", "body") and not el.xpath(".//h1 | .//main | .//article"):
            el.drop_tree()
    # Outermost first: once a block is dropped, its descendants are gone with it.
    for el in list(root.iter(*_LINKY)):
        if el.getparent() is not None and el is not root and _is_navigation(el):
            el.drop_tree()


def _parse_html(data: bytes, navigation: bool = False) -> ParsedDocument:
    """`navigation`: keep link lists (a page that is nothing but a table of contents,
    like a manual's chapter index, is then still ingested as what it is)."""
    with guard("HTML"):
        parser = lxml_html.HTMLParser(remove_comments=True, remove_pis=True, no_network=True)
        doc = lxml_html.document_fromstring(_html_text(data), parser=parser)
        title = " ".join(" ".join(doc.xpath("//title//text()")).split()) or None
        if not title:
            first_h1 = doc.xpath("//h1")
            title = " ".join(first_h1[0].text_content().split()) if first_h1 else None
        _strip_boilerplate(doc)
        if not navigation:
            _strip_navigation(doc)
        _drop_self_links(doc)  # after: link density counts them, as it always did
        mains = doc.xpath("//main | //*[@role='main']") or doc.xpath("//article")
        root = mains[0] if len(mains) == 1 and mains[0].text_content().strip() else doc.body
        sections = _html_sections(root)
        if not navigation and not any(sec.text.strip() for sec in sections):
            return _parse_html(data, navigation=True)
        return ParsedDocument(title, sections)


# A table cell is read as one piece of its row ("--minimized | Starts minimized. The
# splash screen is not displayed."), even when the page wraps its text in <p> or <div>:
# read as blocks, each cell was a paragraph of its own, with a "|" line between cells, and
# an option's description was quoted without the option (dev corpus: LibreOffice's
# command-line table). A cell that holds a page layout rather than a value (a heading, a
# nested table, a code block, or a lot of text) is still read block by block.
CELL_MAX_CHARS = 1500
TERM_MAX_CHARS = 120  # a <dt> this short is joined to its definition's first paragraph
TERM_JOIN = " — "
# The permalink a generator appends to each heading (Sphinx "Title¶", the httpd manual
# "Title ¶", GitHub "Title #"): not part of the title a citation shows.
_PERMALINK = re.compile(r"\s*[¶§🔗]$|\s+#$")


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufe0e\ufe0f\ufeff"))


def _drop_self_links(root: etree._Element) -> None:
    """A heading's link to itself shown as a mark and no word (MkDocs "Title#" with no
    space before it, Docusaurus a zero-width space): dropped, the heading's text kept.
    _PERMALINK catches the marks that are not links."""
    for heading in list(root.iter(*_HEADINGS)):
        for a in list(heading.iter("a")):
            if (
                not (a.get("href") or "").startswith("#")
                or a.get("id") is not None
                or a.get("name") is not None
            ):
                continue
            mark = "".join(a.text_content().translate(_INVISIBLE).split())
            if len(mark) <= 2 and not any(ch.isalnum() for ch in mark):
                a.drop_tree()


def _inline_cell(el: etree._Element) -> bool:
    """Read as one piece of its row: no layout (table, heading), nothing whose lines or
    items must stay apart (code, line breaks, lists), not long."""
    if el.xpath(
        ".//table | .//pre | .//br | .//ul | .//ol | .//dl | .//h1 | .//h2 | .//h3 | .//h4 | .//h5 | .//h6"
    ):
        return False
    return _text_len(el) <= CELL_MAX_CHARS


def _html_sections(root: etree._Element) -> list[Section]:
    reader = _SectionReader()
    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag if isinstance(el.tag, str) else ""
        if event == "start":
            reader.start(el, tag)
        else:
            reader.end(el, tag, add_tail=el is not root)
    return reader.finish()


class _SectionReader:
    """The text of a page, cut into sections at headings and into paragraphs at blocks."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.heading: tuple[str | None, str | None, int] = (None, None, 0)
        self.paras: list[str] = []
        self.buf: list[str] = []
        self.buf_text = False  # buf holds more than whitespace
        self.in_heading: etree._Element | None = None
        self.pre_depth, self.buf_pre = 0, False
        self.cell: etree._Element | None = None  # the inline cell being read
        self.term: int | None = None  # index in paras of a <dt> waiting for its definition
        self.dd_depth = 0

    def flush(self) -> None:
        text = "".join(self.buf)
        lines = [ln.rstrip() if self.buf_pre else " ".join(ln.split()) for ln in text.split("\n")]
        text = "\n".join(ln for ln in lines if ln.strip()).strip("\n")
        self.buf.clear()
        self.buf_pre = self.buf_text = False
        if not text.strip():
            return
        if self.term is not None and self.dd_depth and self.term == len(self.paras) - 1 and "\n" not in text:
            # "linux-headers-version — contains the header files ...": the term stays
            # with what it means ("Starts minimized." alone does not say which option).
            self.paras[-1] = f"{self.paras[-1]}{TERM_JOIN}{text}"
            self.term = None
            return
        self.paras.append(text)

    def add(self, text: str | None) -> None:
        if text:
            self.buf.append(text if self.pre_depth else re.sub(r"\s+", " ", text))
            self.buf_pre = self.buf_pre or self.pre_depth > 0
            self.buf_text = self.buf_text or not text.isspace()

    def new_section(self, el: etree._Element) -> None:
        self.flush()
        self.sections.append(
            Section(self.heading[0], self.heading[1], "\n\n".join(self.paras), self.heading[2])
        )
        self.paras.clear()
        self.term = None
        self.in_heading = el

    def start(self, el: etree._Element, tag: str) -> None:
        if tag in _HEADINGS and self.in_heading is None:
            self.new_section(el)
        elif self.in_heading is not None:
            pass  # markup inside a heading stays part of the heading text
        elif self.cell is not None:
            if tag in _BLOCK or tag == "br":
                self.buf.append(" ")  # a paragraph or line inside a cell: part of the cell
        elif tag == "br":
            self.buf.append("\n")
        elif tag in ("td", "th"):
            if self.buf_text and not self.buf[-1].endswith("\n"):
                self.buf.append(" | ")
            if _inline_cell(el):
                self.cell = el
        elif tag in _BLOCK:
            self.flush()
            if tag == "dt" or (self.dd_depth and tag not in ("p", "div", "dd")):
                self.term = None  # a definition that opens with a list, code or a nested list
            self.dd_depth += tag == "dd"
        self.pre_depth += tag == "pre"
        self.add(el.text)

    def end(self, el: etree._Element, tag: str, add_tail: bool) -> None:
        if el is self.in_heading:
            text = _PERMALINK.sub("", " ".join("".join(self.buf).split()))
            self.buf.clear()
            self.heading = (text, _heading_anchor(el), _HEADINGS[tag]) if text else (None, None, 0)
            self.in_heading = None
        elif el is self.cell:
            self.cell = None
        elif self.cell is not None:
            if tag in _BLOCK:
                self.buf.append(" ")
        elif tag in _BLOCK and self.in_heading is None:
            self.end_block(tag)
        self.pre_depth -= tag == "pre"
        if add_tail:
            self.add(el.tail)

    def end_block(self, tag: str) -> None:
        before = len(self.paras)
        self.flush()
        if tag == "dt":
            last = self.paras[-1] if len(self.paras) > before else ""
            fits = bool(last) and len(last) <= TERM_MAX_CHARS and "\n" not in last
            self.term = len(self.paras) - 1 if fits else None
        elif tag == "dd":
            self.dd_depth -= 1
            self.term = None

    def finish(self) -> list[Section]:
        self.flush()
        self.sections.append(
            Section(self.heading[0], self.heading[1], "\n\n".join(self.paras), self.heading[2])
        )
        return self.sections
