"""BM25 over chunk texts: a tokenizer that keeps technical terms whole, a token store
that can be saved, and a vectorized BM25 matrix.

Why not `bm25s.BM25.index()`: it builds with a Python loop per document (a Counter
and a set intersection each) over lists of Python ints; on 100k chunks of ~80 tokens
that is ~3 s and ~300 MB of transient objects. Our chunks' token ids are already kept
as one flat int32 array (they are saved with the index), so the same Lucene-variant
BM25 matrix (the formula bm25s uses by default; tests check the scores agree) is built
with a few numpy passes in ~0.8 s. Scoring is the same column-sum over a CSC matrix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Question words and glue; "not"/"no" stay because they flip a support question.
_STOPWORDS = """a an and are as at be been but by can could do does did for from had has have
how i if in into is it its me my of on or our should so than that the their them then there these
they this those to was we were what when where which who why will with would you your"""
STOPWORDS = frozenset(_STOPWORDS.split())
_RUN = re.compile(r"\w[\w.\-/\\:@+#~%=]*")  # a word plus joiners: apt-get, /etc/x.list, err_12
_PART = re.compile(r"[^\W_]+")  # letters/digits only: the pieces of a compound
_SEG = re.compile(r"[/\\]")
_JOINERS = ".-/\\:@+#~%="
# apt-style "E: Unable to ..." / "W: ..." severity prefixes, kept as "e:" and "e:unable".
_LEVEL = re.compile(r"(?<![\w.\-/\\:])([a-z]):\s+(\w+)")


def _stem(word: str) -> str:
    """Harman's S-stemmer: folds plurals only, so it never merges unrelated words."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def _word(part: str, out: list[str]) -> None:
    if part in STOPWORDS or (len(part) == 1 and part.isalpha()):
        return
    out.append(_stem(part))


def tokenize(text: str) -> list[str]:
    """Lowercased terms; a compound (`apt-get`, `ERR_1234`, `/etc/apt/sources.list`) is
    emitted whole AND as its parts, so an exact rare term matches strongly while its
    pieces still match loosely. Queries and chunks go through the same function."""
    text = text.lower()
    out: list[str] = []
    for m in _LEVEL.finditer(text):
        out.append(m.group(1) + ":")
        out.append(f"{m.group(1)}:{m.group(2)}")
    for m in _RUN.finditer(text):
        run = m.group().rstrip(_JOINERS)
        if run.isalnum():  # the common case: a plain word or number
            _word(run, out)
            continue
        parts = _PART.findall(run)
        if len(parts) == 1 and "_" not in run:
            _word(parts[0], out)
            continue
        out.append(run)
        if "/" in run or "\\" in run:  # path or URL: its file name / host is a term too
            for seg in _SEG.split(run):
                seg = seg.strip(_JOINERS)
                if seg and seg != run and not seg.isalnum():
                    out.append(seg)
        for part in parts:
            _word(part, out)
    return out


def take_rows(
    flat: npt.NDArray[np.int32], offsets: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """The token ids of `rows` only, renumbered 0..len(rows)-1."""
    lens = np.diff(offsets)[rows]
    ends = np.cumsum(lens)
    # Every kept token in one gather: its row's old start + its position in the new array
    # - the row's new start.
    shift = np.repeat(offsets[rows] - (ends - lens), lens)
    return flat[shift + np.arange(int(ends[-1]) if len(ends) else 0)], np.concatenate(
        [np.zeros(1, np.int64), ends.astype(np.int64)]
    )


def is_identifier(term: str) -> bool:
    """An error code, path or command (`err_4711`, `0x80070005`, `sources.list`,
    `apt-get`): letters mixed with digits or joiners. Plain words and bare numbers
    ("404", "2024") are too ambiguous to count."""
    return not term.isalpha() and any(c.isalpha() for c in term)


class TokenStore:
    """Every row's token ids as one flat int32 array plus offsets; rows line up with the
    dense index's rows. Arrays are replaced, never changed in place, so a snapshot taken
    under the index lock stays valid while a build reads it without the lock. The
    vocabulary only grows (terms of removed rows simply get document frequency 0)."""

    def __init__(
        self,
        vocab: list[str] | None = None,
        flat: npt.NDArray[np.int32] | None = None,
        offsets: npt.NDArray[np.int64] | None = None,
    ) -> None:
        self.vocab: list[str] = vocab or []
        self.term_id: dict[str, int] = {t: i for i, t in enumerate(self.vocab)}
        self.flat = flat if flat is not None else np.empty(0, np.int32)
        self.offsets = offsets if offsets is not None else np.zeros(1, np.int64)

    @property
    def rows(self) -> int:
        return len(self.offsets) - 1

    def snapshot(self) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], int]:
        return self.flat, self.offsets, len(self.vocab)

    def encode(self, docs: list[list[str]]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        """Term ids of tokenized docs (flat) and their lengths; new terms join the
        vocabulary (harmless before their rows exist: they just have no documents)."""
        ids: list[int] = []
        term_id, vocab = self.term_id, self.vocab
        for toks in docs:
            for tok in toks:
                tid = term_id.get(tok)
                if tid is None:
                    tid = term_id[tok] = len(vocab)
                    vocab.append(tok)
                ids.append(tid)
        lens = np.fromiter((len(t) for t in docs), np.int64, len(docs))
        return np.asarray(ids, np.int32), lens

    def append(self, flat: npt.NDArray[np.int32], lens: npt.NDArray[np.int64]) -> None:
        self.flat = np.concatenate([self.flat, flat])
        self.offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lens)])

    def query_terms(self, text: str) -> npt.NDArray[np.int64]:
        """Distinct known term ids of a query (a repeated query word counts once)."""
        found = {self.term_id[t] for t in tokenize(text) if t in self.term_id}
        return np.fromiter(sorted(found), np.int64, len(found))


@dataclass(frozen=True, slots=True)
class Bm25Matrix:
    """Precomputed BM25 weights, CSC by term: column t lists the rows holding term t.

    Built over every row, dead ones included (the index masks them at search time), so
    scores depend only on the index's rows, not on when the matrix was built: a saved
    and reloaded index ranks exactly like the original. Dead rows keep counting in IDF
    and average length until the next compaction, a skew bounded by `compact_share`."""

    data: npt.NDArray[np.float32]
    rows: npt.NDArray[np.int32]
    indptr: npt.NDArray[np.int64]
    epoch: int  # the row numbering it was built for (changes on compaction)
    covers: int  # index rows [0, covers) are in the matrix

    def scores(self, terms: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        out = np.zeros(self.covers, np.float32)
        for t in terms[terms < len(self.indptr) - 1]:
            a, b = self.indptr[t], self.indptr[t + 1]
            out[self.rows[a:b]] += self.data[a:b]  # rows within a column are unique
        return out

    def rarity(self, term_ids: Sequence[int | None]) -> list[float]:
        """Per term id (None: not in the vocabulary): its idf over the covered rows,
        divided by the idf of a term no row holds, so 1.0 = never used, ~0 = in every
        row (ChatbotIndex.rarity)."""
        n = self.covers
        top = math.log1p((n + 0.5) / 0.5) if n else 1.0
        out = []
        for t in term_ids:
            df = int(self.indptr[t + 1] - self.indptr[t]) if t is not None and t < len(self.indptr) - 1 else 0
            out.append(math.log1p((n - df + 0.5) / (df + 0.5)) / top if n else 1.0)
        return out


def build_bm25(
    flat: npt.NDArray[np.int32],
    offsets: npt.NDArray[np.int64],
    n_vocab: int,
    epoch: int,
    *,
    k1: float = 1.5,
    b: float = 0.75,
) -> Bm25Matrix:
    """Lucene BM25 (as in bm25s's default): idf = ln(1 + (N - df + .5) / (df + .5)),
    weight = idf * tf / (tf + k1 * (1 - b + b * len / avglen))."""
    n = len(offsets) - 1
    n_vocab = max(n_vocab, 1)
    indptr = np.zeros(n_vocab + 1, np.int64)
    if len(flat) == 0:
        return Bm25Matrix(np.empty(0, np.float32), np.empty(0, np.int32), indptr, epoch, n)
    lens = np.diff(offsets)
    row = np.repeat(np.arange(n, dtype=np.int64), lens)
    # Sorting term-major then row gives the CSC order and the tf counts in one pass.
    keys, tf = np.unique(flat.astype(np.int64) * n + row, return_counts=True)
    term = keys // n
    rows = (keys - term * n).astype(np.int32)
    df = np.bincount(term, minlength=n_vocab)
    idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
    dl = lens.astype(np.float32)
    norm = k1 * (1 - b + b * dl / dl.mean())
    tf32 = tf.astype(np.float32)
    data = (idf[term] * tf32 / (tf32 + norm[rows])).astype(np.float32)
    np.cumsum(df, out=indptr[1:])
    return Bm25Matrix(data, rows, indptr, epoch, n)


class Vocabulary:
    """Is a word one the chatbot's documents use (up to a typo or an inflection)?

    A question whose salient word appears nowhere in the documents asks about something
    they never cover ("XLOOKUP", "sourdough"): the strongest sign that an answer drawn
    from them would be a sentence sharing some other word. Lenient on purpose, since
    visitors misspell and inflect: a word counts as known when it is in the vocabulary,
    shares a 5-letter prefix with a vocabulary term ("nightly" ~ "night"), or is one
    edit (insert, delete, substitute) from one, for words of 5+ letters (symmetric
    deletes: the vocabulary's one-deletion variants are kept in a set).
    """

    def __init__(self, vocab: list[str]) -> None:
        words = [t for t in vocab if t.isalpha()]
        self.terms = set(vocab)
        self.prefixes = {t[:5] for t in words if len(t) >= 5}
        self.deletes = {t[:i] + t[i + 1 :] for t in words if len(t) >= 4 for i in range(len(t))}
        self.size = len(vocab)

    def knows(self, word: str) -> bool:
        if word in self.terms or not word.isalpha() or len(word) < 3:
            return True  # not a plain word (numbers, paths: exact terms decide those)
        if len(word) < 5:
            return False
        if word[:5] in self.prefixes or word in self.deletes:
            return True
        return any(
            (d := word[:i] + word[i + 1 :]) in self.terms or d in self.deletes for i in range(len(word))
        )
