"""Check every question file against the text of its corpus's sampled pages.

    python tests/quality/check_questions.py [--corpora a,b] [-v]

For each corpus (default: all of corpus.CORPORA), page text = the page's HTML with scripts,
styles and navigation furniture removed, whitespace-normalized (corpus.html_text,
the standard-library HTML parser, independent of the app's parser):

- answerable question: it names at least one page, every page is in the corpus's
  sample, every `key` regex compiles, and at least one `key` regex matches
  (case-insensitive) the text of at least one of its pages;
- unanswerable question (`answerable = false`): it has `absent` terms and none of
  them occurs (case-insensitive substring) in any sampled page;
- a test corpus has >= 50 answerable and >= 15 unanswerable questions;
- no question is repeated, and none copies its page: a run of 7 or more words of a
  question found verbatim in one of its pages is reported (a warning below 9 words,
  an error from 9).

Exits 1 on any error; prints one line per corpus.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus

MIN_ANSWERABLE, MIN_UNANSWERABLE = 50, 15
_WORD = re.compile(r"[a-z0-9]+")


def longest_shared_run(question: str, text: str) -> int:
    """Length in words of the longest run of the question's words found in text."""
    q = _WORD.findall(question.lower())
    t = " " + " ".join(_WORD.findall(text.lower())) + " "
    best = 0
    for i in range(len(q)):
        for j in range(len(q), i + best, -1):
            if " " + " ".join(q[i:j]) + " " in t:
                best = j - i
                break
    return best


def check(name: str, verbose: bool) -> tuple[list[str], list[str], dict[str, int]]:
    c = corpus.corpus(name)
    pages = c.pages()
    sample = set(pages)
    texts = {p: c.text(p) for p in pages}
    lowered = {p: t.lower() for p, t in texts.items()}
    errors: list[str] = []
    warnings: list[str] = []
    qs = corpus.questions(name)
    seen: set[str] = set()
    for q in qs:
        where = f"{name} {q.id} {q.question!r}"
        if q.question.lower() in seen:
            errors.append(f"{where}: repeated question")
        seen.add(q.question.lower())
        if q.answerable:
            if not q.pages:
                errors.append(f"{where}: no page")
                continue
            missing = [p for p in q.pages if p not in sample]
            if missing:
                errors.append(f"{where}: page(s) not in the sample: {missing}")
            if not q.key:
                errors.append(f"{where}: no key")
                continue
            try:
                pats = [re.compile(k, re.IGNORECASE) for k in q.key]
            except re.error as exc:
                errors.append(f"{where}: bad key regex: {exc}")
                continue
            hits = [
                (p, k.pattern) for p in q.pages if p in texts for k in pats if k.search(texts[p])
            ]
            if not hits:
                errors.append(f"{where}: no key matches any of its pages {q.pages}")
            elif verbose:
                p, k = hits[0]
                m = re.search(k, texts[p], re.IGNORECASE)
                assert m
                print(
                    f"  ok {q.id}: {k!r} in {p}: …{texts[p][max(0, m.start() - 60) : m.end() + 60]}…"
                )
            run = max(
                (longest_shared_run(q.question, texts[p]) for p in q.pages if p in texts), default=0
            )
            if run >= 9:
                errors.append(f"{where}: copies {run} words of its page")
            elif run >= 7:
                warnings.append(f"{where}: shares {run} consecutive words with its page")
        else:
            if not q.absent:
                errors.append(f"{where}: unanswerable without `absent` terms")
            for term in q.absent:
                found = [p for p, t in lowered.items() if term.lower() in t]
                if found:
                    errors.append(f"{where}: absent term {term!r} occurs in {found[:3]}")
    n_ans = sum(q.answerable for q in qs)
    counts = {"answerable": n_ans, "unanswerable": len(qs) - n_ans, "pages": len(pages)}
    if c.role == "test" and (n_ans < MIN_ANSWERABLE or len(qs) - n_ans < MIN_UNANSWERABLE):
        errors.append(
            f"{name}: {n_ans} answerable / {len(qs) - n_ans} unanswerable questions, "
            f"need >= {MIN_ANSWERABLE} / >= {MIN_UNANSWERABLE}"
        )
    return errors, warnings, counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpora", default=",".join(corpus.CORPORA))
    ap.add_argument("-v", "--verbose", action="store_true", help="show where each key matched")
    args = ap.parse_args()
    failed = False
    for name in args.corpora.split(","):
        errors, warnings, counts = check(name, args.verbose)
        for w in warnings:
            print("warning:", w)
        for e in errors:
            print("ERROR:", e)
        failed |= bool(errors)
        print(
            f"{name}: {counts['answerable']} answerable, {counts['unanswerable']} unanswerable, "
            f"{counts['pages']} pages: {'FAIL' if errors else 'ok'} ({len(errors)} errors, {len(warnings)} warnings)"
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
