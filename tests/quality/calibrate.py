"""Calibrate the extractive decline decision (chat/compose.py) on the DEV corpus only.

    PYTHONPATH=$PWD .venv/bin/python tests/quality/calibrate.py [--corpus debian-handbook] [--out FILE]

For every question: the chat's own retrieval and relevance gate, then the extractive
composition with no decline (`decline_below=0`), recording the chosen unit's evidence
(cosine, dense, coverage, margin), the confidence the current weights give, and whether
the reply holds the key fact. Prints the sweep of `DECLINE_BELOW` (answerable kept /
key fact / unanswerable declined / share of conf >= 0.8 holding the key) and writes
the per-question evidence as JSON lines (`--out`) for refitting the weights. Never run
it to tune on a test corpus (tests/quality/README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="debian-handbook")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    c = corpus.corpus(args.corpus)
    if c.role != "dev":
        raise SystemExit(f"{c.name} is a {c.role} corpus: calibrate on dev only")
    from helpfaster_box.chat import compose

    rows = []
    with corpus.harness(c) as h:
        chat, knowledge = h.app.state.chat, h.app.state.knowledge
        for q in corpus.questions(c.name):
            hits, qvec = chat._retrieve(h.bot_id, q.question, [])
            relevant = chat._relevant(hits)
            row = {"id": q.id, "answerable": q.answerable, "gate": bool(relevant), "key": False}
            if relevant:
                out = compose.extractive(
                    knowledge, q.question, relevant, qvec, decline_below=0.0, bot_id=h.bot_id
                )
                row |= {
                    "confidence": out.confidence,
                    "key": bool(q.answerable and out.answered and q.has_key(out.reply)),
                    "reply": out.reply[:200],
                    **(dataclasses.asdict(out.evidence) if out.evidence else {}),
                }
            rows.append(row)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    print("decline_below  kept  key  unanswerable_declined  conf>=0.8_key_share")
    for i in range(0, 19):
        t = round(0.05 * i, 2)
        passed = [r for r in rows if r["gate"] and r.get("confidence", 0) >= t]
        kept = [r for r in ans if r in passed]
        confident = [r for r in passed if r.get("confidence", 0) >= 0.8]
        print(
            f"{t:13.2f}  {len(kept) / len(ans):.3f}  {sum(r['key'] for r in kept) / len(ans):.3f}"
            f"  {sum(r not in passed for r in una) / max(1, len(una)):.3f}"
            f"  {sum(r['key'] for r in confident) / max(1, len(confident)):.3f} (n={len(confident)})"
        )


if __name__ == "__main__":
    main()
