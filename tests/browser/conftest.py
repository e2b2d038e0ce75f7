"""Browser-test harness: a live `helpfaster-box serve`, Debian's Chromium driven by
Playwright, a second loopback web site that embeds the widget, screenshots.

Run: `pytest -m browser tests/browser` (see helpfaster_box/web/static/README.md).
Point at a server that is already running with HELPFASTER_BROWSER_URL and
HELPFASTER_BROWSER_ADMIN_KEY; otherwise one `serve` is started for the session
in a temp data dir, with this checkout's code and models/ (about 10 s to start).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
KEY_RE = re.compile(r"hf_live_[0-9A-Za-z]{32}")
CHROMIUM = os.environ.get("HELPFASTER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = (1280, 390)
START_TIMEOUT_S = float(os.environ.get("HELPFASTER_BROWSER_START_TIMEOUT", "240"))


# --- the live server ----------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    admin_key: str
    log_path: Path | None = None

    def log_tail(self, n: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _serve_command() -> list[str]:
    """The CLI of this checkout (PYTHONPATH is set to it), or HELPFASTER_BROWSER_SERVE."""
    custom = os.environ.get("HELPFASTER_BROWSER_SERVE")  # e.g. "/path/to/helpfaster-box"
    return [custom] if custom else [sys.executable, "-m", "helpfaster_box.cli.main"]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = os.environ.get("HELPFASTER_BROWSER_URL")
    if url:
        key = os.environ.get("HELPFASTER_BROWSER_ADMIN_KEY", "")
        assert KEY_RE.fullmatch(key), "set HELPFASTER_BROWSER_ADMIN_KEY with HELPFASTER_BROWSER_URL"
        yield LiveServer(url.rstrip("/"), key)
        return
    data = tmp_path_factory.mktemp("browser-box")
    port = _free_port()
    log_path = data / "serve.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HELPFASTER_MODELS_DIR": os.environ.get("HELPFASTER_MODELS_DIR", str(ROOT / "models")),
        "HELPFASTER_LOAD_MODELS": os.environ.get("HELPFASTER_LOAD_MODELS", "true"),
        "HELPFASTER_WEBHOOK_ALLOW_PRIVATE": "true",  # the webhook page's receiver is on loopback
    }
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*_serve_command(), "serve", "--port", str(port), "--data-dir", str(data / "data")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", "", log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"serve exited with {proc.returncode}:\n{server.log_tail()}")
            found = KEY_RE.search(log_path.read_text(errors="replace"))
            if found and not server.admin_key:
                server.admin_key = found.group(0)
            if server.admin_key:
                try:
                    if httpx.get(f"{server.url}/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        else:
            pytest.fail(f"serve was not ready in {START_TIMEOUT_S:.0f} s:\n{server.log_tail()}")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- data through the public API ----------------------------------------------


class Box:
    """Builds test data through the public API with the admin key."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, headers={"x-api-key": server.admin_key}, timeout=120)

    def ok(self, response: httpx.Response) -> Any:
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json() if response.content else None

    def chatbot(self, name: str, **settings: Any) -> dict[str, Any]:
        return self.ok(
            self.http.post("/v1/chatbots", json={"name": name, "answerMode": "extractive", **settings})
        )

    def qa(self, bot_id: str, question: str, answer: str) -> dict[str, Any]:
        src = self.ok(
            self.http.post(
                f"/v1/chatbots/{bot_id}/sources",
                json={"type": "qa", "question": question, "answer": answer},
            )
        )
        return self.wait_ready(src["id"])

    def text(self, bot_id: str, title: str, content: str) -> dict[str, Any]:
        src = self.ok(
            self.http.post(
                f"/v1/chatbots/{bot_id}/sources",
                json={"type": "text", "title": title, "content": content},
            )
        )
        return self.wait_ready(src["id"])

    def wait_ready(self, source_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            src = self.ok(self.http.get(f"/v1/sources/{source_id}"))
            if src["status"] in ("ready", "failed") or time.monotonic() > deadline:
                assert src["status"] == "ready", src
                return src
            time.sleep(0.3)

    def chat(self, bot_id: str, message: str) -> dict[str, Any]:
        return self.ok(self.http.post(f"/v1/chatbots/{bot_id}/chat", json={"message": message}))

    def publishable_key(self, bot_id: str, origins: list[str]) -> str:
        body = self.ok(
            self.http.post(
                f"/v1/chatbots/{bot_id}/publishable-keys",
                json={"name": "browser test", "allowedOrigins": origins},
            )
        )
        assert body["key"].startswith("hf_pub_"), body
        return body["key"]


@pytest.fixture(scope="session")
def box(live_server: LiveServer) -> Iterator[Box]:
    b = Box(live_server)
    yield b
    b.http.close()


# --- the browser ----------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@dataclass
class PageWatch:
    """What a page said on its console, threw, or tried to show as a dialog."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> Any:
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"),
        )

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            if dialog.type == "confirm":
                dialog.accept()
            else:
                dialog.dismiss()

        page.on("dialog", on_dialog)
        return page

    def script_errors(self) -> list[str]:
        """Page errors and console errors, minus the browser's own network-failure lines."""
        return [e for e in self.errors if "Failed to load resource" not in e]


@pytest.fixture
def watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def new_page(browser: Any, live_server: LiveServer, watch: PageWatch) -> Iterator[Callable[..., Any]]:
    """new_page() -> a page in a fresh context (own cookies and sessionStorage)."""
    contexts: list[Any] = []

    def make(base_url: str | None = None) -> Any:
        ctx = browser.new_context(
            viewport={"width": 1280, "height": 900}, base_url=base_url or live_server.url
        )
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        return watch.attach(ctx.new_page())

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    return new_page()


def _sign_in(page: Any, key: str) -> Any:
    page.goto("/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()
    return page


@pytest.fixture
def dashboard(page: Any, live_server: LiveServer) -> Any:
    """The dashboard, signed in with the admin key through the sign-in form."""
    return _sign_in(page, live_server.admin_key)


@pytest.fixture
def sign_in(live_server: LiveServer) -> Callable[[Any], Any]:
    return lambda page: _sign_in(page, live_server.admin_key)


@pytest.fixture
def shoot(request: pytest.FixtureRequest) -> Callable[[Any, str], None]:
    """shoot(page, "inbox") saves artifacts/<test>--inbox-1280.png and -390.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    test = re.sub(r"[^\w.-]+", "_", request.node.name)

    def take(page: Any, name: str) -> None:
        size = page.viewport_size or {"width": 1280, "height": 900}
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900 if width > 500 else 844})
            page.wait_for_timeout(150)
            page.screenshot(path=str(ARTIFACTS / f"{test}--{name}-{width}.png"), full_page=True)
        page.set_viewport_size(size)

    return take


# --- a second web site that embeds the widget ----------------------------------------


class EmbedSite:
    """A tiny web site on another loopback origin; put(path, html) publishes a page."""

    def __init__(self, host: str) -> None:
        pages: dict[str, bytes] = {}
        self.pages = pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.origin = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def put(self, path: str, html: str) -> str:
        self.pages[path] = html.encode()
        return self.origin + path

    def widget_page(self, path: str, box_url: str, bot_id: str, key: str) -> str:
        return self.put(
            path,
            f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Intranet help</title>
<style>body {{ font: 18px Georgia, serif; color: #300; }}
div, button {{ background: pink !important; }}</style>
</head><body><h1>Intranet help page</h1><p>Our support chat is in the corner.</p>
<script src="{box_url}/widget.js" data-chatbot="{bot_id}" data-key="{key}"></script>
</body></html>""",
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def embed_site() -> Iterator[Callable[[str], EmbedSite]]:
    """embed_site("127.0.0.2") -> a running EmbedSite on that loopback address."""
    sites: list[EmbedSite] = []

    def make(host: str = "127.0.0.2") -> EmbedSite:
        site = EmbedSite(host)
        sites.append(site)
        return site

    yield make
    for s in sites:
        s.close()
