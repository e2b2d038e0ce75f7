"""Cross-corpus answer-quality evaluation: dev and test corpora, per answer mode.

    python tests/quality/eval.py [--corpora debian-handbook,libreoffice-help-en-us,...]
        [--modes extractive[,grounded,generative]] [--limit N] [--no-save] [--dump FILE]
        [--threshold T] [--ingest-only]

For each corpus (corpus.CORPORA; `debian-handbook` is the dev set, the others are
test sets nobody may tune on) the real app is started over that corpus's own data
dir (ingested on first use, see corpus.py), the corpus's chatbot is set to
temperature 0 with escalation and lead capture off, and every question of
`questions/<corpus>.toml` goes through `POST /v1/chatbots/{id}/chat` (a new
conversation each) in each mode. Measured per corpus and mode:

- key fact: share of answerable questions whose reply matches one of its `key`
  regexes (a declined reply counts as a miss);
- unanswerable declined: share of unanswerable questions answered with
  `answered == false`;
- answerable wrongly declined: share of answerable questions with `answered == false`;
- snippet holds quote: share of answered replies each of whose sentences
  (whitespace-normalized, split at whitespace after . ! or ?) occurs verbatim
  inside the `snippet` of some returned source (ellipses stripped): can a reader
  verify the citation from what the reply shows;
- median latency of the chat POST, seconds;
- calibration: of answered replies with `confidence` >= 0.8, the share containing the
  key fact (a reply to an unanswerable question never does); "n/a" while chat
  replies carry no `confidence`. `declineReason` values are counted when present.

Per corpus, once: retrieval hit@5 (and MRR@5) of `POST /v1/chatbots/{id}/search`
with k=5 over the answerable questions (a hit = a returned chunk's sourceId is one
of the question's pages), and the relevance-gate sweep: for each question the best
dense cosine among the chat's own retrieval hits (`app.state.chat._retrieve`), and
per `relevance_threshold` the share of answerable questions kept and unanswerable
ones declined (hits holding a rare exact term of the query pass at any threshold,
as in chat.py); "n/a" if the chat service no longer exposes `_retrieve`.

And per mode, where each answerable question's key fact goes: into the reply; into
the passages the reply is chosen from (the first 3 past the gate and the chunks beside
them) but not quoted, or quoted nowhere because the reply was declined; or into none of
those passages (retrieval), with how many are in none of the 8 retrieved chunks either.
The share found in the passages is what a perfect choice of sentence could reach.

Writes one section per corpus plus the summary table into results.md (unless
--no-save), keeps the latest numbers per corpus in results.json (so a run over some
corpora leaves the others' rows), and prints one JSON line with this run's numbers.
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
UNSAVED = ("records", "reach")  # per-question detail: in --dump, not in results.json
RESULTS_JSON = corpus.HERE / "results.json"
CONFIDENT = 0.8
# after . ! ? and whitespace, whatever follows (tech prose starts sentences with
# lower-case names like pg_dump); over-splitting can only make the check more lenient
# … : the reply skips text there; a blank line: the next quote is from another source
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\s*…\s*|\s*\n\s*\n\s*")


def sentences(text: str) -> list[str]:
    return [s for s in (corpus.norm(x) for x in _SENTENCE.split(text)) if s]


def _core(snippet: str) -> str:
    # only the snippet's own cut marks: "..." is the documents' text ("[E=...]", "Shrink...")
    return corpus.norm(snippet.replace("…", " "))


def quote_in_snippets(reply: str, sources: list[dict[str, Any]]) -> bool:
    """Every sentence of the reply occurs inside some source's snippet."""
    snippets = [_core(s.get("snippet") or "") for s in sources]
    sents = sentences(reply)
    return bool(sents) and all(any(s in sn for sn in snippets) for s in sents)


def share(num: int, den: int) -> float | None:
    return round(num / den, 3) if den else None


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


# -- one corpus ----------------------------------------------------------------------
def run_corpus(c: corpus.Corpus, modes: list[str], args: argparse.Namespace) -> dict[str, Any]:
    qs = corpus.questions(c.name)
    if args.limit:
        qs = [q for q in qs if q.answerable][: args.limit] + [q for q in qs if not q.answerable][
            : args.limit
        ]
    overrides = {"relevance_threshold": args.threshold} if args.threshold is not None else {}
    t_start = time.perf_counter()
    with corpus.harness(c, **overrides) as h:
        info = corpus.ingest_info(c)
        if args.ingest_only:
            return {"role": c.role, **info}
        client, bot_id, hd = h.client, h.bot_id, h.headers
        client.patch(
            f"/v1/chatbots/{bot_id}",
            headers=hd,
            json={
                "temperature": 0,
                "escalation": {"enabled": False},
                "leadCapture": {"enabled": False},
            },
        ).raise_for_status()
        settings = h.app.state.settings

        # -- retrieval through the search API ---------------------------------------
        hits, rr = 0, 0.0
        ans = [q for q in qs if q.answerable]
        retrieval_misses = []
        for q in ans:
            r = client.post(
                f"/v1/chatbots/{bot_id}/search", headers=hd, json={"query": q.question, "k": 5}
            )
            r.raise_for_status()
            pages = [h.page_of_source.get(x.get("sourceId")) for x in r.json()["data"]]
            rank = next((i for i, p in enumerate(pages) if p in q.pages), None)
            if rank is None:
                retrieval_misses.append(q.id)
            else:
                hits += 1
                rr += 1 / (rank + 1)
        retrieval = {
            "hit@5": share(hits, len(ans)),
            "mrr@5": round(rr / len(ans), 3) if ans else None,
            "misses": retrieval_misses,
        }

        # -- what the relevance gate sees -------------------------------------------
        retrieved = chat_hits(h, qs)
        gate = gate_sweep(qs, retrieved) if retrieved is not None else None
        reach = key_reach(h, ans, retrieved) if retrieved is not None else None

        # -- chat, per mode -----------------------------------------------------------
        per_mode: dict[str, Any] = {}
        records: list[dict[str, Any]] = []
        for mode in modes:
            client.patch(
                f"/v1/chatbots/{bot_id}", headers=hd, json={"answerMode": mode}
            ).raise_for_status()
            corpus.log(f"[{c.name}] mode {mode}: {len(qs)} questions")
            rows = []
            for q in qs:
                t0 = time.perf_counter()
                r = client.post(
                    f"/v1/chatbots/{bot_id}/chat", headers=hd, json={"message": q.question}
                )
                dt = time.perf_counter() - t0
                r.raise_for_status()
                body = r.json()
                reply, sources = body["reply"], body.get("sources") or []
                answered = body.get("answered", bool(sources))
                rows.append(
                    {
                        "corpus": c.name,
                        "mode": mode,
                        "id": q.id,
                        "question": q.question,
                        "answerable": q.answerable,
                        "reply": reply,
                        "answered": answered,
                        "key": bool(q.answerable and answered and q.has_key(reply)),
                        "quote_ok": bool(answered and quote_in_snippets(reply, sources)),
                        "confidence": body.get("confidence"),
                        "decline_reason": body.get("declineReason"),
                        "latency": round(dt, 4),
                        "sources": [s.get("title") for s in sources],
                        "source_pages": [c.page_of_url(s.get("url")) for s in sources],
                        "snippets": [s.get("snippet") for s in sources],
                    }
                )
            per_mode[mode] = mode_numbers(rows)
            records += rows
            corpus.log(
                f"[{c.name}]   {mode}: {json.dumps({k: v for k, v in per_mode[mode].items() if k != 'decline_reasons'})}"
            )
    n_ans = sum(q.answerable for q in qs)
    return {
        "role": c.role,
        "title": c.title,
        "sample": c.how,
        "pages": len(h.page_of_source),
        "chunks": info.get("chunks"),
        "ingest_s": info.get("ingest_s"),
        "questions": {"answerable": n_ans, "unanswerable": len(qs) - n_ans},
        "retrieval": retrieval,
        "gate": gate,
        "reach": reach,
        "losses": {m: key_losses(records, m, reach) for m in per_mode} if reach else None,
        "modes": per_mode,
        "settings": {
            "relevance_threshold": settings.relevance_threshold,
            "dense_weight": settings.dense_weight,
            "lexical_weight": settings.lexical_weight,
        },
        "eval_s": round(time.perf_counter() - t_start, 1),
        "records": records,
    }


def mode_numbers(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ans = [x for x in rows if x["answerable"]]
    una = [x for x in rows if not x["answerable"]]
    answered = [x for x in rows if x["answered"]]
    confident = [
        x
        for x in answered
        if isinstance(x["confidence"], (int, float)) and x["confidence"] >= CONFIDENT
    ]
    has_conf = any(x["confidence"] is not None for x in rows)
    reasons: dict[str, int] = {}
    for x in rows:
        if x["decline_reason"]:
            reasons[x["decline_reason"]] = reasons.get(x["decline_reason"], 0) + 1
    return {
        "key_fact": share(sum(x["key"] for x in ans), len(ans)),
        "unanswerable_declined": share(sum(not x["answered"] for x in una), len(una)),
        "answerable_declined": share(sum(not x["answered"] for x in ans), len(ans)),
        "snippet_has_quote": share(sum(x["quote_ok"] for x in answered), len(answered)),
        "median_latency_s": round(statistics.median(x["latency"] for x in rows), 3)
        if rows
        else None,
        "confident_replies": len(confident) if has_conf else None,
        "calibration": share(sum(x["key"] for x in confident), len(confident))
        if has_conf
        else None,
        "decline_reasons": reasons or None,
    }


def chat_hits(h: corpus.Harness, qs: list[corpus.Question]) -> dict[str, list[Any]] | None:
    """Per question, the passages the chat's own retrieval returns
    (`app.state.chat._retrieve`); None if the chat service no longer exposes it."""
    chat = getattr(h.app.state, "chat", None)
    retrieve = getattr(chat, "_retrieve", None)
    if retrieve is None:
        return None
    try:
        return {q.id: retrieve(h.bot_id, q.question, [])[0] for q in qs}
    except (AttributeError, TypeError) as exc:  # the chat service changed shape
        corpus.log(f"chat retrieval skipped: {exc!r}")
        return None


def gate_sweep(qs: list[corpus.Question], retrieved: dict[str, list[Any]]) -> dict[str, Any] | None:
    best: dict[str, float] = {}
    exact: dict[str, bool] = {}
    try:
        for q in qs:
            hits = retrieved[q.id]
            best[q.id] = max((x.dense or 0.0 for x in hits), default=0.0)
            exact[q.id] = any(getattr(x, "exact", False) for x in hits)
    except (AttributeError, TypeError) as exc:  # the passages changed shape
        corpus.log(f"gate sweep skipped: {exc!r}")
        return None
    ans = [q for q in qs if q.answerable]
    una = [q for q in qs if not q.answerable]
    sweep = []
    for i in range(17):
        t = round(0.20 + 0.025 * i, 3)
        kept = sum(best[q.id] >= t or exact[q.id] for q in ans)
        declined = sum(best[q.id] < t and not exact[q.id] for q in una)
        sweep.append({"t": t, "kept": share(kept, len(ans)), "declined": share(declined, len(una))})
    full = [s for s in sweep if s["declined"] == 1.0] or [
        max(sweep, key=lambda s: (s["kept"] or 0) + (s["declined"] or 0))
    ]
    top = max(s["kept"] or 0 for s in full)
    tied = [s for s in full if (s["kept"] or 0) == top]
    a_cos = sorted(best[q.id] for q in ans)
    u_cos = sorted(best[q.id] for q in una)
    return {
        "sweep": sweep,
        "best_threshold": tied[len(tied) // 2]["t"],
        "best_threshold_declines_all": full[0]["declined"] == 1.0,
        "answerable_cos": {
            "min": round(a_cos[0], 3),
            "p10": round(a_cos[len(a_cos) // 10], 3),
            "median": round(statistics.median(a_cos), 3),
        }
        if a_cos
        else None,
        "unanswerable_cos": {
            "max": round(u_cos[-1], 3),
            "median": round(statistics.median(u_cos), 3),
        }
        if u_cos
        else None,
        "unanswerable_exact": sum(exact[q.id] for q in una),
    }


def key_reach(
    h: corpus.Harness, ans: list[corpus.Question], retrieved: dict[str, list[Any]]
) -> dict[str, dict[str, bool]] | None:
    """Per answerable question: is its key fact in a passage an extractive reply picks
    from (the first 3 past the relevance gate, plus the chunks beside them), and in any
    of the 8 chunks retrieval returns. What no choice of sentence can win back."""
    chat = getattr(h.app.state, "chat", None)
    knowledge = getattr(h.app.state, "knowledge", None)
    try:
        from helpfaster_box.chat import compose

        out = {}
        for q in ans:
            hits = retrieved[q.id]
            top = chat._relevant(hits)[: compose.EXTRACTIVE_PASSAGES]  # type: ignore[union-attr]
            passages = top + [n for _, n in knowledge.neighbours(top)] if top else []  # type: ignore[union-attr]
            out[q.id] = {
                "passages": any(q.has_key(x.text) for x in passages),
                "retrieved": any(q.has_key(x.text) for x in hits),
            }
        return out
    except (AttributeError, TypeError, ImportError) as exc:  # the chat service changed shape
        corpus.log(f"key reach skipped: {exc!r}")
        return None


def key_losses(
    records: list[dict[str, Any]], mode: str, reach: dict[str, dict[str, bool]]
) -> dict[str, int]:
    """Where each answerable question's key fact ends up in one mode's replies."""
    out = {
        "n": 0,
        "reply": 0,
        "not_quoted": 0,
        "declined": 0,
        "not_in_passages": 0,
        "not_retrieved": 0,
    }
    for x in records:
        if x["mode"] != mode or not x["answerable"] or x["id"] not in reach:
            continue
        r = reach[x["id"]]
        out["n"] += 1
        if x["key"]:
            out["reply"] += 1
        elif not r["passages"]:
            out["not_in_passages"] += 1
            out["not_retrieved"] += not r["retrieved"]
        elif not x["answered"]:
            out["declined"] += 1
        else:
            out["not_quoted"] += 1
    return out


def losses_line(mode: str, m: dict[str, int]) -> str:
    n = m["n"] or 1
    found = m["reply"] + m["not_quoted"] + m["declined"]
    return (
        f"Where the key fact goes ({mode}, {m['n']} answerable): in the reply {m['reply']}; "
        f"in the passages the reply is chosen from but not quoted {m['not_quoted']}, or declined "
        f"{m['declined']}; in none of them {m['not_in_passages']} (of which in none of the 8 "
        f"retrieved chunks {m['not_retrieved']}). A perfect choice among those passages would "
        f"reach {found / n:.3f}."
    )


# -- report ---------------------------------------------------------------------------
MODE_HEADER = [
    "mode",
    "key fact",
    "unanswerable declined",
    "answerable wrongly declined",
    "snippet holds quote",
    "retrieval hit@5",
    "median latency (s)",
    "calibration (conf ≥ 0.8)",
]


def mode_row(name: str, mode: str, r: dict[str, Any], with_corpus: bool) -> list[str]:
    m = r["modes"][mode]
    cal = (
        "n/a" if m["calibration"] is None else f"{m['calibration']:.3f} ({m['confident_replies']})"
    )
    row = [
        mode,
        fmt(m["key_fact"]),
        fmt(m["unanswerable_declined"]),
        fmt(m["answerable_declined"]),
        fmt(m["snippet_has_quote"]),
        fmt(r["retrieval"]["hit@5"]),
        fmt(m["median_latency_s"], 2),
        cal,
    ]
    if with_corpus:
        q = r["questions"]
        row = [f"{name} ({r['role']})", f"{q['answerable']} + {q['unanswerable']}"] + row
    return row


def corpus_section(name: str, r: dict[str, Any]) -> str:
    q, g = r["questions"], r["gate"]
    about = (
        f"Sample: {r['sample']} — {r['pages']} pages, {r['chunks']} chunks, ingested in "
        f"{fmt(r['ingest_s'], 0)} s. {q['answerable']} answerable + {q['unanswerable']} unanswerable "
        f"questions. Settings: relevance_threshold {r['settings']['relevance_threshold']}, fusion weights "
        f"{r['settings']['dense_weight']}/{r['settings']['lexical_weight']}. Eval took {r['eval_s']:.0f} s."
    )
    ret = r["retrieval"]
    retrieval = (
        f"Retrieval (`/search`, k=5): hit@5 {fmt(ret['hit@5'])}, MRR@5 {fmt(ret['mrr@5'])}; "
        f"misses: {', '.join(ret['misses']) or 'none'}."
    )
    out = [
        f"## {name} ({r['role']}): {r['title']}",
        "",
        about,
        "",
        corpus.md_table(MODE_HEADER, [mode_row(name, m, r, False) for m in r["modes"]]),
        "",
        retrieval,
    ]
    for mode, m in r["modes"].items():
        if m.get("decline_reasons"):
            out.append(f"Decline reasons ({mode}): {m['decline_reasons']}.")
    for mode, losses in (r.get("losses") or {}).items():
        out.append(losses_line(mode, losses))
    out.append("")
    if g:
        caveat = (
            " Test corpus: this shows whether any single cosine threshold separates its questions;"
            " never set a threshold from it."
            if r["role"] == "test"
            else ""
        )
        out += [
            "### Relevance gate sweep",
            "",
            corpus.md_table(
                ["relevance_threshold", "answerable kept", "unanswerable declined"],
                [[f"{s['t']:.3f}", fmt(s["kept"]), fmt(s["declined"])] for s in g["sweep"]],
            ),
            "",
            f"Best dense cosine per question: answerable min {g['answerable_cos']['min']}, p10 "
            f"{g['answerable_cos']['p10']}, median {g['answerable_cos']['median']}; unanswerable max "
            f"{g['unanswerable_cos']['max']}, median {g['unanswerable_cos']['median']} "
            f"({g['unanswerable_exact']} unanswerable pass the gate on a rare exact term). "
            + (
                f"The threshold that declines every unanswerable question while keeping the most answerable ones: "
                f"{g['best_threshold']:.3f}."
                if g["best_threshold_declines_all"]
                else f"No threshold in the sweep declines every unanswerable question; best balance at "
                f"{g['best_threshold']:.3f}."
            )
            + caveat,
            "",
        ]
    else:
        out += ["Relevance gate sweep: n/a (the chat service exposes no `_retrieve`).", ""]
    out += ["### Five question/reply pairs", ""]
    for mode in r["modes"]:
        out += [f"{mode}:", ""]
        recs = [x for x in r["records"] if x["mode"] == mode]
        a = [x for x in recs if x["answerable"]]
        pick = [a[i] for i in sorted({0, len(a) // 4, len(a) // 2, 3 * len(a) // 4}) if a]
        pick += [x for x in recs if not x["answerable"]][:1]
        for x in pick:
            flag = (
                ("key fact ✓" if x["key"] else "key fact ✗")
                if x["answerable"]
                else ("declined ✓" if not x["answered"] else "answered ✗")
            )
            if x["answered"]:
                flag += ", quote in snippet ✓" if x["quote_ok"] else ", quote in snippet ✗"
            src = f" — sources: {', '.join(str(s) for s in x['sources'])}" if x["sources"] else ""
            reply = corpus.norm(x["reply"])
            if len(reply) > 600:
                reply = reply[:600] + " […]"
            out.append(
                f"- **Q:** {x['question']}\n  **A** ({flag}, {x['latency']:.2f} s): {reply}{src}"
            )
        out.append("")
    return "\n".join(out)


def summary_section(all_results: dict[str, Any]) -> str:
    order = [n for n in corpus.CORPORA if n in all_results]
    rows = [mode_row(n, m, all_results[n], True) for n in order for m in all_results[n]["modes"]]
    ingest = ", ".join(
        f"{n} {fmt(all_results[n].get('ingest_s'), 0)} s ({all_results[n].get('pages')} pages, "
        f"{all_results[n].get('chunks')} chunks)"
        for n in order
    )
    return "\n".join(
        [
            "## Summary",
            "",
            "Dev = the corpus settings may be calibrated on; test = report only (never tune on them).",
            "",
            corpus.md_table(
                ["corpus", "questions (answerable + unanswerable)"] + MODE_HEADER, rows
            ),
            "",
            f"Ingestion (the latest, on this 2-core machine): {ingest}.",
            "",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpora", default=",".join(corpus.CORPORA))
    ap.add_argument("--modes", default="extractive")
    ap.add_argument(
        "--limit",
        type=int,
        help="first N answerable + first N unanswerable per corpus (a smoke run)",
    )
    ap.add_argument(
        "--threshold", type=float, help="relevance_threshold override (dev experiments only)"
    )
    ap.add_argument("--no-save", action="store_true", help="do not touch results.md / results.json")
    ap.add_argument("--dump", help="write every reply as JSON lines to this file")
    ap.add_argument(
        "--ingest-only", action="store_true", help="fetch and ingest the corpora, measure nothing"
    )
    args = ap.parse_args()
    modes = args.modes.split(",")
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise SystemExit(f"unknown mode(s) {bad}; one of {MODES}")
    names = args.corpora.split(",")
    for n in names:
        corpus.corpus(n)
    t0 = time.perf_counter()
    results = {n: run_corpus(corpus.corpus(n), modes, args) for n in names}
    if args.ingest_only:
        print(json.dumps({"ingest": results}))
        return
    if args.dump:
        with open(args.dump, "w") as fh:
            for r in results.values():
                fh.writelines(json.dumps(rec, ensure_ascii=False) + "\n" for rec in r["records"])
    line = {
        "eval_s": round(time.perf_counter() - t0, 1),
        "corpora": {
            n: {k: v for k, v in r.items() if k not in UNSAVED} for n, r in results.items()
        },
    }
    for r in line["corpora"].values():
        r["retrieval"] = {k: v for k, v in r["retrieval"].items() if k != "misses"}
        if r["gate"]:
            r["gate"] = {k: v for k, v in r["gate"].items() if k != "sweep"}
    for n, r in results.items():
        print(corpus_section(n, r))
    if not args.no_save and not args.limit:
        stored = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
        for n, r in results.items():
            stored[n] = {k: v for k, v in r.items() if k not in UNSAVED}
            corpus.write_section(f"corpus:{n}", corpus_section(n, r))
        stored = {n: stored[n] for n in corpus.CORPORA if n in stored}
        RESULTS_JSON.write_text(json.dumps(stored, indent=1, ensure_ascii=False) + "\n")
        corpus.write_section("summary", summary_section(stored))
    print(json.dumps(line, ensure_ascii=False))


if __name__ == "__main__":
    main()
