"""Parse an untrusted document in a child process with memory, CPU and wall-time limits.

Measured before (issue 13): an 11.8 MB .docx holding 95 MB of XML (8x compression, under
the zip-bomb ratio) held the one ingestion thread for over 9 minutes while the server's RSS
grew from 565 MB to 1.66 GB; nothing could stop it, not even deleting the source. Parsing
now runs in a forked child (multiprocessing's forkserver: a clean, single-threaded parent
with the parsers preloaded, so a job starts in ~15 ms and never inherits the server's
threads, model or database) with:

- RLIMIT_AS `ingest_parse_memory_mb` (default 1024): an allocation past it is a
  MemoryError in the child, a `failed` source here; the server's RSS does not move, and
  whatever the parse allocated is returned to the system when the child exits;
- a PDF's page count (`ingest_max_pdf_pages`, default 2,000) checked before any page is
  read: a 100,000-page PDF (one page object referenced 100,000 times, 0.6 MB) fails on
  its declared /Count in ~0.8 s, before pypdf's 2.6 s walk of the page tree;
- RLIMIT_CPU `ingest_parse_timeout_s` + 1 and the same wall-clock limit in the parent,
  which kills the child when it is over, or at once when `cancelled()` turns true (the
  source was deleted, the server is stopping).

The result comes back pickled over a pipe (a ParsedDocument is plain strings and tuples).

The child does not re-run the parent's `__main__`: multiprocessing's spawn preparation
executes the main script again in every child (and Python 3.11's forkserver ignores a
`"__main__"` preload), which under `helpfaster-box serve` is the console script, importing
the whole CLI: 340-640 ms per parse on a loaded 2-core box instead of 13-20 ms, so ten
2-line text sources took 15-21 s to become ready (found by tests/e2e/test_crash.py:
ingestion resumed after a kill at ~1 s per source). The target, `_child`, lives in this
module, which the forkserver has preloaded; nothing of `__main__` is needed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import multiprocessing.connection
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import context, forkserver, popen_forkserver, reduction, spawn, util
from typing import Any

from helpfaster_box.knowledge import parsers
from helpfaster_box.knowledge.parsers.base import MAX_PAGES

log = logging.getLogger("helpfaster_box.knowledge")
POLL_S = 0.1
_PRELOAD = ["helpfaster_box.knowledge.parsers"]
_context: Any = None


class Cancelled(Exception):
    """The parse was stopped because its source is gone or the server is stopping."""


@dataclass(frozen=True, slots=True)
class Limits:
    memory_mb: int = 1024
    timeout_s: float = 120.0
    max_pages: int = MAX_PAGES


# The names CPython's `popen_forkserver.Popen._launch` uses: 3.11 and CPython main have the same
# code, which `_Popen._launch` copies. A Python whose launch uses other names changed it;
# it then launches its own way (correct, only the slower child start above), never with a
# copy of an older launch that may no longer fit its forkserver.
_STOCK_LAUNCH_NAMES = frozenset(
    [
        "BytesIO",
        "Finalize",
        "_fds",
        "_name",
        "close_fds",
        "connect_to_new_process",
        "dump",
        "dup",
        "finalizer",
        "forkserver",
        "get_preparation_data",
        "getbuffer",
        "io",
        "open",
        "os",
        "pid",
        "read_signed",
        "reduction",
        "sentinel",
        "set_spawning_popen",
        "spawn",
        "util",
        "write",
    ]
)


def launch_known() -> bool:
    """Whether this Python's forkserver launch is the one `_Popen._launch` copies."""
    names = popen_forkserver.Popen._launch.__code__.co_names  # type: ignore[attr-defined]
    return frozenset(names) == _STOCK_LAUNCH_NAMES


class _Popen(popen_forkserver.Popen):
    """The forkserver's launch (CPython 3.11 `popen_forkserver.Popen._launch`) without the
    instruction to run the parent's main module again in the child."""

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        buf = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        _parent_w = os.dup(w)  # the child's sentinel of this parent, as in CPython
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))  # type: ignore[attr-defined]
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _Process(context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> popen_forkserver.Popen:
        if launch_known():
            return _Popen(process_obj)
        if not _warned:
            _warned.append(True)
            log.warning(
                "this Python's multiprocessing forkserver launch is not the one HelpFaster Box "
                "knows: parse children start the stock way (slower: they import the main script)"
            )
        return popen_forkserver.Popen(process_obj)


_warned: list[bool] = []


def _ctx() -> Any:
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        _context = ctx
    return _context


def _child(conn: Any, data: bytes, kind: str, title_hint: str | None, limits: Limits) -> None:
    memory = limits.memory_mb * 1024 * 1024
    cpu = int(limits.timeout_s) + 1
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    too_big = f"parsing the document needs more than {limits.memory_mb} MB of memory (ingest_parse_memory_mb)"
    try:
        doc = parsers.parse(data, kind, title_hint=title_hint, max_pages=limits.max_pages)
        conn.send(("ok", doc))
    except parsers.ParseError as exc:
        # C libraries (lxml) report a failed allocation as their own "unknown error".
        conn.send(("error", too_big if _peak_bytes() >= memory * 0.9 else str(exc)))
    except MemoryError:
        del data
        conn.send(("error", too_big))
    except Exception as exc:  # any parser crash is the document's fault, told in one line
        conn.send(("error", f"the document could not be read ({type(exc).__name__})"))
    finally:
        conn.close()


def _peak_bytes() -> int:
    """This process's peak address space (VmPeak), 0 where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def parse(
    data: bytes,
    kind: str,
    *,
    title_hint: str | None,
    limits: Limits,
    cancelled: Callable[[], bool] = lambda: False,
) -> parsers.ParsedDocument:
    """parsers.parse in a limited child; raises ParseError (limits included) or Cancelled."""
    ctx = _ctx()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = _Process(target=_child, args=(sender, data, kind, title_hint, limits), name="parse", daemon=True)
    proc.start()
    sender.close()
    deadline = time.monotonic() + limits.timeout_s
    try:
        while not receiver.poll(POLL_S):
            if cancelled():
                raise Cancelled()
            if time.monotonic() > deadline:
                raise parsers.ParseError(
                    f"parsing took longer than the {limits.timeout_s:g} s limit (ingest_parse_timeout_s)"
                )
            if not proc.is_alive() and not receiver.poll(0):
                raise parsers.ParseError(_death(proc.exitcode, limits))
        try:
            status, value = receiver.recv()
        except (EOFError, OSError):
            proc.join(1)
            raise parsers.ParseError(_death(proc.exitcode, limits)) from None
    finally:
        receiver.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        with contextlib.suppress(ValueError):
            proc.close()
    if status != "ok":
        raise parsers.ParseError(str(value))
    doc: parsers.ParsedDocument = value
    return doc


def _death(exitcode: int | None, limits: Limits) -> str:
    if exitcode in (-24, -9):  # SIGXCPU, or SIGKILL from the kernel's limits
        return f"parsing used more than the {limits.timeout_s:g} s CPU limit (ingest_parse_timeout_s)"
    return f"the document parser stopped unexpectedly (exit code {exitcode}); is it a valid document?"
