"""Markdown: ATX / setext headings become sections with GitHub-style anchors."""

from __future__ import annotations

import re

from helpfaster_box.knowledge.parsers.base import (
    ParsedDocument,
    Section,
    paragraphs,
)

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
        sections.append(Section(heading, anchor, paragraphs(_md_inline("\n".join(body))), level))
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
    sections.append(Section(heading, anchor, paragraphs(_md_inline("\n".join(body))), level))
    return ParsedDocument(title, sections)
