"""Answer units: the pieces of a chunk an extractive reply quotes whole.

Defined here, beside the chunker, because ingestion stores a vector per unit
(`chunk_sentences`) and chat ranks the same units: both sides must cut a passage the
same way. Why not plain sentences: the Debian handbook and the test manuals introduce
commands, code blocks and lists with a sentence ending in a colon ("To list the files,
execute the command:"); quoting that sentence alone was a large share of the misses
of the baseline eval (tests/quality/results.md).
"""

from __future__ import annotations

import functools
import re

# Answer units (see `unit_spans`): prose splits after . ! ? only, never inside `code`.
_PROSE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(`$/-])")
_PARAGRAPH = re.compile(r"\S(?:.*?\S)?(?=\s*\n\s*\n|\s*$)", re.DOTALL)
UNIT_MAX_CHARS = 900  # a code block or list an intro sentence carries, at most
LIST_ITEM_CHARS = 160  # a paragraph this short after an intro is an item of its list
LIST_MAX_ITEMS = 8
# A shell or SQL prompt starts a command line in a terminal transcript: "$ dpkg -S x",
# "# journalctl -u ssh", "postgres=# SELECT 1;".
_PROMPT = re.compile(r"^(?:[$#%] |\w+=?[#>] )", re.MULTILINE)
BLOCK_MAX_CHARS = 600  # a transcript without prompts is cut into pieces about this long


def _block_units(start: int, body: str) -> list[tuple[int, int, bool]]:
    """A preformatted paragraph as units: each command line of a transcript with its
    output, else the block whole, cut at lines when it is long. The first piece
    starts the paragraph (an intro sentence before it takes only that one)."""
    cuts = sorted({0, *(m.start() for m in _PROMPT.finditer(body))})
    pieces: list[tuple[int, int]] = []
    for a, b in zip(cuts, [*cuts[1:], len(body)], strict=True):
        while b - a > BLOCK_MAX_CHARS and (nl := body.rfind("\n", a + 1, a + BLOCK_MAX_CHARS)) > a:
            pieces.append((a, nl))
            a = nl + 1
        pieces.append((a, b))
    out: list[tuple[int, int, bool]] = []
    for a, b in pieces:
        text = body[a:b]
        a2, b2 = a + len(text) - len(text.lstrip()), b - (len(text) - len(text.rstrip()))
        if b2 > a2:
            out.append((start + a2, start + b2, not out))
    return out


def unit_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of the answer units of a passage, in order.

    A unit is a prose sentence, or a preformatted paragraph (a code block or other
    line-broken text: the parsers keep its newlines, prose has none) kept whole, or a
    sentence ending in a colon together with what it introduces: the next paragraph
    (a command, a code block) and, when that is a short item, the items after it
    (a list). A colon-ending sentence with nothing after it stays a unit of its own,
    and `extractive_answer` never quotes one.
    """
    base: list[tuple[int, int, bool]] = []  # start, end, starts a paragraph
    for para in _PARAGRAPH.finditer(text):
        start, body = para.start(), para.group(0)
        if "\n" in body:
            base += _block_units(start, body)
            continue
        cut = start
        for m in _PROSE_END.finditer(body):
            if body[: m.start()].count("`") % 2:  # inside inline code
                continue
            base.append((cut, start + m.start(), cut == start))
            cut = start + m.end()
        base.append((cut, para.end(), cut == start))
    units: list[tuple[int, int]] = []
    i = 0
    while i < len(base):
        start, end, _ = base[i]
        i += 1
        if text[start:end].rstrip().endswith(":"):
            end, i = _introduced(text, base, i, end)
        units.append((start, end))
    return units


def _introduced(text: str, base: list[tuple[int, int, bool]], i: int, end: int) -> tuple[int, int]:
    """Extend an intro unit ending at `end` over what follows it, from base[i]: a whole
    next paragraph, or a run of short one-sentence items (a list). Returns (end, next i)."""
    items = 0
    while i < len(base) and base[i][2] and items < LIST_MAX_ITEMS:
        j = i  # the paragraph base[i] begins: base[i..j]
        while j + 1 < len(base) and not base[j + 1][2]:
            j += 1
        body = text[base[i][0] : base[j][1]]
        if "\n" in body:  # a code block: the intro carries its first command (and output)
            j, body = i, text[base[i][0] : base[i][1]]
        item = j == i and len(body) <= LIST_ITEM_CHARS and "\n" not in body
        if items and (not item or _prose(body) or introduces(body) or base[j][1] - end > UNIT_MAX_CHARS):
            break
        end, i, items = base[j][1], j + 1, items + 1
        if not item or introduces(body):
            break  # a code block or a paragraph: it alone is what was introduced
    return end, i


def _prose(paragraph: str) -> bool:
    """A sentence of running text (not a list item, a command or a name)."""
    return paragraph.endswith(".") and len(paragraph.split()) >= 8


def units(text: str) -> list[str]:
    return list(_units(text))


@functools.lru_cache(maxsize=4096)
def _units(text: str) -> tuple[str, ...]:
    # A chat turn splits each of its passages twice (to check the stored units still
    # match, then to rank them), and popular chunks come back turn after turn: ~0.08 ms
    # a passage saved each time; 4096 chunk texts of <= ~2 kB are a few MB at most.
    return tuple(text[a:b] for a, b in unit_spans(text) if b - a > 1)


def introduces(unit: str) -> bool:
    """A unit that ends on a colon: it announces something it does not carry."""
    return unit.rstrip().endswith(":")


def is_code(unit: str) -> bool:
    """A preformatted block (a command, a configuration, a transcript): its first
    paragraph is broken into lines, where prose, an intro sentence and a list item are
    one line each."""
    return "\n" in unit.strip().split("\n\n", 1)[0]


def head(unit: str) -> str:
    """What a unit is ranked by: its first line, the sentence that says what it is (an
    intro sentence, not the output it carries; the command line of a code block). Ranking
    whole long units let command output that repeats the question's words win (dev
    corpus: 3 of 51 answers lost)."""
    return unit.split("\n", 1)[0].strip() or unit


def unit_pieces(prefix: str, text: str) -> tuple[list[str], list[int]]:
    """`prefix + text` cut into consecutive pieces, and which pieces are the heads of
    `units(text)` (in order): what `Embedder.embed_spans` needs to give each unit the
    vector of its head, read in the context of the passage."""
    pieces, which, at = [prefix], [], 0
    for a, b in unit_spans(text):
        if b - a <= 1:
            continue
        pieces.append(text[at:a])
        unit = text[a:b]
        first = unit.split("\n", 1)[0]
        which.append(len(pieces))
        pieces.append(first)
        pieces.append(unit[len(first) :])
        at = b
    pieces.append(text[at:])
    return pieces, which
