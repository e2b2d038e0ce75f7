"""URL fetching against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpfaster_box.knowledge.fetch import FetchError, check_url, fetch_url, host_allowed

PAGE = b"<html><head><title>Intranet</title></head><body><p>Hello staff</p></body></html>"
stop = threading.Event()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        path = self.path
        if path == "/page":
            self.send(200, PAGE, Content_Type="text/html; charset=utf-8")
        elif path == "/redirect-inside":
            self.send(302, Location="/page")
        elif path == "/redirect-outside":
            self.send(302, Location=f"http://localhost:{port}/page")
        elif path == "/redirect-ftp":
            self.send(301, Location="ftp://127.0.0.1/file")
        elif path.startswith("/loop"):
            self.send(302, Location=f"/loop{len(path)}")
        elif path == "/chain":
            self.send(307, Location="/redirect-inside")
        elif path == "/missing":
            self.send(404, b"nope")
        elif path == "/big":
            self.send(200, b"x" * 300_000, Content_Type="text/plain")
        elif path == "/big-chunked":  # no Content-Length: the limit must hold while streaming
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"y" * 10_000)
            self.close_connection = True
        elif path == "/slow":
            stop.wait(5)
            self.send(200, PAGE)
        elif path == "/trickle":  # every read is quick, the whole response is not
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                if stop.wait(0.02):
                    return
                self.wfile.write(b"z")
                self.wfile.flush()
        else:
            self.send(500)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hanging up mid-body is what the limit tests provoke


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    stop.set()  # release handlers still sleeping
    server.shutdown()
    server.server_close()


ALLOWED = ["127.0.0.1"]


def fetch(
    url: str, allowed: list[str] = ALLOWED, max_bytes: int = 100_000, timeout_s: float = 2.0
) -> tuple[bytes, str | None, str]:
    return fetch_url(url, allowed_hosts=allowed, max_bytes=max_bytes, timeout_s=timeout_s)


def test_allowed_host_is_fetched(base_url):
    body, content_type, final_url = fetch(f"{base_url}/page")
    assert body == PAGE
    assert content_type == "text/html; charset=utf-8"
    assert final_url == f"{base_url}/page"


def test_redirects_are_followed_within_allowed_hosts(base_url):
    body, _, final_url = fetch(f"{base_url}/chain")
    assert body == PAGE
    assert final_url == f"{base_url}/page"


def test_host_not_in_list_is_refused_without_connecting(base_url):
    port = base_url.rsplit(":", 1)[1]
    with pytest.raises(FetchError, match="'localhost' is not in the `url_allowed_hosts`"):
        fetch(f"http://localhost:{port}/page")


def test_redirect_to_host_not_in_list_is_refused(base_url):
    with pytest.raises(FetchError, match="'localhost' is not in the `url_allowed_hosts`"):
        fetch(f"{base_url}/redirect-outside")


def test_redirect_to_other_scheme_is_refused(base_url):
    with pytest.raises(FetchError, match="only http and https"):
        fetch(f"{base_url}/redirect-ftp")


def test_redirect_loop_stops(base_url):
    with pytest.raises(FetchError, match="too many redirects"):
        fetch(f"{base_url}/loop")


def test_http_error_status(base_url):
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(f"{base_url}/missing")


def test_oversized_body_is_refused(base_url):
    with pytest.raises(FetchError, match="larger than the 100000 byte limit"):
        fetch(f"{base_url}/big")
    with pytest.raises(FetchError, match="larger than the 100000 byte limit"):
        fetch(f"{base_url}/big-chunked")


def test_slow_server_hits_the_timeout(base_url):
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out after 0\.5 s"):
        fetch(f"{base_url}/slow", timeout_s=0.5)
    assert time.monotonic() - started < 2


def test_trickling_server_hits_the_total_time_cap(base_url):
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        fetch(f"{base_url}/trickle", timeout_s=0.5)
    assert time.monotonic() - started < 2


def test_unreachable_host_gives_a_readable_error():
    with pytest.raises(FetchError, match="could not fetch"):
        fetch("http://127.0.0.1:9/page", timeout_s=2)  # port 9 (discard) is closed


def test_empty_allow_list_names_the_setting():
    with pytest.raises(FetchError, match="url_allowed_hosts"):
        fetch("http://127.0.0.1/page", allowed=[])


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://127.0.0.1", "javascript:alert(1)"]
)
def test_other_schemes_are_refused(url):
    with pytest.raises(FetchError, match="only http and https"):
        check_url(url, ALLOWED)


def test_credentials_trick_checks_the_real_host():
    with pytest.raises(FetchError, match=r"'evil\.example' is not"):
        check_url("http://127.0.0.1@evil.example/", ALLOWED)


@pytest.mark.parametrize(
    ("host", "port", "scheme", "entries", "allowed"),
    [
        ("wiki.corp.example", None, "https", ["wiki.corp.example"], True),
        ("WIKI.corp.example.", None, "https", ["wiki.corp.example"], True),
        ("wiki.corp.example.evil.com", None, "https", ["wiki.corp.example"], False),
        ("a.b.corp.example", None, "http", ["*.corp.example"], True),
        ("corp.example", None, "http", ["*.corp.example"], False),
        ("evilcorp.example", None, "http", ["*.corp.example"], False),
        ("wiki.corp.example", 8443, "https", ["wiki.corp.example:8443"], True),
        ("wiki.corp.example", None, "https", ["wiki.corp.example:8443"], False),
        ("wiki.corp.example", None, "https", ["wiki.corp.example:443"], True),
        ("::1", 8080, "http", ["[::1]:8080"], True),
        ("::1", None, "http", ["[::1]"], True),
        ("10.0.0.5", None, "http", [], False),
    ],
)
def test_host_matching(host, port, scheme, entries, allowed):
    assert host_allowed(host, port, scheme, entries) is allowed
