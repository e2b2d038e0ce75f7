"""Answer composition that stays right with a tiny model.

- ranking: the passage sentences (answer units) that best match a question;
- extractive answers: those sentences verbatim, no generation;
- snippets: the part of a passage around the quoted sentences.

What a word and a sentence are: lexicon.py. The guards on a generated reply
(grounding, leaks): guards.py.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from helpfaster_box.chat.lexicon import WORD, content_words
from helpfaster_box.knowledge.units import UNIT_MAX_CHARS, head, introduces, is_code, units

__all__ = ["introduces", "is_code", "units"]

Embed = Callable[[list[str]], np.ndarray]


def _overlap(query_words: set[str], sentence: str) -> float:
    words = _words(sentence)
    if not words or not query_words:
        return 0.0
    return len(words & query_words) / len(query_words)


# What ranking reads of a unit depends on its text alone, and the same chunks come back
# turn after turn (with their neighbours, ~45 units a turn): kept per text.
@functools.lru_cache(maxsize=8192)
def _words(sentence: str) -> frozenset[str]:
    return frozenset(content_words(sentence))


@dataclass(slots=True)
class ScoredSentence:
    passage: int  # index into the passages given
    position: int  # index of the sentence inside its passage
    text: str
    score: float
    cosine: float = 0.0  # of the unit to the question


def rank_sentences(
    question: str,
    passages: Sequence[str],
    embed: Embed | None,
    query_vec: np.ndarray | None = None,
    vectors: Sequence[np.ndarray | None] | None = None,
    penalties: Sequence[float] | None = None,
) -> list[ScoredSentence]:
    """Every answer unit of the passages scored against the question, best first.

    Meaning (embedding cosine) carries most of the weight; shared rare words break ties
    and rescue exact terms the embedding blurs. `vectors[p]`, when given, holds the
    vectors of `units(passages[p])` computed at ingestion; passages without them are
    embedded here (needs `embed`). `penalties[p]` is taken off every unit of passage p
    (default 0.03 per rank: retrieval already ordered the passages by relevance).
    """
    found = [
        ScoredSentence(p, i, u, 0.0) for p, text in enumerate(passages) for i, u in enumerate(units(text))
    ]
    if not found:
        return []
    qwords = set(content_words(question))
    scoring = embed is not None or vectors is not None
    wants_code = asks_for_code(question)
    cos = np.zeros(len(found), dtype=np.float32)
    if scoring:
        q = query_vec if query_vec is not None else (embed([question])[0] if embed else None)
        if q is not None:
            cos = _unit_vectors(found, passages, embed, vectors) @ q
    for s, c in zip(found, cos, strict=False):
        s.cosine = float(c)
        penalty = penalties[s.passage] if penalties is not None else RANK_PENALTY * s.passage
        s.score = float(c) + OVERLAP_WEIGHT * _overlap(qwords, head(s.text)) - penalty
        if scoring:  # answering a question (not matching a reply to its passages)
            s.score += TERM_BONUS * _has_term(s.text) - SHORT_PENALTY * _fragment(s.text)
            if wants_code and shows_code(s.text):
                s.score += CODE_BONUS
    return sorted(found, key=lambda s: s.score, reverse=True)


def rerank(
    ranked: list[ScoredSentence],
    embed: Embed,
    query_vec: np.ndarray,
    top: int,
    known: Callable[[ScoredSentence], np.ndarray | None],
    eligible: Callable[[ScoredSentence], bool],
) -> tuple[list[ScoredSentence], list[tuple[ScoredSentence, np.ndarray]]]:
    """Re-score the `top` best quotable units with their heads' standalone vectors.

    The stored unit vectors are read in the context of their passage (free at
    ingestion), which blurs neighbouring sentences together: on the dev corpus, ranking
    by them alone holds the key fact in 0.627 of the answers, against 0.706 with
    standalone vectors. Their shortlist is good, though: re-scoring its 8 best with
    standalone vectors gives 0.706 again (4: 0.686). `known(s)` is a unit's standalone
    vector when already computed; the others are embedded here (one batch) and returned
    as (unit, vector) so the caller can keep them. Only `eligible` units are re-scored
    (those whose cosine came from in-context vectors).
    """
    short = [s for s in ranked if not introduces(s.text) and eligible(s)][:top]
    if not short:
        return ranked, []
    vecs = [known(s) for s in short]
    missing = [i for i, v in enumerate(vecs) if v is None]
    computed: list[tuple[ScoredSentence, np.ndarray]] = []
    if missing:
        fresh = embed([head(short[i].text) for i in missing])
        for i, v in zip(missing, fresh, strict=True):
            vecs[i] = v
            computed.append((short[i], v))
    for s, v in zip(short, vecs, strict=True):
        c = float(np.asarray(v) @ query_vec)
        s.score += c - s.cosine
        s.cosine = c
    return sorted(ranked, key=lambda s: s.score, reverse=True), computed


def without_repeats(
    ranked: list[ScoredSentence], passages: Sequence[str], parents: Sequence[int], retrieved: int
) -> list[ScoredSentence]:
    """`ranked` without the units of an added passage (index >= `retrieved`: a chunk
    next to retrieved passage `parents[i]`) that its retrieved passage holds too.
    Consecutive chunks share their cut, whole sentences: the copy would otherwise stand
    for "another passage" just under the original, and push a second source's unit out
    of the reply."""
    own = [" ".join(passages[p].split()) for p in range(retrieved)]
    return [
        s for s in ranked if s.passage < retrieved or " ".join(s.text.split()) not in own[parents[s.passage]]
    ]


def _unit_vectors(
    found: list[ScoredSentence],
    passages: Sequence[str],
    embed: Embed | None,
    vectors: Sequence[np.ndarray | None] | None,
) -> np.ndarray:
    given: list[np.ndarray | None] = list(vectors) if vectors is not None else [None] * len(passages)
    missing = [p for p, v in enumerate(given) if v is None or len(v) != len(units(passages[p]))]
    if missing:
        if embed is None:
            raise ValueError("unit vectors missing and no embedder to compute them")
        texts = [head(s.text) for s in found if s.passage in missing]
        computed = embed(texts)
        at = 0
        for p in missing:
            n = sum(1 for s in found if s.passage == p)
            given[p] = computed[at : at + n]
            at += n
    rows = [given[s.passage][s.position] for s in found]  # type: ignore[index]  # all filled above
    return np.asarray(rows, dtype=np.float32)


# Sentence ranking, measured on tests/quality (Debian handbook, 51 questions): a bare
# embedding ranking prefers sentences that restate the question ("During installation,
# this package will ask you to select a set of supported languages") and short headings
# ("Static configuration") over the sentence holding the answer, which in a support
# corpus usually names a command, a path or an option.
# OVERLAP_WEIGHT was 0.3, set on the handbook alone; swept on the three dev corpora in
# session 5 (key facts of 51 / 69 / 63, handbook / LibreOffice / apache2-doc): 0.0 37 /
# 51 / 35 (apache declines 16 -> 15 of 19), 0.1 36 / 52 / 35 (the same), 0.15 36 / 52 / 34,
# 0.2 38 / 50 / 34, 0.25 37 / 50 / 34, 0.3 37 / 49 / 34, 0.4 36 / 48 / 30. 0.2: the best
# of those that keep every decline, no corpus worse than at 0.3.
OVERLAP_WEIGHT = 0.2
RANK_PENALTY = 0.03  # per passage rank: later passages rank lower
TERM_BONUS = 0.2  # the sentence names a command, path, option, file or menu path
SHORT_PENALTY = 0.1  # a heading, a list item or a bare code line, not an answer
_TERM = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)+|(?<!\w)/[A-Za-z0-9._-]+|(?<!\w)--?[a-z][a-z-]*")


# A menu path ("Choose Insert - Pivot Table.", "Tools → AutoText") or a key combination
# ("Shift+Ctrl+Enter") is the end-user manual's command: where a feature is, how to do it.
# Dev (LibreOffice help, 69 questions): menu paths 0.536 -> 0.580, key combinations (after
# the parser kept key names) 0.667 -> 0.681; the Debian handbook unchanged by both; a bonus
# for imperative steps ("Click ...", "Select ...") instead lost 1-2 questions (in a
# procedure every sentence is a step).
_CAP = "A-ZÀ-ÖØ-Þ"
_MENU = re.compile(
    rf"\b[{_CAP}][\w&]*(?: [\w&]+){{0,3}} (?:→|▸|›) [{_CAP}]"  # an arrow: always a menu path
    # a dash or ">" only after a word that leads to one ("Choose Tools - Options"), not
    # "Note - This is deprecated." or "If Size > Limit ..."
    rf"|\b(?:[Cc]hoos\w*|[Ss]elect\w*|[Cc]lick\w*|[Oo]pen\w*|[Gg]o to|[Uu]s(?:e|ing)|via|from|in|of|under|on)"
    rf"(?: the)? [{_CAP}][\w&]*(?: [{_CAP}&][\w&]*){{0,3}} (?:-|–|>) [{_CAP}]"
    r"|\b(?:Ctrl|Shift|Alt|Cmd|Command|Option|Fn|Super)\s*\+\s*\w"  # a key combination
)


# A question that asks for a command or a configuration ("which command ...", "what do I
# put in the config to ...", "how do I turn on ...") is answered by the unit that shows
# one: a code block, or an intro sentence with the block it carries ("These can be used
# as follows in your apache2.conf file: SSLCertificateFile ..."), whose head alone ranks
# low (its cosine to the question is often 0.2-0.3: it says "as follows", not what).
# Dev, session 7 (key fact of 51 / 69 / 63, handbook / LibreOffice / apache2-doc; a
# replay of the selection over every question's ranked units): 40 / 50 / 36 before;
# +0.2 for such units when the question asks for one: 42 / 50 / 38 (+0.1 41 / 50 / 37,
# +0.3 41 / 50 / 38); for every question instead of only those: 39 / 48 / 37 (prose
# answers lose to the blocks beside them); questions matching: 10 / 4 / 8 of 51 / 69 / 63.
CODE_BONUS = 0.2
_ASKS_CODE = re.compile(
    r"\b(?:commands?|config\w*|directives?|syntax|enabl\w*|turn(?:ing)? on|switch(?:ing)? on)\b", re.I
)


def asks_for_code(question: str) -> bool:
    return bool(_ASKS_CODE.search(question))


def shows_code(unit: str) -> bool:
    """A code block, or an intro sentence ending on a colon with what it introduces."""
    first = head(unit)
    return is_code(unit) or (introduces(first) and len(unit.strip()) > len(first) + 2)


@functools.lru_cache(maxsize=8192)
def _has_term(sentence: str) -> bool:
    if _MENU.search(head(sentence)):
        return True
    return any(
        not m.group(0).replace(".", "").isdigit() and not re.fullmatch(r"[A-Za-z]\.[A-Za-z]\.?", m.group(0))
        for m in _TERM.finditer(sentence)
    )


def _fragment(sentence: str) -> bool:
    return len(WORD.findall(sentence)) < 6


NEIGHBOUR_GAP = 0.3  # up to 3 sentences: the answer often sits next to the best match


def extractive_answer(ranked: list[ScoredSentence], max_chars: int = 450) -> tuple[str, int]:
    """The best unit plus its strong neighbours from the same passage, in document order.

    A unit that only introduces something (ends on a colon, with nothing after it in
    its passage) is never quoted, so a reply never ends on a colon; a unit may be
    longer than max_chars (a command with its intro, a short list): it stays whole.
    Returns (answer, passage index it came from); ("", -1) when no unit can be quoted.
    """
    usable = [s for s in ranked if not introduces(s.text)]
    if not usable:
        return "", -1
    best = usable[0]
    chosen = [best]
    for s in usable[1:]:
        if s.passage != best.passage or s.score < best.score - NEIGHBOUR_GAP:
            continue
        carries = s.position == best.position + 1 and introduces(head(s.text))
        if sum(len(c.text) for c in chosen) + len(s.text) > max_chars and not carries:
            continue  # the unit right after the best one that shows a command always fits
        chosen.append(s)
        if len(chosen) == 3:
            break
    before = _antecedent(ranked, best, chosen, max_chars)
    if before is not None:
        chosen.append(before)
    after = _follower(ranked, best, chosen, max_chars)
    if after is not None:
        chosen.append(after)
    chosen.sort(key=lambda s: s.position)
    return join_quoted(chosen), best.passage


# Another passage's best unit joins the reply when it scores within this of the chosen
# unit: the question is then about as well answered by two passages, and the one
# retrieval put first is often not the one with the answer. Dev (eval, extractive): key
# fact debian-handbook 0.667 -> 0.686, libreoffice-help-en-us 0.623 -> 0.667 at 0.1 (only
# another source's passage then). Session 5, another passage of the same page too: 0.686
# -> 0.706 and 0.681 -> 0.710 (one page's steps split over two chunks: "Choose Table -
# Insert Table." after "There are several ways to create a table"); then, with apache2-doc
# as a third dev corpus, the gap swept again: 0.15 +2 questions of 183, 0.2 and 0.25 +3
# (apache2-doc 0.508 -> 0.540, the handbook 0.706 -> 0.725), 0.3 +4. The smallest gap of
# that plateau: half the replies had a second quote at 0.1, three quarters at 0.2 (median
# reply 334 -> 362 characters).
SECOND_QUOTE_GAP = 0.2


def second_quote(ranked: list[ScoredSentence], reply: str, max_chars: int = 450) -> list[ScoredSentence]:
    """The best quotable unit of another passage, with the unit before it when it points
    back ("This is done with ..."), when it is nearly as good as the best unit, the one
    `reply` was built on; [] otherwise, and for a text the reply already holds (chunks
    of one page overlap)."""
    usable = [s for s in ranked if not introduces(s.text)]
    if not usable:
        return []
    best = usable[0]
    other = next((s for s in usable if s.passage != best.passage), None)
    if other is None or other.score < best.score - SECOND_QUOTE_GAP or len(other.text) > max_chars:
        return []
    said, new = " ".join(reply.split()), " ".join(other.text.split())
    if new in said or said in new:  # the same text in two passages, or one holding the other
        return []
    # Consecutive chunks of a page share their cut, a sentence too long to carry whole
    # as its last words: the reply's passage holds the new text, or the new text a unit
    # the reply quotes (not a few words, "hfctl start", that any text may hold).
    own = [" ".join(s.text.split()) for s in ranked if s.passage == best.passage]
    if any((new in u and not _fragment(new)) or (u in said and u in new and not _fragment(u)) for u in own):
        return []
    before = _antecedent(ranked, other, [other], max_chars)
    return [before, other] if before is not None and " ".join(before.text.split()) not in said else [other]


ELISION = " … "
SOURCE_BREAK = "\n\n"  # between the quotes of two sources


def join_quoted(chosen: list[ScoredSentence]) -> str:
    """Units in document order; where the passage has text between two of them, an
    ellipsis says so, as in any quotation. Joined with a bare space, a unit that ends
    without a full stop ("back-ups;", a table cell) ran into the next one, and the
    reader looking for that "sentence" in the snippet could not find it (dev: 4 of the
    109 answered replies). A code block starts on a line of its own, as in the passage."""
    out = chosen[0].text
    for prev, cur in pairwise(chosen):
        if cur.position != prev.position + 1:
            out += ELISION
        else:
            out += "\n" if is_code(cur.text) else " "
        out += cur.text
    return out


# A unit that opens by pointing back ("In addition, ...", "This ...", "However, ...") is
# not a whole answer without the unit before it. Dev (offline replay of the selection over
# the stored units): libreoffice-help-en-us +1 key fact of 69 ("In addition, developers can
# use ... Java" now comes with "LibreOffice internally supports the following scripting
# languages: ..."), debian-handbook unchanged.
_POINTS_BACK = re.compile(
    r"(?:In addition|Additionally|Also|However|This|These|That|It|They|Then|Otherwise|Alternatively"
    r"|For example|For instance|Likewise|Similarly|Moreover|Furthermore|In this case|In that case|Such)\b"
)


def _beside(ranked: list[ScoredSentence], unit: ScoredSentence, step: int) -> ScoredSentence | None:
    """The unit `step` places from `unit` in its passage (-1: the one before it)."""
    return next((s for s in ranked if s.passage == unit.passage and s.position == unit.position + step), None)


def _antecedent(
    ranked: list[ScoredSentence], best: ScoredSentence, chosen: list[ScoredSentence], max_chars: int
) -> ScoredSentence | None:
    if not _POINTS_BACK.match(best.text):
        return None
    prev = _beside(ranked, best, -1)
    if prev is None or prev in chosen or len(prev.text) > max_chars:
        return None
    return prev


# What continues the quoted unit: the unit right after it, when it points back to it
# ("This set can be changed at any time by running dpkg-reconfigure locales as root.")
# or is the code block it describes ("In each case, we want to run hosts on ports 80
# and 8080." and then "Listen 172.20.30.40:8080 ..."): the reply is about the best unit,
# and these say what to do about it. A code block may pass max_chars, up to
# units.UNIT_MAX_CHARS (blocks are cut at lines into pieces of ~BLOCK_MAX_CHARS).
# Dev (session 6, key fact of 51 / 69 / 63): 38 / 50 / 35 -> 40 / 50 / 36, no question
# lost, declines and snippets unchanged; pointing back alone +1, code alone +2; "He /
# She / His / Their ..." as pointing back (either side): no change. Median answered
# reply 368 -> 395 characters.
def _follower(
    ranked: list[ScoredSentence], best: ScoredSentence, chosen: list[ScoredSentence], max_chars: int
) -> ScoredSentence | None:
    nxt = _beside(ranked, best, +1)
    if nxt is None or nxt in chosen or introduces(nxt.text):
        return None
    if is_code(nxt.text) and not is_code(best.text):
        return nxt if len(nxt.text) <= UNIT_MAX_CHARS else None  # a block with a huge line
    fits = sum(len(c.text) for c in chosen) + len(nxt.text) <= max_chars
    return nxt if fits and _POINTS_BACK.match(nxt.text) else None


def snippet(passage: str, focus: list[str], max_chars: int = 500) -> str:
    """About max_chars of the passage around the focus sentences (not simply its start).

    The focus sentences are always whole in it, however long: a reader must be able to
    verify the quote. The cut ends snap to word boundaries and are marked with "…".
    """
    passage = passage.strip()
    if len(passage) <= max_chars:
        return passage
    located = [(passage.find(f), len(f)) for f in focus if f and passage.find(f) >= 0]
    if not located:
        return passage[: max_chars - 1].rstrip() + "…"
    first = min(a for a, _ in located)
    last = max(a + n for a, n in located)
    extra = max(0, max_chars - (last - first))
    lo = max(0, first - extra // 2)
    hi = min(len(passage), last + (extra - (first - lo)))
    lo = max(0, min(lo, hi - max(max_chars, last - first)))
    if lo > 0:
        space = passage.find(" ", lo, first + 1)
        lo = space + 1 if 0 <= space < lo + 30 else lo
    if hi < len(passage):
        space = passage.rfind(" ", last, hi)
        hi = space if space > hi - 30 else hi
    prefix = "…" if lo > 0 else ""
    suffix = "…" if hi < len(passage) else ""
    return prefix + passage[lo:hi].strip() + suffix
