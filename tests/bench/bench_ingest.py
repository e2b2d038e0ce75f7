"""Ingestion benchmark: chunks/s through the sources API against raw batched embedding.

Run: .venv/bin/python tests/bench/bench_ingest.py [--docs 40] [--sections 53] [--batch-docs 4]
Prints one JSON line: {"ratio": api_chunks_per_s / raw_chunks_per_s, ...}; target >= 0.8.

A generated corpus of markdown documents (headings, ~105-130-word support-style sections,
so a section is one ~180-token chunk; ~2,150 chunks by default) is posted to one chatbot
through the Litestar TestClient with the real models loaded, a few documents at a time.
Each batch is timed from its first POST until the ingestion worker is idle (parse,
chunk, embed, DuckDB writes, FAISS + BM25 updates, index saves), and right after it the
same chunk texts, read back from the database and formed as the service embeds them
(`passage_text`), go through `embedder.embed()` on the same embedder instance, one call
per source as the service makes them. Pairing the two sides in short, adjacent runs
keeps the comparison fair on a machine whose load from other work drifts; `ratio` is
total API chunks/s over total raw chunks/s, `cpu_ratio` the same in process CPU time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from litestar.testing import TestClient
from support.helpers import make_settings

from helpfaster_box.knowledge.passages import passage_text
from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.web.app import create_app

PRODUCTS = [
    "Ledgerly",
    "Relaybox",
    "Atlas Desk",
    "Northwind Sync",
    "Quillpad",
    "Harbor VPN",
    "Beacon Mail",
    "Cobalt Drive",
    "Trellis CRM",
    "Pinecone Print",
]
AREAS = [
    "user accounts",
    "single sign-on",
    "the mobile app",
    "shared folders",
    "invoices",
    "email notifications",
    "the admin console",
    "offline mode",
    "backups",
    "audit logs",
    "device enrollment",
    "guest access",
    "the browser extension",
    "scheduled reports",
    "data export",
    "API tokens",
    "the desktop client",
    "team permissions",
    "webhooks",
    "calendar sync",
]
ACTIONS = [
    "set up",
    "turn off",
    "troubleshoot",
    "migrate",
    "restrict",
    "automate",
    "review",
    "reset",
    "share",
    "archive",
]
UI = [
    "Settings > Security",
    "Admin > Policies",
    "Profile > Devices",
    "Billing > Plans",
    "Reports > Schedules",
    "Admin > Integrations",
    "Settings > Notifications",
    "Team > Roles",
    "Storage > Retention",
    "Help > Diagnostics",
]
ROLES = [
    "an administrator",
    "the account owner",
    "a team lead",
    "any member",
    "the billing contact",
    "a support agent",
]
TIMES = [
    "a few seconds",
    "about five minutes",
    "up to an hour",
    "one business day",
    "the next sync cycle",
    "24 hours",
]
SENTENCES = [
    "Open {ui} and choose the {area} section to {action} it for the whole organization.",
    "Only {role} can {action} {area}; other people see the option greyed out.",
    "Changes to {area} reach every device within {time}, so tell your team before you start.",
    "If {product} shows error {code}, the request to {area} timed out; try again after {time}.",
    "The setting is stored in {path} on managed machines, and a policy overrides local edits.",
    "Before you {action} {area}, export a copy of the current configuration as a safeguard.",
    "{product} keeps a history of every change to {area} for 90 days under {ui}.",
    "Users who cannot find {area} are usually on an older plan; {role} can upgrade it.",
    "To undo a change, open the history, pick the last good version and select Restore.",
    "When several people edit {area} at once, the last saved change wins and others are told.",
    "Large organizations often {action} {area} in stages, one department at a time.",
    "The command `{cli}` prints the current state of {area} for scripts and audits.",
    "Logs for {area} are written to {path}; attach them when you contact support.",
    "Mobile devices pick up the new rules for {area} the next time the app is opened.",
    "A banner in {product} confirms when {area} has been updated successfully.",
    "Guests never see {area}, even if {role} shares a direct link with them.",
    "Error {code} means the limit for {area} was reached; {role} can raise it under {ui}.",
    "Plan the change for a quiet hour: {area} is briefly read-only while it is applied.",
]


def make_corpus(n_docs: int, n_sections: int, seed: int) -> list[tuple[str, str]]:
    """(filename, markdown) documents; each section ~105-130 words."""
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        product = PRODUCTS[d % len(PRODUCTS)]
        lines = [f"# {product} administration guide, part {d + 1}", ""]
        for s in range(n_sections):
            area, action = rng.choice(AREAS), rng.choice(ACTIONS)
            lines += [f"## How to {action} {area} ({d + 1}.{s + 1})", ""]
            words, sentences = 0, []
            while words < rng.randint(105, 130):
                sentence = rng.choice(SENTENCES).format(
                    ui=rng.choice(UI),
                    area=rng.choice([area, rng.choice(AREAS)]),
                    action=rng.choice([action, rng.choice(ACTIONS)]),
                    role=rng.choice(ROLES),
                    time=rng.choice(TIMES),
                    product=product,
                    code=f"{product[:2].upper()}-{rng.randint(1000, 9999)}",
                    path=f"/etc/{product.split()[0].lower()}/{area.split()[-1]}.conf",
                    cli=f"{product.split()[0].lower()} status --{area.split()[-1]}",
                )
                sentences.append(sentence)
                words += len(sentence.split())
            # Two paragraphs, as a writer would break it.
            cut = len(sentences) // 2
            lines += [" ".join(sentences[:cut]), "", " ".join(sentences[cut:]), ""]
        docs.append((f"guide-{d + 1:02d}.md", "\n".join(lines)))
    return docs


class EmbedTimer:
    """Wraps embedder.embed (and embed_spans, which ingestion uses since issue 10: the
    chunk vectors plus their answer units' vectors from one forward pass) on the
    instance the service uses: time spent embedding inside the API path, to tell
    pipeline overhead from a slower embedder."""

    def __init__(self, embedder: Any) -> None:
        self.seconds = 0.0
        self._embed = embedder.embed
        embedder.embed = self
        spans = getattr(embedder, "embed_spans", None)
        if spans is not None:

            def timed_spans(pieces: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return spans(pieces)
                finally:
                    self.seconds += time.perf_counter() - t0

            embedder.embed_spans = timed_spans

    def __call__(self, texts: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self._embed(texts)
        finally:
            self.seconds += time.perf_counter() - t0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ingest_batch(
    client: TestClient, headers: dict[str, str], bot: str, docs: list[tuple[str, str]]
) -> dict[str, Any]:
    """POST documents and wait for the worker to finish them: the API side of a pair."""
    knowledge = client.app.state.knowledge
    timer: EmbedTimer = client.app.state.embedder.embed
    embed0 = timer.seconds
    cpu0, t0 = time.process_time(), time.perf_counter()
    ids = []
    for filename, text in docs:
        resp = client.post(
            f"/v1/chatbots/{bot}/sources",
            headers=headers,
            files={"file": (filename, text.encode(), "text/markdown")},
        )
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["id"])
    if not knowledge.wait_idle(3600):
        raise SystemExit("ingestion did not finish within an hour")
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    sources = [client.get(f"/v1/sources/{i}", headers=headers).json() for i in ids]
    bad = [s for s in sources if s["status"] != "ready"]
    if bad:
        raise SystemExit(f"sources not ready: {bad[:3]}")
    return {
        "ids": ids,
        "wall": wall,
        "cpu": cpu,
        "embed": timer.seconds - embed0,
        "chunks": sum(s["chunkCount"] for s in sources),
    }


def chunk_passages(db: Any, source_ids: list[str]) -> list[list[str]]:
    """The texts the service embedded, per source, as it embedded them."""
    rows = db.read(
        lambda cur: cur.execute(
            "SELECT source_id, section, text FROM chunks WHERE source_id IN ? ORDER BY source_id, position",
            [source_ids],
        ).fetchall()
    )
    groups: dict[str, list[str]] = {i: [] for i in source_ids}
    for source_id, section, text in rows:
        groups[source_id].append(passage_text(section, text))
    return list(groups.values())


def embed_raw(embed: Any, groups: list[list[str]]) -> dict[str, Any]:
    """The same texts through embed(), one call per source: the raw side of a pair."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    for texts in groups:
        embed(texts)
    return {
        "wall": time.perf_counter() - t0,
        "cpu": time.process_time() - cpu0,
        "chunks": sum(len(g) for g in groups),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=40)
    ap.add_argument("--sections", type=int, default=53, help="sections (~1 chunk each) per doc")
    ap.add_argument("--batch-docs", type=int, default=4, help="documents per api/raw pair")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    docs = make_corpus(args.docs, args.sections, args.seed)
    batches = [docs[i : i + args.batch_docs] for i in range(0, len(docs), args.batch_docs)]
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        settings = make_settings(Path(tmp) / "data", load_models=True, rate_limit_scale=10**7)
        headers = {"x-api-key": bootstrap(settings)}
        with TestClient(create_app(settings)) as client:
            embedder, db = client.app.state.embedder, client.app.state.db
            raw_embed = embedder.embed
            raw_embed(["warm-up"] * 4)
            EmbedTimer(embedder)
            bot = client.post("/v1/chatbots", json={"name": "bench"}, headers=headers).json()["id"]
            for n, batch in enumerate(batches, 1):
                api = ingest_batch(client, headers, bot, batch)
                groups = chunk_passages(db, api["ids"])
                raw = embed_raw(raw_embed, groups)
                assert raw["chunks"] == api["chunks"], (raw["chunks"], api["chunks"])
                pairs.append((api, raw))
                log(
                    f"batch {n}/{len(batches)}: {api['chunks']} chunks; "
                    f"api {api['chunks'] / api['wall']:.1f}/s ({api['embed'] / api['wall']:.0%} "
                    f"in embed), raw {raw['chunks'] / raw['wall']:.1f}/s"
                )
            token_counts = [
                embedder.count_tokens(t)
                for api, _ in pairs
                for g in chunk_passages(db, api["ids"])
                for t in g
            ]

    def total(side: int, key: str) -> float:
        return float(sum(pair[side][key] for pair in pairs))

    chunks = total(0, "chunks")
    api_rate, raw_rate = chunks / total(0, "wall"), chunks / total(1, "wall")
    pair_ratios = [(r["wall"] / a["wall"]) for a, r in pairs]  # same chunks on both sides
    result = {
        "ratio": round(api_rate / raw_rate, 3),
        "ratio_median_of_pairs": round(statistics.median(pair_ratios), 3),
        "cpu_ratio": round(total(1, "cpu") / total(0, "cpu"), 3),
        "api_chunks_per_s": round(api_rate, 2),
        "raw_chunks_per_s": round(raw_rate, 2),
        "api_embed_share": round(total(0, "embed") / total(0, "wall"), 3),
        "api_embed_chunks_per_s": round(chunks / total(0, "embed"), 2),
        "chunks": int(chunks),
        "documents": len(docs),
        "pairs": len(pairs),
        "tokens_per_chunk_mean": round(statistics.fmean(token_counts), 1),
        "target": 0.8,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
