"""Calibrate the extractive decline decision (chat/compose.py) on the DEV corpus only.

    PYTHONPATH=$PWD .venv/bin/python tests/quality/calibrate.py \
        [--corpora debian-handbook,libreoffice-help-en-us,apache2-doc] [--out FILE] [--fit gap,coverage,...]

For every question: the chat's own retrieval and relevance gate, then the extractive
composition with no decline (`decline_below=0`), recording the chosen unit's evidence
(cosine, dense, coverage, margin), the confidence the current weights give, and whether
the reply holds the key fact. Prints the sweep of `DECLINE_BELOW` (answerable kept /
key fact / unanswerable declined / share of conf >= 0.8 holding the key) and writes
the per-question evidence as JSON lines (`--out`) for refitting the weights; `--fit`
fits a logistic model (Newton, L2) of "the reply holds the key fact" (unanswerable
questions never do), or with `--target answerable` of "the documents answer it", on
the named Evidence fields and prints its weights, its
decline sweep and its calibration (list fields count as 0/1: any rare word).
`--from FILE` refits from a saved `--out` without running the app. Never run it to
tune on a test corpus (tests/quality/README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpora", default="debian-handbook,libreoffice-help-en-us,apache2-doc")
    ap.add_argument("--out", default=None)
    ap.add_argument("--fit", default=None, help="comma-separated Evidence fields")
    ap.add_argument("--target", default="key", choices=["key", "answerable"])
    ap.add_argument("--from", dest="src", default=None, help="evidence JSON lines of an earlier --out")
    args = ap.parse_args()
    if args.src:
        rows = [json.loads(line) for line in Path(args.src).read_text().splitlines()]
    else:
        rows = [r for name in args.corpora.split(",") for r in collect(name)]
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    sweep(rows, "current weights", [r.get("confidence", 0.0) for r in rows])
    if args.fit:
        features = args.fit.split(",")
        weights = fit(rows, features, args.target)
        print("fit:", dict(zip([*features, "bias"], np.round(weights, 3).tolist(), strict=True)))
        sweep(rows, "fitted", predict(rows, features, weights).tolist())


def collect(name: str) -> list[dict]:
    c = corpus.corpus(name)
    if c.role != "dev":
        raise SystemExit(f"{c.name} is a {c.role} corpus: calibrate on dev only")
    from helpfaster_box.chat import compose

    rows = []
    with corpus.harness(c) as h:
        chat, knowledge = h.app.state.chat, h.app.state.knowledge
        for q in corpus.questions(c.name):
            hits, qvec = chat._retrieve(h.bot_id, q.question, [])
            relevant = chat._relevant(hits)
            row = {"corpus": name, "id": q.id, "answerable": q.answerable, "gate": bool(relevant), "key": False}
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
    return rows


def _x(rows: list[dict], features: list[str]) -> np.ndarray:
    def value(v: object) -> float:
        return float(bool(v)) if isinstance(v, list) else float(v or 0.0)  # type: ignore[arg-type]

    return np.array([[value(r.get(f, 0.0)) for f in features] + [1.0] for r in rows])


def fit(rows: list[dict], features: list[str], target: str = "key", l2: float = 0.01) -> np.ndarray:
    """Logistic regression by Newton's method on the rows that passed the gate, of
    `target`: "key" (the reply holds the key fact: `confidence`) or "answerable" (the
    documents answer the question: the decline)."""
    kept = [r for r in rows if r["gate"]]
    x, y = _x(kept, features), np.array([float(r[target]) for r in kept])
    w = np.zeros(x.shape[1])
    reg = l2 * np.diag([1.0] * len(features) + [0.0])
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (p - y) / len(y) + reg @ w
        hess = (x.T * (p * (1 - p))) @ x / len(y) + reg
        w -= np.linalg.solve(hess, grad)
    return w


def predict(rows: list[dict], features: list[str], w: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-_x(rows, features) @ w))


def sweep(rows: list[dict], label: str, conf: list[float]) -> None:
    for r, c in zip(rows, conf, strict=True):
        r["_conf"] = c if r["gate"] else 0.0
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    print(f"{label}: decline_below  kept  key  unanswerable_declined  conf>=0.8_key_share")
    for i in range(0, 19):
        t = round(0.05 * i, 2)
        passed = [r for r in rows if r["gate"] and r["_conf"] >= t]
        kept = [r for r in ans if r in passed]
        confident = [r for r in passed if r["_conf"] >= 0.8]
        print(
            f"{t:13.2f}  {len(kept) / len(ans):.3f}  {sum(r['key'] for r in kept) / len(ans):.3f}"
            f"  {sum(r not in passed for r in una) / max(1, len(una)):.3f}"
            f"  {sum(r['key'] for r in confident) / max(1, len(confident)):.3f} (n={len(confident)})"
        )


if __name__ == "__main__":
    main()
