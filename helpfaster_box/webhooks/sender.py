"""One signed POST to a receiver: URL policy, keep-alive connections, what is kept of the answer.

http.client rather than httpx: an attempt costs ~0.1-0.2 ms of CPU instead of
~0.8 ms, and on a box whose cores run the chat model every millisecond shows in
/chat latency (tests/bench/bench_webhooks.py). Consequences: HTTP(S)_PROXY is
not used (receivers are expected on the intranet), HTTPS is verified against the
system CA store (SSL_CERT_FILE / SSL_CERT_DIR extend it), redirects are not
followed. Of a receiver's answer only the status code, Retry-After and a short
cleaned excerpt of a failure body are ever kept; of a private receiver (loopback,
RFC 1918, link-local: reachable only with webhook_allow_private) only the status
code, and a failure without an HTTP answer reads the same (latency 0) whether the
connection was refused or timed out. Every new connection is opened to the address
the policy of helpfaster_box.net checked (one resolution), never re-resolved.
"""

from __future__ import annotations

import email.utils
import http.client
import re
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from helpfaster_box import __version__, net
from helpfaster_box.webhooks import signing

ERROR_CHARS = 300
BODY_PEEK_BYTES = 512
KEEP_ALIVE_BODY_BYTES = 65_536  # a 2xx body up to this size is read so the connection is reused
Origin = tuple[str, str, int | None]  # scheme, host, port


# With webhook_allow_private on, intranet receivers are reachable; metadata, unspecified and
# multicast addresses never are (helpfaster_box.net.NEVER).
PRIVATE_KINDS = frozenset({"private", "loopback", "link-local"})
SETTING = "webhook_allow_private = false"
# What the log says of a private receiver that gave no HTTP answer: telling "refused" from
# "timed out" (or echoing its body) would make webhooks a port scanner of the intranet.
PRIVATE_NO_ANSWER = "no HTTP answer from the receiver (connection failed or timed out)"


def allowed_kinds(allow_private: bool) -> frozenset[str]:
    return PRIVATE_KINDS if allow_private else frozenset()


def url_problem(url: str, allow_private: bool) -> str | None:
    """Why we would refuse to send to this URL, or None. Resolves the host when private
    addresses are not allowed (blocking: call it from a thread)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"url is not a valid URL ({exc})."
    if parts.scheme not in ("http", "https"):
        return "url must start with http:// or https://."
    if not parts.hostname:
        return "url has no host."
    if parts.username is not None or parts.password is not None:
        return "url must not contain credentials; receivers authenticate us by the signature."
    host = parts.hostname
    if allow_private and net.literal_address(host) is None:
        return None  # an intranet name: resolved (and checked) at each connection
    try:
        net.pick_address(
            host,
            port or (443 if parts.scheme == "https" else 80),
            allow=allowed_kinds(allow_private),
            setting=SETTING,
        )
    except net.Refused as exc:
        return str(exc)
    return None


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (delta seconds or HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", "".join(c if c.isprintable() else " " for c in text)).strip()


@dataclass(slots=True)
class Answer:
    latency_ms: int
    status_code: int | None = None  # None: no HTTP answer (refused, timed out, not sent)
    error: str | None = None  # at most ERROR_CHARS
    retry_after_s: float | None = None


class Sender:
    """Signs and POSTs; thread-safe, keeps up to max_idle keep-alive connections per origin."""

    def __init__(self, *, timeout_s: float, allow_private: bool, max_idle: int) -> None:
        self.timeout_s = timeout_s
        self.allow_private = allow_private
        self.max_idle = max_idle
        self._tls = ssl.create_default_context()
        self._idle: dict[Origin, list[net.PinnedHTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._headers = {
            "content-type": "application/json",
            "user-agent": f"HelpFaster-Box-Webhooks/{__version__}",
        }

    def send(self, url: str, msg_id: str, secrets: list[str], body: bytes) -> Answer:
        start = time.monotonic()

        def done(
            status_code: int | None = None, error: str | None = None, retry_after_s: float | None = None
        ) -> Answer:
            return Answer(
                int((time.monotonic() - start) * 1000),
                status_code,
                error[:ERROR_CHARS] if error else None,
                retry_after_s,
            )

        headers = {**signing.headers(secrets, msg_id, int(time.time()), body), **self._headers}
        target: list[net.IPAddress] = []
        try:
            code, peek, retry_after = self._post(url, body, headers, target)
        except net.Refused as exc:
            return done(error=f"Not sent: {exc}")
        except (OSError, http.client.HTTPException) as exc:
            if target and not net.is_public(target[0]):
                return Answer(0, None, PRIVATE_NO_ANSWER)
            if isinstance(exc, TimeoutError):
                return done(error=f"timed out after {self.timeout_s:g} s")
            return done(error=_clean(f"{type(exc).__name__}: {exc}"))
        if 200 <= code < 300:
            return done(code)
        error = f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else "")
        if target and not net.is_public(target[0]):
            return done(code, error, retry_after_seconds(retry_after))  # never a private body
        text = _clean(peek.decode("utf-8", "replace"))
        return done(code, f"{error}: {text}" if text else error, retry_after_seconds(retry_after))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _post(
        self, url: str, body: bytes, headers: dict[str, str], target: list[net.IPAddress]
    ) -> tuple[int, bytes, str | None]:
        """POST on an idle keep-alive connection to the URL's origin, or a new one pinned to
        the address checked for it (appended to `target`). Returns (status, at most
        BODY_PEEK_BYTES of a non-2xx body, Retry-After)."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname or "", parts.port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for fresh in (False, True):
            conn = None if fresh else self._take(origin)
            reused = conn is not None
            if conn is None:
                conn = self._connect(origin)
            target[:] = [conn.address]
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if reused:
                    continue  # the receiver had closed the idle connection: once more, fresh
                raise
            except BaseException:
                conn.close()
                raise
            length = resp.getheader("content-length") or ""
            size = int(length) if length.isdigit() else None
            ok = 200 <= resp.status < 300
            small = size is not None and size <= KEEP_ALIVE_BODY_BYTES
            peek = resp.read(size) if ok and small else resp.read(BODY_PEEK_BYTES)
            if ok and small and not resp.will_close:
                self._give(origin, conn)  # body fully read: it can carry the next delivery
            else:
                conn.close()  # never read more of a receiver's answer than needed
            return resp.status, b"" if ok else peek[:BODY_PEEK_BYTES], resp.getheader("retry-after")
        raise AssertionError("unreachable")

    def _connect(self, origin: Origin) -> net.PinnedHTTPConnection:
        """A connection to the one address the host resolved to now, if the policy allows it."""
        scheme, host, port = origin
        address = net.pick_address(
            host,
            port or (443 if scheme == "https" else 80),
            allow=allowed_kinds(self.allow_private),
            setting=SETTING,
        )
        if scheme == "https":
            return net.PinnedHTTPSConnection(
                host, port, address=address, timeout=self.timeout_s, context=self._tls
            )
        return net.PinnedHTTPConnection(host, port, address=address, timeout=self.timeout_s)

    def _take(self, origin: Origin) -> net.PinnedHTTPConnection | None:
        with self._lock:
            idle = self._idle.get(origin)
            return idle.pop() if idle else None

    def _give(self, origin: Origin, conn: net.PinnedHTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self.max_idle and not self._closed:
                idle.append(conn)
                return
        conn.close()
