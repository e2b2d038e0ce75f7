"""SSRF: webhooks and URL sources reach only what the operator allowed, on the address checked.

Receivers are real HTTP servers on loopback. DNS is the one thing a test cannot own, so the
rebinding tests replace `socket.getaddrinfo` (the operating system's resolver, not a part of
this project) with one that answers differently on each call, as a rebinding DNS server does.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from litestar.testing import TestClient
from support.helpers import assert_error_body, make_settings

from helpfaster_box.knowledge.fetch import FetchError, fetch_url
from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.web.app import create_app
from helpfaster_box.webhooks.sender import PRIVATE_NO_ANSWER, Sender

SECRET_BODY = b"internal-admin-console: db password is hunter2"


class Internal(ThreadingHTTPServer):
    """An 'internal service' on loopback that answers every request with a secret."""

    daemon_threads = True

    def __init__(self) -> None:
        hits: list[str] = []
        self.hits = hits

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                hits.append(self.path)
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                if self.path.startswith("/go/"):  # /go/<host>/<path>: a redirect to that host
                    _, _, host, rest = self.path.split("/", 3)
                    self.send_response(302)
                    self.send_header("location", f"http://{host}:{self.server.server_address[1]}/{rest}")
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                self.send_response(500 if self.path.startswith("/fail") else 200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(SECRET_BODY)))
                self.end_headers()
                self.wfile.write(SECRET_BODY)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def internal() -> Iterator[Internal]:
    server = Internal()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def rebinding(monkeypatch):
    """getaddrinfo answers `first` once, then 127.0.0.1: a DNS rebinding attacker's server."""
    real = socket.getaddrinfo
    calls: list[str] = []

    def install(name: str, first: str) -> list[str]:
        def fake(host, port, *args, **kwargs):
            if host != name:
                return real(host, port, *args, **kwargs)
            calls.append(host)
            addr = first if len(calls) == 1 else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port))]

        monkeypatch.setattr(socket, "getaddrinfo", fake)
        return calls

    return install


HOSTILE_URLS = [
    "http://127.0.0.1:{port}/hook",
    "http://localhost:{port}/hook",
    "http://[::1]:{port}/hook",
    "http://2130706433:{port}/hook",
    "http://0177.0.0.1:{port}/hook",
    "http://127.1:{port}/hook",
    "http://0x7f.1:{port}/hook",
    "http://0:{port}/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::ffff:127.0.0.1]:{port}/hook",
    "http://[::ffff:7f00:1]:{port}/hook",
    "http://[64:ff9b::7f00:1]:{port}/hook",
    "http://[64:ff9b::a01:203]/hook",
    "http://[2002:7f00:1::]:{port}/hook",
    "http://[2002:c0a8:1::1]/hook",
    "http://[fe80::1]/hook",
    "https://10.1.2.3/hook",
    "http://192.168.0.10/hook",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_by_default_webhooks_refuse_every_spelling_of_a_non_public_address(tmp_path, internal, url):
    settings = make_settings(tmp_path / "data")  # the shipped defaults
    key = bootstrap(settings)
    with TestClient(create_app(settings)) as client:
        resp = client.post(
            "/v1/webhooks",
            json={"url": url.format(port=internal.port), "events": ["lead.captured"]},
            headers={"x-api-key": key},
        )
    assert resp.status_code == 400, resp.text
    assert_error_body(resp.json(), "bad_request")
    assert resp.json()["details"][0]["field"] == "url"
    assert internal.hits == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/x", "http://[64:ff9b::a9fe:a9fe]/x", "http://0/x"])
def test_metadata_and_unspecified_addresses_are_refused_even_when_private_is_allowed(tmp_path, url):
    settings = make_settings(tmp_path / "data", webhook_allow_private=True)
    key = bootstrap(settings)
    with TestClient(create_app(settings)) as client:
        resp = client.post(
            "/v1/webhooks", json={"url": url, "events": ["lead.captured"]}, headers={"x-api-key": key}
        )
    assert resp.status_code == 400, resp.text


def test_a_webhook_host_is_resolved_once_and_the_checked_address_is_the_one_connected(internal, rebinding):
    calls = rebinding("rebind.test", "93.184.216.34")  # public; unreachable from the test box
    sender = Sender(timeout_s=0.5, allow_private=False, max_idle=1)
    try:
        answer = sender.send(f"http://rebind.test:{internal.port}/hook", "msg_1", ["whsec_AAAA"], b"{}")
    finally:
        sender.close()
    assert len(calls) == 1, calls  # no second lookup between check and connect
    assert internal.hits == []  # the rebound address (loopback) was never reached
    assert answer.status_code is None


def test_a_private_receivers_body_and_failure_kind_never_reach_the_delivery_log(internal):
    sender = Sender(timeout_s=0.5, allow_private=True, max_idle=1)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens: connection refused
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts at the kernel, never answers: a timeout
    try:
        failed = sender.send(f"http://127.0.0.1:{internal.port}/fail", "m", ["whsec_AAAA"], b"{}")
        refused = sender.send(f"http://127.0.0.1:{closed_port}/x", "m", ["whsec_AAAA"], b"{}")
        start = time.monotonic()
        timed_out = sender.send(f"http://127.0.0.1:{silent.getsockname()[1]}/x", "m", ["whsec_AAAA"], b"{}")
        assert time.monotonic() - start < 5
    finally:
        sender.close()
        silent.close()
    assert failed.status_code == 500 and failed.error == "HTTP 500"
    assert "hunter2" not in (failed.error or "")
    assert (refused.error, refused.latency_ms) == (timed_out.error, timed_out.latency_ms)
    assert refused.error == PRIVATE_NO_ANSWER


def fetch(url: str, allowed: list[str]) -> bytes:
    return fetch_url(url, allowed_hosts=allowed, max_bytes=1_000_000, timeout_s=2)[0]


def test_an_allow_listed_name_that_resolves_to_loopback_is_not_fetched(internal):
    with pytest.raises(FetchError, match="loopback"):
        fetch(f"http://localhost:{internal.port}/page", ["localhost"])
    assert internal.hits == []
    # The address itself, listed by the operator, is reachable.
    assert fetch(f"http://127.0.0.1:{internal.port}/page", [f"127.0.0.1:{internal.port}"]) == SECRET_BODY


def test_a_url_source_host_is_resolved_once_per_hop_and_rebinding_is_useless(internal, rebinding):
    calls = rebinding("wiki.rebind.test", "10.9.9.9")  # private: allowed for a listed name
    with pytest.raises(FetchError):
        fetch(f"http://wiki.rebind.test:{internal.port}/page", ["wiki.rebind.test"])
    assert len(calls) == 1, calls
    assert internal.hits == []


def test_a_redirect_to_a_listed_name_resolving_to_loopback_is_refused(internal, rebinding):
    rebinding("docs.rebind.test", "127.0.0.1")
    allowed = [f"127.0.0.1:{internal.port}", "docs.rebind.test"]
    with pytest.raises(FetchError, match="loopback"):
        fetch(f"http://127.0.0.1:{internal.port}/go/docs.rebind.test/page", allowed)
    assert internal.hits == ["/go/docs.rebind.test/page"]  # the first hop only
