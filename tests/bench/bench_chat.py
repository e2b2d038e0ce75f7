"""bench_chat: /chat against raw llama-cpp-python, in one run, on the same model and prompt.

    .venv/bin/python tests/bench/bench_chat.py [--rounds 3]
    .venv/bin/python tests/bench/bench_chat.py --engine external [--rounds 3]

Prints one JSON line:
- overhead_ratio: completion tokens/s of one /chat request (generative mode, the whole
  request: retrieval, prompt, generation, storage) / tokens/s of raw
  `Llama.create_completion` on the identical prompt and token budget. Target >= 0.9.
- concurrency_gain: aggregate tokens/s of the same 8 questions asked by 8 concurrent /chat
  clients / asked one after another by 1 client. Target >= 1.5.
- loop_block_ratio: p99 of GET /v1/health during 4 concurrent generations / idle. Target <= 3.
- ttft_prefix_gain: time to first token of the first question to a chatbot / of a second
  question to it (KV reuse of the shared instructions prefix). Reported.

With `--engine external` the app runs with `llm_backend = "openai"` against
llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`, started
here on loopback with the same model) and the line holds instead:
- external_overhead_ratio: tokens/s of one /chat request / tokens/s of one streamed
  `/v1/chat/completions` call made directly to the engine with the identical messages,
  parameters and token budget. Target >= 0.9.
- external_aggregate_ratio: aggregate tokens/s of 8 concurrent /chat clients / of the
  same 8 requests sent to the engine directly by 8 concurrent clients. Target >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from helpfaster_box.llm.registry import resolve_model
from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.settings import load_settings
from helpfaster_box.web.app import create_app

DOC = """# Shipping

We ship to Norway, Sweden and Denmark with PostNord. Delivery takes 5 to 7 business days
and costs 12 EUR per order. Orders above 100 EUR ship free. You can track a parcel from the
link in the confirmation email. Express delivery takes 1 to 2 business days and costs 25 EUR.

# Returns

You can return any item within 30 days of delivery for a full refund. Items must be unused and
in their original packaging. Refunds reach your card within 5 business days of our receiving
the parcel. Return shipping is free for defective items.
"""
QUESTIONS = [
    "How long does delivery to Norway take and what does it cost?",
    "Explain your return policy in detail.",
    "What does express delivery cost and how fast is it?",
    "When do I get my refund after returning something?",
    "Do orders above 100 EUR ship for free?",
    "What does delivery to Sweden cost?",
    "Is return shipping free for broken items?",
    "Which countries do you ship to?",
]
INSTRUCTIONS = (
    "You are the friendly support assistant of Nordic Gear, an outdoor equipment shop. "
    "Answer in full sentences and explain the relevant details."
)


class Served:
    def __init__(self, settings) -> None:
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def chat(url: str, h: dict[str, str], bot: str, question: str) -> tuple[float, str, dict]:
    t = time.perf_counter()
    r = httpx.post(f"{url}/v1/chatbots/{bot}/chat", headers=h, json={"message": question}, timeout=300)
    r.raise_for_status()
    return time.perf_counter() - t, r.json()["messageId"], r.json()


def stored(url: str, h: dict[str, str], conv: str) -> dict:
    return httpx.get(f"{url}/v1/conversations/{conv}", headers=h).json()["messages"][-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--engine", choices=["local", "external"], default="local")
    args = ap.parse_args()
    if args.engine == "external":
        from bench_chat_external import run_external

        run_external(args.rounds, Served, chat, stored, DOC, QUESTIONS, INSTRUCTIONS)
        return
    data = tempfile.mkdtemp(prefix="bench-chat-")
    settings = load_settings(
        None, {"data_dir": data, "llm_max_sequences": 8, "llm_queue_size": 64}, environ={}
    )
    key = bootstrap(settings)
    h = {"x-api-key": key}
    prompts: list[str] = []
    with Served(settings) as srv:
        chat_service = srv.app.state.chat
        original_prompt = chat_service._prompt

        def recording_prompt(*a, **kw):  # the benchmark needs the exact prompt /chat used
            p = original_prompt(*a, **kw)
            prompts.append(p)
            return p

        chat_service._prompt = recording_prompt
        bot = httpx.post(
            f"{srv.url}/v1/chatbots",
            headers=h,
            json={
                "name": "Bench",
                "instructions": INSTRUCTIONS,
                "answerMode": "generative",
                "temperature": 0,
                "maxTokens": 160,
            },
        ).json()["id"]
        httpx.post(
            f"{srv.url}/v1/chatbots/{bot}/sources",
            headers=h,
            json={"type": "text", "title": "Shipping and returns", "content": DOC},
        ).raise_for_status()
        srv.app.state.knowledge.wait_idle(300)

        # ttft: the first question to this chatbot, then a second one (prefix in the KV cache).
        _, _, first = chat(srv.url, h, bot, QUESTIONS[0])
        _, _, second = chat(srv.url, h, bot, QUESTIONS[1])
        ttft_first = stored(srv.url, h, first["conversationId"])["ttftMs"]
        ttft_second = stored(srv.url, h, second["conversationId"])["ttftMs"]

        # One client through /chat vs raw create_completion on the identical prompt.
        from llama_cpp import Llama

        engine = srv.app.state.engine  # the same thread split as the engine's
        raw = Llama(
            model_path=str(resolve_model(settings, "chat")),
            n_ctx=4096,
            n_threads=engine.n_threads_decode,
            n_threads_batch=engine.n_threads,
            verbose=False,
            seed=0,
        )
        api_tps, raw_tps = [], []
        for _ in range(args.rounds):
            prompts.clear()
            secs, _, body = chat(srv.url, h, bot, QUESTIONS[0])
            tokens = stored(srv.url, h, body["conversationId"])["completionTokens"]
            api_tps.append(tokens / secs)
            t = time.perf_counter()
            out = raw.create_completion(
                prompts[-1], max_tokens=tokens, temperature=0.0, repeat_penalty=1.15, stop=["<|im_end|>"]
            )
            raw_tps.append(out["usage"]["completion_tokens"] / (time.perf_counter() - t))
        del raw

        rounds = iter(range(1000))

        def aggregate(clients: int) -> float:
            """Tokens/s over the 8 questions, asked by `clients` clients at once. A fresh
            reference number per round keeps whole prompts from being cached between
            rounds, so both sides pay the same prefill."""
            nonce = next(rounds)
            asked = [f"{q} (ticket {nonce}-{i})" for i, q in enumerate(QUESTIONS)]
            results: list[int] = []

            def worker(mine: list[str]) -> None:
                for q in mine:
                    _, _, body = chat(srv.url, h, bot, q)
                    results.append(stored(srv.url, h, body["conversationId"])["completionTokens"] or 0)

            threads = [threading.Thread(target=worker, args=(asked[i::clients],)) for i in range(clients)]
            t = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            return sum(results) / (time.perf_counter() - t)

        single, eight = [], []
        for _ in range(max(1, args.rounds - 1)):  # ABAB pairs: load drifts on a shared machine
            single.append(aggregate(1))
            eight.append(aggregate(8))
        single, eight = statistics.median(single), statistics.median(eight)

        def health_p99(during_generation: bool) -> float:
            stop = threading.Event()
            workers = []
            if during_generation:

                def loop() -> None:
                    while not stop.is_set():
                        chat(srv.url, h, bot, QUESTIONS[1])

                workers = [threading.Thread(target=loop) for _ in range(4)]
                for w in workers:
                    w.start()
                deadline = time.time() + 60
                while srv.app.state.engine.status()["active"] < 4 and time.time() < deadline:
                    time.sleep(0.01)
            lat = []
            with httpx.Client() as client:
                for _ in range(200):
                    t = time.perf_counter()
                    client.get(f"{srv.url}/v1/health")
                    lat.append(time.perf_counter() - t)
                    time.sleep(0.01)
            stop.set()
            for w in workers:
                w.join()
            return statistics.quantiles(lat, n=100)[98]

        idle_p99 = health_p99(False)
        busy_p99 = health_p99(True)

    result = {
        "overhead_ratio": round(statistics.median(api_tps) / statistics.median(raw_tps), 3),
        "api_tokens_per_s": round(statistics.median(api_tps), 1),
        "raw_tokens_per_s": round(statistics.median(raw_tps), 1),
        "concurrency_gain": round(eight / single, 3),
        "tokens_per_s_1_client": round(single, 1),
        "tokens_per_s_8_clients": round(eight, 1),
        "loop_block_ratio": round(busy_p99 / idle_p99, 3),
        "health_p99_ms_idle": round(idle_p99 * 1000, 2),
        "health_p99_ms_4_generations": round(busy_p99 * 1000, 2),
        "ttft_prefix_gain": round(ttft_first / max(1, ttft_second), 3),
        "ttft_ms_first": ttft_first,
        "ttft_ms_second": ttft_second,
        "targets": {"overhead_ratio": ">=0.9", "concurrency_gain": ">=1.5", "loop_block_ratio": "<=3"},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
