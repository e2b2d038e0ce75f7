"""bench_load: a mixed API load against a real `serve`, with /v1/health as the floor.

    .venv/bin/python tests/bench/bench_load.py [--seconds 60] [--clients 8] [--baseline-seconds 10]

`helpfaster-box serve` runs as deployed (a subprocess, real models, a temp data dir;
HELPFASTER_RATE_LIMIT_SCALE=10000000 so the limiter runs but never says 429). Setup
through the API: 12 chatbots, one of them extractive with a help-centre corpus (~60
chunks, bench_chat_extractive's) and a few conversations. Then `--clients` threads, each
with one keep-alive connection (raw sockets, as bench_http: httpx would spend ~400 us of
client CPU per request on the same 2 cores), send a mix for `--seconds`:

    list chatbots 30% | get chatbot 25% | list conversations 20% | search (k 8) 15% | chat 10%

(searches and chats carry a fresh ticket number each, so nothing is answered from a
cache; every chat starts a conversation). The floor is `GET /v1/health` with the same
clients, `--baseline-seconds` before and after the mix (the mean of both, so drift in a
shared machine affects both sides alike).

Prints one JSON line: ratio (mix requests/s over health requests/s), rps and rps per
route, p50/p99 per route (ms), errors by status (any non-2xx), the server's VmRSS at the
start and end of the mix (from /proc/<pid>/status), and `5xx`; exits 1 if any 5xx.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_chat_extractive import QUESTIONS, corpus
from bench_http import start_app, stop

MIX = [("list_chatbots", 30), ("get_chatbot", 25), ("list_conversations", 20), ("search", 15), ("chat", 10)]
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


class Connection:
    """One keep-alive HTTP/1.1 connection; every response of the API has a content-length."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key
        self.sock: socket.socket | None = None
        self.buf = b""

    def _open(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        return sock

    def request(self, method: str, path: str, body: dict | None = None) -> int:
        sock = self.sock = self.sock or self._open()
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nx-api-key: {self.key}\r\n"
        if body is not None:
            head += f"content-type: application/json\r\ncontent-length: {len(data)}\r\n"
        sock.sendall(head.encode() + b"\r\n" + data)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv(sock)
        top, _, rest = self.buf.partition(b"\r\n\r\n")
        match = _LENGTH.search(top)
        if match is None:
            raise ValueError(f"response without content-length: {top[:200]!r}")
        length = int(match.group(1))
        while len(rest) < length:
            rest += self._recv(sock)
        self.buf = rest[length:]
        if _CLOSE.search(top):
            self.close()
        return int(top[9:12])

    @staticmethod
    def _recv(sock: socket.socket) -> bytes:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        return chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Load:
    """Clients sending requests for a while; latencies per route, statuses per route."""

    def __init__(self, port: int, key: str, bots: list[str], kb_bot: str) -> None:
        self.port, self.key, self.bots, self.kb_bot = port, key, bots, kb_bot
        self.lock = threading.Lock()
        self.ticket = iter(range(10**9))

    def _pick(self, rng: random.Random, route: str) -> tuple[str, str, dict | None]:
        if route == "health":
            return "GET", "/v1/health", None
        if route == "list_chatbots":
            return "GET", "/v1/chatbots", None
        if route == "get_chatbot":
            return "GET", f"/v1/chatbots/{rng.choice(self.bots)}", None
        if route == "list_conversations":
            return "GET", f"/v1/chatbots/{self.kb_bot}/conversations", None
        question = f"{rng.choice(QUESTIONS)} (ticket {next(self.ticket)})"
        if route == "search":
            return "POST", f"/v1/chatbots/{self.kb_bot}/search", {"query": question, "k": 8}
        return "POST", f"/v1/chatbots/{self.kb_bot}/chat", {"message": question}

    def run(self, routes: list[tuple[str, int]], clients: int, seconds: float) -> dict:
        latencies: dict[str, list[float]] = collections.defaultdict(list)
        statuses: collections.Counter[str] = collections.Counter()
        names, weights = [r for r, _ in routes], [w for _, w in routes]
        stop_at = time.perf_counter() + seconds

        def client(seed: int) -> None:
            rng, conn = random.Random(seed), Connection(self.port, self.key)
            mine: dict[str, list[float]] = collections.defaultdict(list)
            codes: collections.Counter[str] = collections.Counter()
            try:
                while time.perf_counter() < stop_at:
                    route = rng.choices(names, weights)[0]
                    method, path, body = self._pick(rng, route)
                    t = time.perf_counter()
                    try:
                        status = conn.request(method, path, body)
                    except (OSError, ValueError) as exc:
                        conn.close()
                        codes[f"{route} {type(exc).__name__}"] += 1
                        continue
                    mine[route].append(time.perf_counter() - t)
                    if not 200 <= status < 300:
                        codes[f"{route} {status}"] += 1
            finally:
                conn.close()
                with self.lock:
                    for r, xs in mine.items():
                        latencies[r] += xs
                    statuses.update(codes)

        start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - start
        return {"elapsed": elapsed, "latencies": dict(latencies), "errors": dict(statuses)}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(1000 * xs[min(len(xs) - 1, round(p * (len(xs) - 1)))], 1)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


def wait_healthy(http: httpx.Client, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http.get("/v1/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("serve never became healthy")


def setup(http: httpx.Client) -> tuple[list[str], str]:
    """12 chatbots; the extractive one holds the corpus and a few conversations."""
    bots = [http.post("/v1/chatbots", json={"name": f"Load bot {i}"}).json()["id"] for i in range(11)]
    kb = http.post("/v1/chatbots", json={"name": "Help centre", "answerMode": "extractive"}).json()["id"]
    made = http.post(
        f"/v1/chatbots/{kb}/sources", json={"type": "text", "title": "Help centre", "content": corpus()}
    )
    made.raise_for_status()
    deadline = time.monotonic() + 600
    while (status := http.get(f"/v1/sources/{made.json()['id']}").json()["status"]) != "ready":
        if status == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"the corpus did not ingest: {status}")
        time.sleep(0.5)
    for q in QUESTIONS:  # some conversations to list, and the answer units warmed once
        http.post(f"/v1/chatbots/{kb}/chat", json={"message": q}).raise_for_status()
    return [*bots, kb], kb


def summarize(mix: dict, health_rps: float, clients: int, rss: tuple[float, float]) -> dict:
    lat, elapsed = mix["latencies"], mix["elapsed"]
    total = sum(len(xs) for xs in lat.values())
    errors = collections.Counter[str]()
    for key, n in mix["errors"].items():
        errors[key.rsplit(" ", 1)[1]] += n
    fivexx = sum(n for status, n in errors.items() if status.isdigit() and int(status) >= 500)
    return {
        "bench": "load",
        "ratio": round(total / elapsed / health_rps, 3),
        "rps": round(total / elapsed, 1),
        "health_rps": round(health_rps, 1),
        "clients": clients,
        "seconds": round(elapsed, 1),
        "routes": {
            r: {"rps": round(len(xs) / elapsed, 1), "p50_ms": pct(xs, 0.5), "p99_ms": pct(xs, 0.99)}
            for r, xs in sorted(lat.items())
        },
        "errors": dict(errors),
        "errors_by_route": mix["errors"],
        "5xx": fivexx,
        "rss_mb_start": rss[0],
        "rss_mb_end": rss[1],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the mixed load")
    ap.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients")
    ap.add_argument("--baseline-seconds", type=float, default=10.0, help="health floor, before and after")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hf-bench-load-") as data_dir:
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        proc, key = start_app(data_dir, port, load_models=True)
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"x-api-key": key}, timeout=120
            ) as h:
                wait_healthy(h)
                bots, kb = setup(h)
            load = Load(port, key, bots, kb)
            before = load.run([("health", 1)], args.clients, args.baseline_seconds)
            rss_start = rss_mb(proc.pid)
            mix = load.run(MIX, args.clients, args.seconds)
            rss_end = rss_mb(proc.pid)
            after = load.run([("health", 1)], args.clients, args.baseline_seconds)
        finally:
            stop(proc, timeout=30)
    rates = [len(r["latencies"].get("health", [])) / r["elapsed"] for r in (before, after)]
    print(f"health floor before/after: {rates[0]:.0f} / {rates[1]:.0f} req/s", file=sys.stderr)
    out = summarize(mix, statistics.mean(rates), args.clients, (rss_start, rss_end))
    out["health_p99_ms"] = pct(before["latencies"]["health"] + after["latencies"]["health"], 0.99)
    print(json.dumps(out))
    if out["5xx"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
