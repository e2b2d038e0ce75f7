"""Inference engine throughput and latency with the real chat model. Prints one JSON line.

    .venv/bin/python tests/bench/bench_engine.py            # ~1-2 min on 2 idle cores
    .venv/bin/python tests/bench/bench_engine.py --rounds 5 --threads 1

Measures, in alternating rounds (medians reported, progress on stderr):
- batching: aggregate completion tokens/s of 8 concurrent requests (max_sequences=8)
  over the tokens/s of one request alone;                              target >= 1.5
- overhead: tokens/s of one request through the engine over llama-cpp-python's
  `Llama.create_completion` on the identical prompt, same threads;      target >= 0.9
  (also as CPU seconds per token, raw over engine: steadier when the machine is shared)
- prefix cache: time to first token of a request whose long prefix (the chatbot's
  instructions) another request already decoded, over the first one's; lower is better
- loop lag: the worst delay of a 5 ms asyncio timer while 8 requests decode.
Every request is greedy with max_tokens tokens and a prompt that does not end soon;
each round uses new prompts so no run profits from an earlier one's KV cache, and
raw / engine alternate which goes first. On a shared machine compare runs only at
similar `loadavg_*`; `--threads 1` is far less sensitive to other load (OpenMP's
spin-waiting degrades badly when the cores are oversubscribed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from helpfaster_box.llm.engine import InferenceEngine

MODEL = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
TOPICS = [
    "lighthouse",
    "volcano",
    "violin",
    "glacier",
    "robot",
    "desert",
    "library",
    "comet",
    "harbor",
    "orchard",
    "castle",
    "jungle",
    "subway",
    "island",
    "market",
    "forest",
]
INSTRUCTIONS = (
    "You are the support assistant of Acme Widgets. Answer only from the documentation "
    "below; be brief and polite; if the answer is not there, say so and offer a human "
    "agent. Documentation: Widgets ship within 3 business days. Returns are accepted "
    "within 30 days with the receipt. The warranty covers manufacturing defects for two "
    "years. Support hours are 9 to 17, Monday to Friday. "
) * 5


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def story(topic: str, round_no: int) -> str:
    return (
        f"<|im_start|>user\nWrite a long story (part {round_no}) about a {topic}."
        "<|im_end|>\n<|im_start|>assistant\n"
    )


async def generate(engine: InferenceEngine, prompt: str, max_tokens: int, tenant: str = "t") -> Any:
    gen = engine.generate(tenant=tenant, prompt=prompt, max_tokens=max_tokens, temperature=0)
    await gen.text()
    return gen.stats


async def timed(engine: InferenceEngine, prompts: list[str], max_tokens: int) -> tuple[int, float, float]:
    """Tokens and seconds for all prompts run concurrently; the worst event-loop lag meanwhile."""
    worst, done = 0.0, False

    async def watch() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            worst, last = max(worst, now - last - 0.005), now

    watcher = asyncio.ensure_future(watch())
    start = time.perf_counter()
    stats = await asyncio.gather(
        *(generate(engine, p, max_tokens, tenant=f"org{i}") for i, p in enumerate(prompts))
    )
    elapsed = time.perf_counter() - start
    done = True
    await watcher
    return sum(s.completion_tokens for s in stats), elapsed, worst


async def prefix_ttft(engine: InferenceEngine, round_no: int) -> tuple[float, float, int]:
    instructions = f"(Revision {round_no}.) " + INSTRUCTIONS
    first = await generate(
        engine,
        engine.format_chat(
            [
                {"role": "system", "content": instructions},
                {"role": "user", "content": "How long does shipping take?"},
            ]
        ),
        4,
    )
    second = await generate(
        engine,
        engine.format_chat(
            [
                {"role": "system", "content": instructions},
                {"role": "user", "content": "Can I return a widget?"},
            ]
        ),
        4,
    )
    return first.ttft_s, second.ttft_s, second.cached_prefix_tokens


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="default: all cores, as the engine")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]

    from llama_cpp import Llama

    engine = InferenceEngine(
        str(MODEL),
        n_ctx=8192,
        n_threads=args.threads,
        max_sequences=args.concurrency,
        queue_size=64,
    )
    engine.start()
    threads = engine.n_threads
    raw = Llama(str(MODEL), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)

    async def warm() -> None:
        await generate(engine, story("warmup", 0), 8)

    asyncio.run(warm())
    raw.create_completion(story("warmup", 0), temperature=0, max_tokens=8)

    single, batched, raw_tps, lags, ttft_first, ttft_second, cached = [], [], [], [], [], [], []
    cpu_single, cpu_batched, cpu_raw = [], [], []
    for r in range(1, args.rounds + 1):
        topics = TOPICS[(r * 3) % len(TOPICS) :] + TOPICS[: (r * 3) % len(TOPICS)]
        # raw llama-cpp-python and the engine alone on the identical prompt, in ABBA order
        prompt = story(topics[0], r)

        def run_raw(prompt: str = prompt) -> None:
            t0, c0 = time.perf_counter(), time.process_time()
            out = raw.create_completion(prompt, temperature=0, max_tokens=args.max_tokens)
            tokens = out["usage"]["completion_tokens"]
            raw_tps.append(tokens / (time.perf_counter() - t0))
            cpu_raw.append((time.process_time() - c0) / tokens)

        def run_engine(prompt: str = prompt) -> None:
            c0 = time.process_time()
            tokens, elapsed, _ = asyncio.run(timed(engine, [prompt], args.max_tokens))
            single.append(tokens / elapsed)
            cpu_single.append((time.process_time() - c0) / tokens)

        for run_one in (run_raw, run_engine) if r % 2 else (run_engine, run_raw):
            run_one()
        # concurrent requests, each its own prompt and tenant
        c0 = time.process_time()
        tokens, elapsed, lag = asyncio.run(
            timed(engine, [story(t, r) for t in topics[1 : 1 + args.concurrency]], args.max_tokens)
        )
        batched.append(tokens / elapsed)
        cpu_batched.append((time.process_time() - c0) / tokens)
        lags.append(lag)
        a, b, n = asyncio.run(prefix_ttft(engine, r))
        ttft_first.append(a)
        ttft_second.append(b)
        cached.append(n)
        log(
            f"round {r}: raw {raw_tps[-1]:.1f} tok/s, engine x1 {single[-1]:.1f} tok/s, "
            f"x{args.concurrency} {batched[-1]:.1f} tok/s (loop lag {lag * 1000:.0f} ms), "
            f"ttft {a * 1000:.0f} ms -> {b * 1000:.0f} ms with {n} cached tokens"
        )

    engine.close()
    raw.close()
    med = statistics.median
    print(
        json.dumps(
            {
                "bench": "engine",
                "batching_ratio": round(med(b / s for b, s in zip(batched, single, strict=False)), 2),
                "engine_vs_raw_ratio": round(med(e / w for e, w in zip(single, raw_tps, strict=False)), 2),
                "prefix_ttft_ratio": round(
                    med(s / f for s, f in zip(ttft_second, ttft_first, strict=False)), 3
                ),
                "tokens_per_s_single": round(med(single), 1),
                "tokens_per_s_concurrent": round(med(batched), 1),
                "tokens_per_s_raw": round(med(raw_tps), 1),
                "concurrency": args.concurrency,
                "ttft_first_s": round(med(ttft_first), 3),
                "ttft_cached_prefix_s": round(med(ttft_second), 3),
                "cached_prefix_tokens": int(med(cached)),
                "engine_vs_raw_cpu_ratio": round(
                    med(r / e for r, e in zip(cpu_raw, cpu_single, strict=False)), 2
                ),
                "cpu_ms_per_token_raw": round(med(cpu_raw) * 1000, 2),
                "cpu_ms_per_token_single": round(med(cpu_single) * 1000, 2),
                "cpu_ms_per_token_concurrent": round(med(cpu_batched) * 1000, 2),
                "loop_lag_max_ms": round(max(lags) * 1000, 1),
                "threads": threads,
                "max_tokens": args.max_tokens,
                "rounds": args.rounds,
                "loadavg_before": round(load_before, 2),
                "loadavg_after": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
