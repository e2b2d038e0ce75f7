"""HTTP throughput of `GET /v1/chatbots` against a bare Litestar "hello" app.

Both run under uvicorn in their own subprocess on loopback, started the way they
are deployed (`helpfaster-box serve` for the appliance). The same load generator
hits both in alternating rounds (ABBA order) so drift in the machine affects both
alike; the median of the per-round rates is reported.

Besides requests/s it reports the server's CPU time per request (from /proc), which
stays meaningful when other work shares the machine; `cpu_ratio` is hello's CPU per
request over the app's.

The load generator is deliberately thin (raw keep-alive sockets from threads in a
few worker processes) so that client cost does not hide server cost: measured here,
httpx spends ~400 us of client CPU per request, more than the hello server itself
(~120 us); the raw-socket client spends ~25 us.

    .venv/bin/python tests/bench/bench_http.py [--rounds 6] [--seconds 2] [--connections 8]

Prints one JSON line: {"ratio": median of per-round app_rps / hello_rps, "app_rps": ...,
"hello_rps": ..., ...}; per-round progress goes to stderr.
Target: ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "helpfaster-box"
TARGET = 0.5


# --- the reference app ------------------------------------------------------------


def serve_hello(port: int) -> None:
    import uvicorn
    from litestar import Litestar, get

    @get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    uvicorn.run(Litestar([hello]), host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- the load generator -------------------------------------------------------------

_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def _connection(port: int, request: bytes, stop_at: float, out: list[tuple[int, int]]) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    done = bad = 0
    buf = b""
    try:
        while time.perf_counter() < stop_at:
            sock.sendall(request)
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            match = _LENGTH.search(head)
            if match is None:
                raise ValueError(f"response without content-length: {head[:200]!r}")
            length = int(match.group(1))
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection mid-body")
                rest += chunk
            buf = rest[length:]
            done += 1
            if head[9:12] != b"200":
                bad += 1
    finally:
        sock.close()
    out.append((done, bad))


def load_worker(args: tuple[int, bytes, float, int]) -> tuple[int, int, float]:
    """One process: `threads` keep-alive connections for `seconds`. Returns (ok, bad, elapsed)."""
    port, request, seconds, threads = args
    out: list[tuple[int, int]] = []
    start = time.perf_counter()
    stop_at = start + seconds
    workers = [
        threading.Thread(target=_connection, args=(port, request, stop_at, out)) for _ in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    done = sum(d for d, _ in out)
    bad = sum(b for _, b in out)
    if len(out) != threads:
        raise RuntimeError("a load connection failed")
    return done - bad, bad, elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    pool,
    procs: int,
    threads_per_proc: int,
    port: int,
    request: bytes,
    seconds: float,
    pid: int | None = None,
) -> tuple[float, float]:
    """(requests/s, server CPU microseconds per request)."""
    cpu0 = cpu_seconds(pid) if pid else 0.0
    results = pool.map(load_worker, [(port, request, seconds, threads_per_proc)] * procs)
    cpu1 = cpu_seconds(pid) if pid else 0.0
    bad = sum(r[1] for r in results)
    if bad:
        raise RuntimeError(f"{bad} non-200 responses from port {port}")
    done = sum(r[0] for r in results)
    return sum(ok / elapsed for ok, _, elapsed in results), (cpu1 - cpu0) / max(done, 1) * 1e6


# --- servers -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"port {port} never answered {path}")


def start_app(data_dir: str, port: int, load_models: bool = False) -> tuple[subprocess.Popen[str], str]:
    """`serve` as deployed, on a fresh data dir; returns it and its first-run key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPFASTER_")}
    env.update(
        HELPFASTER_LOAD_MODELS=str(load_models).lower(),
        HELPFASTER_RATE_LIMIT_SCALE="10000000",  # measure the limiter's cost, not its 429s
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [str(CLI), "serve", "--port", str(port), "--data-dir", data_dir, "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    key = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if match := re.search(r"hf_live_[0-9A-Za-z]{32}", line):
            key = match.group(0)
            break
    if key is None:
        raise RuntimeError("serve printed no first-run key")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining
    return proc, key


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="ABBA rounds (each measures both servers)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one measurement")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections in total")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--chatbots", type=int, default=20, help="chatbots in the org (one default page)")
    parser.add_argument("--serve-hello", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_hello:
        serve_hello(args.serve_hello)
        return

    import httpx

    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="hf-bench-") as data_dir:
        try:
            app_port, hello_port = free_port(), free_port()
            app_proc, key = start_app(data_dir, app_port)
            procs.append(app_proc)
            hello_proc = subprocess.Popen(
                [sys.executable, __file__, "--serve-hello", str(hello_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(hello_proc)
            wait_http(app_port, "/v1/health")
            wait_http(hello_port, "/hello")
            for i in range(args.chatbots):
                made = httpx.post(
                    f"http://127.0.0.1:{app_port}/v1/chatbots",
                    json={"name": f"Bench bot {i}"},
                    headers={"x-api-key": key},
                    timeout=10,
                )
                made.raise_for_status()
            page = httpx.get(f"http://127.0.0.1:{app_port}/v1/chatbots", headers={"x-api-key": key}).json()
            assert len(page["data"]) == min(args.chatbots, 20), page

            app_req = (
                f"GET /v1/chatbots HTTP/1.1\r\nHost: 127.0.0.1:{app_port}\r\nx-api-key: {key}\r\n\r\n"
            ).encode()
            hello_req = f"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:{hello_port}\r\n\r\n".encode()
            threads = max(1, args.connections // args.procs)
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(args.procs) as pool:
                # warm both: imports on first request, the key cache, allocator pools
                measure(pool, args.procs, threads, app_port, app_req, 1.0)
                measure(pool, args.procs, threads, hello_port, hello_req, 1.0)
                rates: dict[str, list[float]] = {"app": [], "hello": []}
                cpu: dict[str, list[float]] = {"app": [], "hello": []}
                for r in range(args.rounds):
                    order = [
                        ("app", app_port, app_req, app_proc.pid),
                        ("hello", hello_port, hello_req, hello_proc.pid),
                    ]
                    if r % 2:
                        order.reverse()
                    for name, port, req, pid in order:
                        rate, us = measure(pool, args.procs, threads, port, req, args.seconds, pid)
                        rates[name].append(rate)
                        cpu[name].append(us)
                    app_now = f"{rates['app'][-1]:.0f} req/s ({cpu['app'][-1]:.0f} us CPU)"
                    hello_now = f"{rates['hello'][-1]:.0f} req/s ({cpu['hello'][-1]:.0f} us CPU)"
                    print(f"round {r + 1}: app {app_now}, hello {hello_now}", file=sys.stderr)
        finally:
            for proc in procs:
                stop(proc)

    # Each round pairs two back-to-back measurements, so its ratio is the fair one; the
    # median over rounds shrugs off a round disturbed by other work on the machine.
    ratios = [a / h for a, h in zip(rates["app"], rates["hello"], strict=False)]
    app_cpu, hello_cpu = statistics.median(cpu["app"]), statistics.median(cpu["hello"])
    print(
        json.dumps(
            {
                "ratio": round(statistics.median(ratios), 3),
                "app_rps": round(statistics.median(rates["app"]), 1),
                "hello_rps": round(statistics.median(rates["hello"]), 1),
                "round_ratios": [round(x, 3) for x in ratios],
                # server CPU per request: insensitive to other load on the machine
                "app_cpu_us_per_req": round(app_cpu),
                "hello_cpu_us_per_req": round(hello_cpu),
                "cpu_ratio": round(hello_cpu / app_cpu, 3),
                "target": TARGET,
                "connections": args.procs * threads,
                "page_size": min(args.chatbots, 20),
            }
        )
    )


if __name__ == "__main__":
    main()
