"""DuckDB: one connection per process, a cursor per thread, writes serialized.

DuckDB allows one writing process per file, and inside a process concurrent
writers conflict optimistically; a single write lock makes every write a short
transaction that cannot conflict. Reads run concurrently on per-thread cursors.
The async helpers run everything in worker threads so the event loop never
waits on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from helpfaster_box.store.files import make_private, private_dir

READ_CACHE_SIZE = 2048

log = logging.getLogger("helpfaster_box.store")
T = TypeVar("T")


class DatabaseLocked(RuntimeError):
    """Another process (normally the running server) holds the database file."""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer HelpFaster Box than this one."""


def _migrations() -> list[tuple[int, str, str]]:
    root = resources.files("helpfaster_box.store") / "migrations"
    found = []
    for entry in root.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append((int(name[:3]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def latest_version() -> int:
    migrations = _migrations()
    return migrations[-1][0] if migrations else 0


class Database:
    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if not read_only:
            private_dir(self.path.parent)
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise DatabaseLocked(
                    f"{self.path} is in use by another process (is `helpfaster-box serve` running?). "
                    "Stop the server, or do this through the HTTP API instead."
                ) from None
            raise
        if not read_only:
            make_private(self.path)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._closed = False
        # Bumped after every committed write. This process is the only writer (DuckDB
        # locks the file), so a cached read taken at the current generation is current.
        self.generation = 0
        self._cache: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()

    # -- cursors -------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
        return cur

    # -- sync API (CLI, background threads) ----------------------------------
    def read(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self.cursor(), *args)

    def write(self, fn: Callable[..., T], *args: Any, keeps_cached: bool = False) -> T:
        """Run fn(cursor, *args) in one transaction; all or nothing.

        ``keeps_cached``: the write changes nothing an `aread_cached` read returns (the
        chatbots and publishable keys tables), so those stay cached. The chat turn says so:
        it writes conversations, messages, leads, webhook events and unit vectors, and it
        used to empty the cache for every turn, so each turn re-read its chatbot."""
        with self._write_lock:
            cur = self.cursor()
            cur.begin()
            try:
                result = fn(cur, *args)
            except BaseException:
                cur.rollback()
                raise
            cur.commit()
            if not keeps_cached:
                self.generation += 1
            return result

    # -- async API (request handlers) ----------------------------------------
    async def aread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self.read, fn, *args)

    async def awrite(self, fn: Callable[..., T], *args: Any, keeps_cached: bool = False) -> T:
        return await asyncio.to_thread(self.write, fn, *args, keeps_cached=keeps_cached)

    async def aread_cached(self, key: Hashable, fn: Callable[..., T], *args: Any) -> T:
        """A read served from memory until the next write commits.

        For hot, small reads (a chatbot, a page of chatbots): a DuckDB query costs
        about a millisecond, a dict lookup on the event loop nothing. Callers must
        treat the result as read-only. Only for reads of tables that no write made with
        `keeps_cached=True` changes (today: chatbots, publishable keys).
        """
        hit = self._cache.get(key)
        if hit is not None and hit[0] == self.generation:
            return hit[1]
        generation = self.generation  # taken before reading: a write racing us makes it stale
        value = await self.aread(fn, *args)
        self._cache[key] = (generation, value)
        self._cache.move_to_end(key)
        while len(self._cache) > READ_CACHE_SIZE:
            self._cache.popitem(last=False)
        return value

    # -- schema --------------------------------------------------------------
    def schema_version(self) -> int:
        cur = self.cursor()
        exists = scalar(
            cur, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        )
        if not exists:
            return 0
        return int(scalar(cur, "SELECT max(version) FROM schema_migrations") or 0)

    def _applied_versions(self) -> set[int]:
        rows = self.cursor().execute("SELECT version FROM schema_migrations").fetchall()
        return {int(r[0]) for r in rows}

    def migrate(self) -> list[str]:
        """Apply pending migrations in order; refuse a database newer than the code."""
        current = self.schema_version()
        known = latest_version()
        if current > known:
            raise SchemaTooNew(
                f"{self.path} has schema version {current}, but this HelpFaster Box only knows "
                f"up to {known}. Upgrade HelpFaster Box (or restore a backup made by this version)."
            )
        # By version present, not "above the highest": branches merged in parallel can land
        # a lower number after a higher one (008 after 009), and a database already at 009
        # must still get 008.
        done = self._applied_versions() if current else set()
        applied = []
        for version, name, sql in _migrations():
            if version in done:
                continue

            def apply(cur: duckdb.DuckDBPyConnection, version=version, name=name, sql=sql) -> None:
                cur.execute(sql)
                cur.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, now())",
                    [version, name],
                )

            self.write(apply)
            log.info("applied migration %s", name)
            applied.append(name)
        return applied

    def snapshot(self, dest: Path) -> None:
        """Copy the database file to `dest` as of one instant, while the server runs.

        Under the write lock no transaction of this process (the file's only writer) can
        commit, and DuckDB changes the main file only when a commit or a CHECKPOINT
        checkpoints; so the file plus its WAL, copied now, are one committed state.
        CHECKPOINT first folds the WAL into the file, so usually the file alone is the
        database. DuckDB refuses it while it counts another write transaction as active
        (seen after an ingestion: a finished autocommit statement's transaction that a
        thread's cursor has not closed yet); the copy then carries the WAL, which DuckDB
        replays when the copy is opened. Readers go on meanwhile; writers wait for the
        copy (~1 s per GB).

        The copy runs in a child process: DuckDB's lock on the file is a POSIX record
        lock, which the kernel drops as soon as this process closes *any* descriptor of
        the file — an in-process `shutil.copyfile` silently unlocked the database (a
        second process could then open it read-write).
        """
        wal = self.path.with_name(self.path.name + ".wal")
        with self._write_lock:
            with contextlib.suppress(duckdb.TransactionException):
                self.cursor().execute("CHECKPOINT")
            subprocess.run(["cp", "--", str(self.path), str(dest)], check=True)
            if wal.exists() and wal.stat().st_size:
                subprocess.run(["cp", "--", str(wal), str(dest.with_name(dest.name + ".wal"))], check=True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(duckdb.Error):
                self._con.execute("CHECKPOINT")
            self._con.close()


def open_database(path: Path | str, *, read_only: bool = False, migrate: bool = True) -> Database:
    db = Database(path, read_only=read_only)
    if migrate and not read_only:
        try:
            db.migrate()
        except BaseException:
            db.close()
            raise
    elif read_only and db.schema_version() > latest_version():
        db.close()
        raise SchemaTooNew(f"{path} was written by a newer HelpFaster Box; upgrade first.")
    return db


def rows_as_dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description or []]
    return [dict(zip(cols, row, strict=False)) for row in cur.fetchall()]


def row_as_dict(cur: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    rows = rows_as_dicts(cur)
    return rows[0] if rows else None


def decode_json(row: dict[str, Any] | None, columns: tuple[str, ...]) -> dict[str, Any] | None:
    """Parse a row's JSON columns (DuckDB returns them as text) in place."""
    if row is not None:
        for col in columns:
            if isinstance(row.get(col), str):
                row[col] = json.loads(row[col])
    return row


def scalar(cur: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """The first column of the first row of a query that always returns one."""
    row = cur.execute(sql, params).fetchone()
    assert row is not None, sql
    return row[0]
