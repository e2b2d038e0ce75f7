"""Structured logs: one JSON object per line, secrets scrubbed, the request id attached.

`serve` installs `JsonFormatter` on the root logger (setting `log_format`, default
json), so the box's own records, uvicorn's and the per-request access line all come
out as JSON lines a log shipper can parse without a grok pattern. Fields given with
`extra={...}` become keys of the object.

What never reaches a log line: API keys (`hf_live_`, `hf_pub_`), webhook secrets
(`whsec_`) — scrubbed from every message and traceback as a last line of defence,
whatever a caller formats into it — and visitors' message text, which the code only
logs when the debugging setting `log_message_text` is on.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections import deque
from contextvars import ContextVar
from typing import Any

import msgspec

# The request being served (set by the web layer's observer); asyncio.to_thread copies
# the context, so records logged from worker threads carry it too.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

SECRET = re.compile(r"\b(hf_live_|hf_pub_|whsec_)[A-Za-z0-9+/=_-]+")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


_encoder = msgspec.json.Encoder(enc_hook=str)  # ~5x json.dumps here; str() for the rest


def redact(text: str) -> str:
    """Keep a secret's prefix (which kind it was), drop the secret."""
    if "hf_" not in text and "whsec_" not in text:  # the common case, without the regex
        return text
    return SECRET.sub(r"\1[redacted]", text)


_second: list[Any] = [-1, ""]  # the last whole second formatted, and its text


def _iso(created: float) -> str:
    whole = int(created)
    if whole != _second[0]:
        _second[:] = [whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))]
    return f"{_second[1]}.{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", "request_id"?, ...extra, "exception"?}."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        rid = request_id.get()
        if rid is not None:
            out["request_id"] = rid
        fields = record.__dict__
        for key in fields.keys() - _RECORD_FIELDS:  # the `extra` ones, found by a set operation
            value = fields[key]
            out[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        return _encoder.encode(out).decode()


class LineWriter(logging.Handler):
    """`serve`'s root handler. Access lines (`DEFERRED`, one per request, logged on the
    event loop) are only appended to a queue: a writer thread wakes every `FLUSH_S` (or
    when `WAKE_AT` lines wait), formats them and writes them in one write + flush. Every
    other record (startup, shutdown, warnings, errors) is written at once, after the
    queued lines, so the lines before a crash or a SIGTERM are there.

    Measured with bench_http at `log_level = "info"` (see tests/bench/README.md): the
    StreamHandler formatting and flushing each access line on the loop cost ~170 us of
    CPU per request; this writer ~30 us. Waking the writer for every line (a
    `SimpleQueue`) saved little: the GIL handoff per line, not the formatting (~7 us) or
    the record (~2 us), was the cost. The message is rendered and the request id
    captured on the caller's thread (the contextvar is not set in the writer). A hard
    kill loses the access lines not yet written: at most `FLUSH_S` worth. While the
    stream does not take lines (stderr into a pipe nobody reads), at most `MAX_PENDING`
    wait (~6 MB of records, tracemalloc); later ones are dropped, and their count is
    written as a warning once the stream moves again.
    """

    DEFERRED = frozenset({"helpfaster_box.access"})
    FLUSH_S = 0.05
    WAKE_AT = 1000
    MAX_PENDING = 10_000

    def __init__(self, stream: Any, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.stream = stream
        self._pending: deque[logging.LogRecord] = deque()  # append/popleft are atomic
        self._wake = threading.Event()
        self._closing = False
        self._dropped = 0  # access lines not queued because MAX_PENDING were waiting
        self._writer = threading.Thread(target=self._write_lines, name="log-writer", daemon=True)
        self._writer.start()

    def handle(self, record: logging.LogRecord) -> bool:
        if not self.filter(record):
            return False
        rid = request_id.get()
        if rid is not None:
            record.request_id = rid
        if record.name not in self.DEFERRED:
            with self.lock:  # type: ignore[union-attr]
                self._write_pending(record)
            return True
        # The hot path: no lock (the deque is thread-safe), no wake-up of the writer.
        if len(self._pending) >= self.MAX_PENDING:
            self._dropped += 1
            return True
        record.msg, record.args = record.getMessage(), None
        self._pending.append(record)
        if len(self._pending) >= self.WAKE_AT:
            self._wake.set()
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def _write_lines(self) -> None:
        while True:
            self._wake.wait(self.FLUSH_S)
            self._wake.clear()
            closing = self._closing
            if self._pending:
                with self.lock:  # type: ignore[union-attr]
                    self._write_pending()
            if closing:
                return

    def _write_pending(self, last: logging.LogRecord | None = None) -> None:
        """Write the queued lines, then `last` (call with the lock held)."""
        lines = []
        count = len(self._pending)
        records = [self._pending.popleft() for _ in range(count)]
        if self._dropped:
            records.append(self._dropped_note())
        for record in [*records, *([last] if last else [])]:
            try:
                lines.append(self.format(record))
            except Exception:
                self.handleError(record)
        if lines:
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except Exception:  # a closed stderr must not kill the writer
                pass

    def _dropped_note(self) -> logging.LogRecord:
        dropped, self._dropped = self._dropped, 0
        msg = f"{dropped} access lines dropped: the log stream did not take them in time"
        return logging.LogRecord(__name__, logging.WARNING, __file__, 0, msg, None, None)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()

    def close(self) -> None:
        if self._writer.is_alive():
            self._closing = True
            self._wake.set()
            self._writer.join(timeout=5)
        self.flush()  # anything logged while it stopped
        super().close()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(level: str, fmt: str) -> None:
    """Root logger -> stderr in the chosen format (called once, by `serve`)."""
    handler = LineWriter(sys.stderr, JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, LineWriter):  # configured before (tests): stop its writer
            old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's own loggers propagate to the root handler (we pass log_config=None);
    # its access log is replaced by the box's per-request line.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # Every request logs a line: skip what the lines do not carry (the logging HOWTO's
    # "Optimization": no caller frame lookup, no process/thread fields).
    logging._srcfile = None
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
