"""bench_chat --engine external: /chat through an OpenAI-compatible server vs that server
called directly, in one run (see bench_chat.py's docstring for what is printed)."""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from helpfaster_box.llm.registry import resolve_model
from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.settings import load_settings


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_engine(model: Path) -> tuple[subprocess.Popen, str]:
    port = _port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--n_ctx", "4096", "--interrupt_requests", "False"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("llama_cpp.server did not start")


def direct(url: str, messages: list[dict], max_tokens: int) -> tuple[int, float]:
    """One streamed chat completion straight to the engine: (tokens, seconds)."""
    body = {
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "top_p": 0.95,
        "repeat_penalty": 1.15,
        "seed": 0,
        "stream": True,
        "stop": ["<|im_end|>", "<passage", "Question:", "\n\n"],
    }
    t = time.perf_counter()
    tokens = 0
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=300) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                delta = json.loads(line[6:])["choices"][0].get("delta") or {}
                tokens += bool(delta.get("content"))
    return tokens, time.perf_counter() - t


def run_external(
    rounds: int, served, chat, stored, doc: str, questions: list[str], instructions: str
) -> None:
    settings0 = load_settings(None, {"data_dir": tempfile.mkdtemp()}, environ={})
    proc, engine_url = start_engine(resolve_model(settings0, "chat"))
    try:
        _measure(rounds, engine_url, served, chat, stored, doc, questions, instructions)
    finally:
        proc.terminate()
        proc.wait(10)


def _measure(rounds, engine_url, served, chat, stored, doc, questions, instructions) -> None:
    data = tempfile.mkdtemp(prefix="bench-chat-ext-")
    overrides = {
        "data_dir": data,
        "llm_max_sequences": 8,
        "llm_queue_size": 64,
        "llm_backend": "openai",
        "llm_base_url": engine_url,
        "llm_context_size": 4096,
    }
    settings = load_settings(None, overrides, environ={})
    h = {"x-api-key": bootstrap(settings)}
    with served(settings) as srv:
        service = srv.app.state.chat
        prompts: dict[str, list[dict]] = {}
        original = service._prompt

        def recording(bot, message, hits, history):  # the exact messages /chat sent
            p = original(bot, message, hits, history)
            prompts[message] = p.messages
            return p

        service._prompt = recording
        bot = httpx.post(
            f"{srv.url}/v1/chatbots",
            headers=h,
            json={
                "name": "Bench",
                "instructions": instructions,
                "answerMode": "generative",
                "temperature": 0,
            },
        ).json()["id"]
        httpx.post(
            f"{srv.url}/v1/chatbots/{bot}/sources",
            headers=h,
            json={"type": "text", "title": "Shipping and returns", "content": doc},
        ).raise_for_status()
        srv.app.state.knowledge.wait_idle(300)
        chat(srv.url, h, bot, questions[0])  # warm-up: the engine's first prefill

        api_tps, raw_tps = [], []
        for _ in range(rounds):
            secs, _, body = chat(srv.url, h, bot, questions[0])
            tokens = stored(srv.url, h, body["conversationId"])["completionTokens"]
            api_tps.append(tokens / secs)
            raw_tokens, raw_secs = direct(engine_url, prompts[questions[0]], tokens)
            raw_tps.append(raw_tokens / raw_secs)

        def eight_via_chat(asked: list[str]) -> tuple[float, dict[str, int]]:
            budget: dict[str, int] = {}

            def one(q: str) -> None:
                _, _, body = chat(srv.url, h, bot, q)
                budget[q] = stored(srv.url, h, body["conversationId"])["completionTokens"] or 1

            return _parallel(asked, one), budget

        def eight_direct(asked: list[str], budget: dict[str, int]) -> float:
            made: list[int] = []
            return _parallel(asked, lambda q: made.append(direct(engine_url, prompts[q], budget[q])[0]), made)

        agg_api, agg_raw = [], []
        for r in range(max(1, rounds - 1)):
            asked = [f"{q} (ticket {r}-{i})" for i, q in enumerate(questions)]
            secs, budget = eight_via_chat(asked)
            agg_api.append(sum(budget.values()) / secs)
            agg_raw.append(eight_direct(asked, budget))

    api, raw = statistics.median(api_tps), statistics.median(raw_tps)
    agg_a, agg_r = statistics.median(agg_api), statistics.median(agg_raw)
    print(
        json.dumps(
            {
                "external_overhead_ratio": round(api / raw, 3),
                "api_tokens_per_s": round(api, 1),
                "engine_direct_tokens_per_s": round(raw, 1),
                "external_aggregate_ratio": round(agg_a / agg_r, 3),
                "api_tokens_per_s_8_clients": round(agg_a, 1),
                "engine_direct_tokens_per_s_8_clients": round(agg_r, 1),
                "targets": {"external_overhead_ratio": ">=0.9", "external_aggregate_ratio": ">=0.9"},
            }
        )
    )


def _parallel(items: list[str], fn, made: list[int] | None = None) -> float:
    """Run fn over items in one thread each; seconds, or tokens/s when `made` is given."""
    threads = [threading.Thread(target=fn, args=(q,)) for q in items]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    secs = time.perf_counter() - t
    return sum(made) / secs if made is not None else secs
