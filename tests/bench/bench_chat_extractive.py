"""bench_chat_extractive: extractive /chat against its floor, through a real server.

    .venv/bin/python tests/bench/bench_chat_extractive.py [--requests 48] [--rounds 2]

The floor is what a turn cannot avoid: the same question's query embedding + hybrid
index search, measured as `POST /v1/chatbots/{id}/search` (k = 8, what chat retrieves)
over HTTP on the same server, chatbot and questions. Prints one JSON line:
- ratio_1 / ratio_8: chats/s over searches/s with 1 and 8 concurrent clients (target
  >= 0.5 with 8);
- warm-up: `--warmup` rounds of the questions first (default 3), see main();
- chat_p50_ms_8 / chat_p99_ms_8: latency of a chat turn with 8 clients (target p99
  <= 500 ms); the same for 1 client and for the searches;
- cpu_ms_per_chat_N / cpu_ms_per_search_N: CPU time of this process (server and client
  threads) per request, and cpu_ratio_8 = search CPU / chat CPU with 8 clients: what a
  turn costs over its floor, much less moved by other jobs on a shared machine.

The app runs under uvicorn in this process (as `serve` runs it: asyncio + h11) on a
temp data dir with the real models; the chatbot holds a generated support corpus of
~60 chunks (the bench_ingest generator's kind of prose). Each client is a thread with
one keep-alive httpx connection; every question is distinct per round (a ticket
number), so nothing is answered from a cache. Rounds alternate chat / search so both
sides see the same machine load.
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

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.settings import load_settings
from helpfaster_box.web.app import create_app

TOPICS = [
    ("Shipping", "We ship to Norway, Sweden and Denmark with PostNord. Delivery takes 5 to 7 business days."),
    ("Returns", "You can return any item within 30 days of delivery for a full refund."),
    ("Passwords", "To reset your password, open Settings > Account and choose Reset password."),
    ("Invoices", "Invoices are sent by email on the first day of each month as PDF files."),
    ("Exports", "To export your data, run the command: export --all --format csv"),
    ("Backups", "Backups run every night at 02:00 and are kept for 14 days in /var/backups/app."),
    ("Two-factor", "Enable two-factor authentication under Settings > Security with an authenticator app."),
    ("API limits", "The API allows 600 requests per minute per key; a 429 response carries Retry-After."),
]
FILLER = (
    "The {t} page of the help centre explains this step by step. If the {t} option is missing, "
    "ask your administrator to enable it for your workspace. Changes to {t} settings apply within "
    "five minutes and are recorded in the audit log. Error code E-{n} means the {t} service could "
    "not be reached; retry after a minute."
)
QUESTIONS = [
    "how long does shipping to norway take?",
    "can i send something back after 3 weeks",
    "forgot my password what do i do",
    "when do invoices arrive",
    "how to export all my data as csv",
    "how long are backups kept",
    "how do i turn on 2fa",
    "what is the api rate limit",
]


def corpus() -> str:
    parts = []
    for n, (title, fact) in enumerate(TOPICS):
        for k in range(7):
            body = fact if k == 0 else FILLER.format(t=title.lower(), n=1000 + 10 * n + k)
            parts.append(f"# {title} {k + 1}\n\n{body} {FILLER.format(t=title.lower(), n=2000 + n)}\n")
    return "\n".join(parts)


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


def drive(url: str, path: str, body_of, questions: list[str], clients: int) -> tuple[float, list[float]]:
    """(requests/s, latencies in s) of POSTing each question once, spread over clients.
    Adds the process CPU seconds it took (server and clients: one process) to CPU[path]."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(mine: list[str]) -> None:
        with httpx.Client(base_url=url, headers=HEADERS, timeout=120) as c:
            for q in mine:
                t = time.perf_counter()
                r = c.post(path, json=body_of(q))
                r.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=worker, args=(questions[i::clients],)) for i in range(clients)]
    t, cpu = time.perf_counter(), time.process_time()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    CPU[path] = CPU.get(path, 0.0) + time.process_time() - cpu
    return len(questions) / (time.perf_counter() - t), latencies


HEADERS: dict[str, str] = {}
CPU: dict[str, float] = {}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return 1000 * xs[min(len(xs) - 1, round(p * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=48, help="per measurement")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3, help="rounds of chats before measuring")
    args = ap.parse_args()
    data = tempfile.mkdtemp(prefix="bench-chat-x-")
    settings = load_settings(None, {"data_dir": data, "rate_limit_scale": 10_000_000}, environ={})
    HEADERS["x-api-key"] = bootstrap(settings)
    with Served(settings) as srv:
        bot = httpx.post(
            f"{srv.url}/v1/chatbots",
            headers=HEADERS,
            json={"name": "Bench", "answerMode": "extractive", "temperature": 0},
        ).json()["id"]
        httpx.post(
            f"{srv.url}/v1/chatbots/{bot}/sources",
            headers=HEADERS,
            json={"type": "text", "title": "Help centre", "content": corpus()},
        ).raise_for_status()
        srv.app.state.knowledge.wait_idle(600)
        chat_path, search_path = f"/v1/chatbots/{bot}/chat", f"/v1/chatbots/{bot}/search"
        nonce = iter(range(10**6))

        def asked() -> list[str]:
            n = next(nonce)
            return [f"{QUESTIONS[i % len(QUESTIONS)]} (ticket {n}-{i})" for i in range(args.requests)]

        # Warm-up: each unit's standalone vector is computed the first time a turn
        # shortlists it and kept; `--warmup` rounds of the questions let most of the units
        # they touch be computed once, as in a deployment that has answered for a while
        # (with 0 the measurement includes those first computations).
        for _ in range(args.warmup):
            drive(srv.url, chat_path, lambda q: {"message": q}, asked(), 2)
        out: dict[str, float] = {}
        for clients in (1, 8):
            CPU.clear()
            chats, searches, chat_lat, search_lat = [], [], [], []
            for _ in range(args.rounds):
                rps, lat = drive(srv.url, chat_path, lambda q: {"message": q}, asked(), clients)
                chats.append(rps)
                chat_lat += lat
                rps, lat = drive(srv.url, search_path, lambda q: {"query": q, "k": 8}, asked(), clients)
                searches.append(rps)
                search_lat += lat
            c, s = statistics.median(chats), statistics.median(searches)
            out |= {
                f"chats_per_s_{clients}": round(c, 2),
                f"searches_per_s_{clients}": round(s, 2),
                f"ratio_{clients}": round(c / s, 3),
                f"chat_p50_ms_{clients}": round(pct(chat_lat, 0.5), 1),
                f"chat_p99_ms_{clients}": round(pct(chat_lat, 0.99), 1),
                f"search_p50_ms_{clients}": round(pct(search_lat, 0.5), 1),
                f"search_p99_ms_{clients}": round(pct(search_lat, 0.99), 1),
                # CPU of the whole process (server + the client threads) per request: less
                # moved by other jobs on the machine than the rates are
                f"cpu_ms_per_chat_{clients}": round(1000 * CPU[chat_path] / len(chat_lat), 1),
                f"cpu_ms_per_search_{clients}": round(1000 * CPU[search_path] / len(search_lat), 1),
            }
            print(f"{clients} client(s): {out}", file=sys.stderr)
    cpu_ratio = out["cpu_ms_per_search_8"] / out["cpu_ms_per_chat_8"]
    print(
        json.dumps(
            {"bench": "chat_extractive", "ratio": out["ratio_8"], "cpu_ratio_8": round(cpu_ratio, 3), **out}
        )
    )


if __name__ == "__main__":
    main()
