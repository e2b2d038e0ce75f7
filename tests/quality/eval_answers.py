"""Answer quality per answer mode on the Debian handbook, and the relevance gate.

    .venv/bin/python tests/quality/eval_answers.py [--modes extractive,grounded,generative]
        [--threshold 0.35] [--dense-weight 1 --lexical-weight 0.5] [--limit N] [--no-save]

Uses the handbook data dir that eval_retrieval.py builds (the first run of either
ingests it). Every question of questions.toml goes through
`POST /v1/chatbots/{id}/chat` (a new conversation each, temperature 0, escalation
and lead capture off so replies are the composed answer alone) for each mode.

Per mode:
- key fact: share of answerable questions whose reply matches one of its `key`
  patterns (a declined answerable question counts as a miss);
- declined: share of unanswerable questions answered with the fallback
  (`answered == false`); also the share of answerable ones wrongly declined;
- unsupported: share of answered replies that contain something not in the
  sources they cite. The passages of the returned sources are the full chunks
  behind them (the chat's own retrieval and gate re-run for the question, each
  returned snippet matched to its chunk). Two measures:
    * `unsupported`: not answers.check_grounding(reply, passages, 0.8).supported
      (the project's test: invented exact terms, repetition, < 80 % of content words
      in the passages) — the grounded mode's own check, so it favours that mode;
    * `invented`: an independent, frozen measure defined here — the reply holds a
      command, path, option or number-like term (has a digit, '/', '_', '-', '.')
      that occurs in none of the passages. This is the dangerous failure (an
      invented shell command).
- median latency of the POST, seconds.

Gate calibration: for every question the best dense cosine among the chat's
retrieval hits (k=8, the current fusion weights), and whether a hit holds a rare
exact term of the query (those pass the gate at any threshold); the sweep shows,
per threshold, the share of answerable questions kept and unanswerable declined.

Prints markdown tables, one JSON line and five question/reply pairs per mode;
rewrites the `answers` section of results.md (unless --no-save).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus

MODES = ["extractive", "grounded", "generative"]
_TERM = re.compile(r"[A-Za-z0-9_./~:+-]+")


def invented_terms(reply: str, passages: list[str]) -> list[str]:
    """Command/path/option/number-like terms of the reply found in no passage (frozen
    here, independent of answers.py, so tuning answers.py cannot move the yardstick)."""
    source = " ".join(passages).lower()
    out = []
    for m in _TERM.finditer(reply):
        t = m.group(0).strip(".,:;()").lower()
        if len(t) < 2 or not re.search(r"[a-z0-9]", t):
            continue
        if re.search(r"\d|/|_|^-|[a-z]-[a-z]|\.[a-z]", t) and t not in source:
            out.append(t)
    return sorted(set(out))


def strip_ellipsis(s: str) -> str:
    return s.strip().strip("…").strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--threshold", type=float, help="relevance_threshold for the chat runs")
    ap.add_argument("--grounding", type=float, help="grounding_min_share for the chat runs")
    ap.add_argument("--dense-weight", type=float)
    ap.add_argument("--lexical-weight", type=float)
    ap.add_argument("--limit", type=int, help="first N answerable + all unanswerable")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--dump", help="write every reply as JSON lines to this file")
    args = ap.parse_args()
    modes = args.modes.split(",")
    qs = corpus.questions()
    if args.limit:
        qs = [q for q in qs if q.answerable][: args.limit] + [q for q in qs if not q.answerable]
    overrides = {
        "relevance_threshold": args.threshold, "grounding_min_share": args.grounding,
        "dense_weight": args.dense_weight, "lexical_weight": args.lexical_weight,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}

    from helpfaster_box.chat import answers

    with corpus.harness(**overrides) as h:
        c, bot_id, hd = h.client, h.bot_id, h.headers
        chat = h.app.state.chat
        settings = chat.settings
        r = c.patch(f"/v1/chatbots/{bot_id}", headers=hd, json={
            "temperature": 0, "escalation": {"enabled": False}, "leadCapture": {"enabled": False},
        })
        r.raise_for_status()

        # -- what the chat retrieves for each question (deterministic, re-run here) --
        retrieved: dict[str, list[Any]] = {}
        best_cos: dict[str, float] = {}
        has_exact: dict[str, bool] = {}
        for q in qs:
            hits, _ = chat._retrieve(bot_id, q.question, [])
            retrieved[q.id] = chat._relevant(hits)
            best_cos[q.id] = max((x.dense or 0.0 for x in hits), default=0.0)
            has_exact[q.id] = any(x.exact for x in hits)

        def passages_of(q: corpus.Question, sources: list[dict[str, Any]]) -> list[str]:
            out = []
            for s in sources:
                core = strip_ellipsis(s["snippet"])[:200]
                match = [x.text for x in retrieved[q.id] if core and core in x.text]
                if not match:  # fall back to every gated chunk of that source
                    match = [x.text for x in retrieved[q.id] if x.title == s["title"] and x.url == s["url"]]
                out += match[:1] or match
            return out

        per_mode: dict[str, dict[str, Any]] = {}
        records: list[dict[str, Any]] = []
        for mode in modes:
            c.patch(f"/v1/chatbots/{bot_id}", headers=hd, json={"answerMode": mode}).raise_for_status()
            rows = []
            corpus.log(f"mode {mode}: {len(qs)} questions")
            for q in qs:
                t0 = time.perf_counter()
                r = c.post(f"/v1/chatbots/{bot_id}/chat", headers=hd, json={"message": q.question})
                dt = time.perf_counter() - t0
                r.raise_for_status()
                body = r.json()
                reply, answered = body["reply"], body.get("answered", bool(body["sources"]))
                passages = passages_of(q, body["sources"]) if answered else []
                g = answers.check_grounding(reply, passages, 0.8) if answered else None
                inv = invented_terms(reply, passages) if answered else []
                msg = c.get(f"/v1/conversations/{body['conversationId']}", headers=hd).json()
                used_mode = next((m.get("answerMode") for m in reversed(msg.get("messages", []))
                                  if m.get("role") == "assistant"), None)
                row = {
                    "mode": mode, "id": q.id, "question": q.question, "answerable": q.answerable,
                    "kind": q.kind, "reply": reply, "answered": answered,
                    "key": q.answerable and answered and q.has_key(reply),
                    "unsupported": bool(g and not g.supported), "grounding": g and g.reason,
                    "invented": inv, "latency": dt, "composed": used_mode,
                    "sources": [s["title"] for s in body["sources"]],
                }
                rows.append(row)
                records.append(row)
            ans = [x for x in rows if x["answerable"]]
            una = [x for x in rows if not x["answerable"]]
            answered_rows = [x for x in rows if x["answered"]]
            per_mode[mode] = {
                "key_fact": round(sum(x["key"] for x in ans) / max(len(ans), 1), 3),
                "declined": round(sum(not x["answered"] for x in una) / max(len(una), 1), 3),
                "wrongly_declined": round(sum(not x["answered"] for x in ans) / max(len(ans), 1), 3),
                "unsupported": round(sum(x["unsupported"] for x in answered_rows) / max(len(answered_rows), 1), 3),
                "invented": round(sum(bool(x["invented"]) for x in answered_rows) / max(len(answered_rows), 1), 3),
                "median_s": round(statistics.median(x["latency"] for x in rows), 3),
                "composed": {m: sum(x["composed"] == m for x in rows) for m in sorted({str(x["composed"]) for x in rows})},
            }
            corpus.log(f"  {mode}: {per_mode[mode]}")

    if args.dump:
        with open(args.dump, "w") as fh:
            fh.writelines(json.dumps(rec) + "\n" for rec in records)

    # -- report -----------------------------------------------------------------
    n_ans = sum(q.answerable for q in qs)
    n_una = len(qs) - n_ans
    mode_table = corpus.md_table(
        ["mode", f"key fact ({n_ans} answerable)", f"declined ({n_una} unanswerable)",
         "answerable declined", "unsupported (check_grounding)", "invented terms", "median latency (s)",
         "composed as"],
        [[m, f"{r['key_fact']:.3f}", f"{r['declined']:.3f}", f"{r['wrongly_declined']:.3f}",
          f"{r['unsupported']:.3f}", f"{r['invented']:.3f}", f"{r['median_s']:.2f}",
          ", ".join(f"{k} {v}" for k, v in r["composed"].items())]
         for m, r in per_mode.items()],
    )

    # -- relevance gate sweep ----------------------------------------------------
    sweep = []
    for i in range(17):
        t = round(0.20 + 0.025 * i, 3)
        kept = sum(best_cos[q.id] >= t or has_exact[q.id] for q in qs if q.answerable)
        declined = sum(best_cos[q.id] < t and not has_exact[q.id] for q in qs if not q.answerable)
        sweep.append((t, kept / n_ans, declined / max(n_una, 1)))
    # The highest kept share among thresholds that decline every unanswerable question;
    # ties -> the middle of the tied range (margin on both sides).
    full = [s for s in sweep if s[2] == 1.0] or [max(sweep, key=lambda s: s[1] + s[2])]
    top = max(s[1] for s in full)
    tied = [s for s in full if s[1] == top]
    rec_t = tied[len(tied) // 2][0]
    ans_cos = sorted(best_cos[q.id] for q in qs if q.answerable)
    una_cos = sorted(best_cos[q.id] for q in qs if not q.answerable)
    sweep_table = corpus.md_table(
        ["relevance_threshold", "answerable kept", "unanswerable declined"],
        [[f"{t:.3f}", f"{k:.3f}", f"{d:.3f}"] for t, k, d in sweep],
    )
    cos_note = (
        f"Best dense cosine per question: answerable min {ans_cos[0]:.3f}, "
        f"p10 {ans_cos[len(ans_cos) // 10]:.3f}, median {statistics.median(ans_cos):.3f}; "
        f"unanswerable max {una_cos[-1]:.3f}, median {statistics.median(una_cos):.3f}. "
        f"Answerable below the best threshold: "
        + ", ".join(f"\"{q.question}\" ({best_cos[q.id]:.3f})" for q in qs
                    if q.answerable and best_cos[q.id] < rec_t and not has_exact[q.id])
    )

    # -- five question/reply pairs per mode ------------------------------------
    ans_ids = [q.id for q in qs if q.answerable]
    pick = [ans_ids[i] for i in (0, len(ans_ids) // 4, len(ans_ids) // 2, 3 * len(ans_ids) // 4)]
    pick.append(next(q.id for q in qs if not q.answerable))
    pairs = []
    for mode in per_mode:
        pairs.append(f"### {mode}\n")
        for rec in records:
            if rec["mode"] == mode and rec["id"] in pick:
                flag = ("key fact ✓" if rec["key"] else "key fact ✗") if rec["answerable"] else (
                    "declined ✓" if not rec["answered"] else "answered ✗")
                src = f" — sources: {', '.join(rec['sources'])}" if rec["sources"] else ""
                reply = rec["reply"].replace("\n", " ")
                pairs.append(f"- **Q:** {rec['question']}\n  **A** ({rec['composed']}, {flag}, "
                             f"{rec['latency']:.2f} s): {reply}{src}")
        pairs.append("")

    config = (f"Settings: relevance_threshold {settings.relevance_threshold}, grounding_min_share "
              f"{settings.grounding_min_share}, fusion weights {settings.dense_weight}/{settings.lexical_weight}; "
              f"chat model {Path(getattr(h.app.state.engine, 'model_path', '') or 'default').name}.")
    report = "\n".join([
        "## Answers (eval_answers.py)", "", config, "", mode_table, "",
        "### Relevance gate sweep", "", sweep_table, "",
        (f"Recommended relevance_threshold: **{rec_t:.3f}** (declines every unanswerable question, "
         f"keeps {top:.0%} of answerable ones). {cos_note}"), "",
        "### Five question/reply pairs per mode", "", *pairs,
    ])
    print(report)
    print(json.dumps({"modes": per_mode, "recommended_relevance_threshold": rec_t,
                      "sweep": [{"t": t, "kept": round(k, 3), "declined": round(d, 3)} for t, k, d in sweep],
                      "settings": {"relevance_threshold": settings.relevance_threshold,
                                   "grounding_min_share": settings.grounding_min_share,
                                   "dense_weight": settings.dense_weight,
                                   "lexical_weight": settings.lexical_weight}}))
    if not args.no_save:
        corpus.write_section("answers", report)


if __name__ == "__main__":
    main()
