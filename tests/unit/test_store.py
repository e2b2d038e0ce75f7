"""DuckDB store: migrations, version guard, transactional writes, single writer process."""

from __future__ import annotations

import asyncio
import threading

import duckdb
import pytest
from litestar.testing import TestClient
from support.helpers import make_settings

from helpfaster_box.keys import queries as keys_q
from helpfaster_box.organizations import queries as orgs_q
from helpfaster_box.store import db as db_mod
from helpfaster_box.store.db import (
    Database,
    DatabaseLocked,
    SchemaTooNew,
    latest_version,
    open_database,
)
from helpfaster_box.web.app import create_app


def applied_versions(db: Database) -> list[int]:
    return db.read(
        lambda cur: [
            r[0] for r in cur.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        ]
    )


def test_fresh_database_is_migrated_to_latest(tmp_path):
    db = open_database(tmp_path / "h.duckdb")
    try:
        assert latest_version() >= 1
        assert db.schema_version() == latest_version()
        assert applied_versions(db) == [v for v, _, _ in db_mod._migrations()]
        org = db.write(orgs_q.create_org, "acme", "free")
        assert db.read(orgs_q.get_org, org["id"])["name"] == "acme"
    finally:
        db.close()


def test_reopening_applies_nothing(tmp_path):
    path = tmp_path / "h.duckdb"
    open_database(path).close()
    db = open_database(path, migrate=False)
    try:
        assert db.migrate() == []
        assert applied_versions(db) == [v for v, _, _ in db_mod._migrations()]
    finally:
        db.close()


def test_existing_version_1_database_gets_later_migrations_and_keeps_its_rows(tmp_path):
    settings = make_settings(tmp_path / "data")
    settings.data_path.mkdir(parents=True)
    # Build a database the way release 1 left it: only the first migration applied.
    old = Database(settings.db_path)
    version, name, sql = db_mod._migrations()[0]
    assert version == 1

    def apply_first(cur):
        cur.execute(sql)
        cur.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, now())",
            [version, name],
        )

    old.write(apply_first)
    org = old.write(orgs_q.create_org, "legacy", "growth")
    _, key = old.write(keys_q.create_key, org["id"], "admin", "from v1")
    assert old.schema_version() == 1
    old.close()

    db = open_database(settings.db_path, migrate=False)
    try:
        applied = db.migrate()
        later = [n for v, n, _ in db_mod._migrations() if v > 1]
        assert applied == later
        assert db.schema_version() == latest_version()
        assert db.read(orgs_q.get_org, org["id"])["name"] == "legacy"
    finally:
        db.close()

    # The old rows work through the API of this release.
    with TestClient(create_app(settings)) as client:
        me = client.get("/v1/organization", headers={"x-api-key": key})
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "legacy" and me.json()["plan"] == "growth"
        assert (
            client.post("/v1/chatbots", json={"name": "new"}, headers={"x-api-key": key}).status_code == 201
        )


def test_database_newer_than_the_code_refuses_to_open(tmp_path):
    path = tmp_path / "h.duckdb"
    db = open_database(path)
    future = latest_version() + 1
    # What a newer release would leave behind.
    db.write(
        lambda cur: cur.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, '999_future.sql', now())",
            [future],
        )
    )
    db.close()

    for kwargs in ({}, {"read_only": True}):
        with pytest.raises(SchemaTooNew) as err:
            open_database(path, **kwargs)
        assert "newer" in str(err.value).lower() or str(future) in str(err.value)
        assert "upgrade" in str(err.value).lower()
    with pytest.raises(SchemaTooNew) as err:
        open_database(path)
    assert str(future) in str(err.value) and str(latest_version()) in str(err.value)
    # Refusing did not touch the file: a plain connection still sees the future version.
    con = duckdb.connect(str(path))
    try:
        assert con.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == future
    finally:
        con.close()


def test_write_that_raises_leaves_nothing_behind(tmp_path):
    db = open_database(tmp_path / "h.duckdb")
    try:
        db.write(orgs_q.create_org, "taken", "free")

        def create_then_fail(cur):
            orgs_q.create_org(cur, "half-done", "free")
            raise RuntimeError("boom")

        def create_then_conflict(cur):
            orgs_q.create_org(cur, "also-half-done", "free")
            orgs_q.create_org(cur, "taken", "free")  # UNIQUE(name) violation

        with pytest.raises(RuntimeError):
            db.write(create_then_fail)
        with pytest.raises(duckdb.ConstraintException):
            db.write(create_then_conflict)
        names = [o["name"] for o in db.read(orgs_q.list_orgs)]
        assert names == ["taken"]
        # the connection is still usable for the next write
        db.write(orgs_q.create_org, "after", "free")
        assert [o["name"] for o in db.read(orgs_q.list_orgs)] == ["taken", "after"]
    finally:
        db.close()


def test_concurrent_writes_from_threads_are_serialized(tmp_path):
    db = open_database(tmp_path / "h.duckdb")
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                db.write(orgs_q.create_org, f"org-{n}-{i}", "free")
                db.read(orgs_q.count_orgs)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert db.read(orgs_q.count_orgs) == 60
    finally:
        db.close()


def test_async_helpers_run_off_the_event_loop_thread(tmp_path):
    db = open_database(tmp_path / "h.duckdb")

    async def main():
        loop_thread = threading.get_ident()
        read_thread = await db.aread(lambda cur: threading.get_ident())
        write_thread = await db.awrite(lambda cur: threading.get_ident())
        org = await db.awrite(orgs_q.create_org, "async", "free")
        return loop_thread, read_thread, write_thread, await db.aread(orgs_q.get_org, org["id"])

    try:
        loop_thread, read_thread, write_thread, org = asyncio.run(main())
        assert loop_thread not in (read_thread, write_thread)
        assert org["name"] == "async"
    finally:
        db.close()


def test_second_process_gets_database_locked(tmp_path, hold_database):
    path = tmp_path / "h.duckdb"
    open_database(path).close()
    hold_database(path)
    with pytest.raises(DatabaseLocked) as err:
        open_database(path)
    message = str(err.value)
    assert str(path) in message and "API" in message


def test_schema_sql_matches_the_migrations():
    from pathlib import Path

    from helpfaster_box.store import schema

    shipped = Path(schema.__file__).with_name("schema.sql").read_text(encoding="utf-8")
    assert shipped == schema.render(), (
        "run: python -m helpfaster_box.store.schema > helpfaster_box/store/schema.sql"
    )


def test_a_snapshot_copies_a_consistent_database_and_keeps_the_file_locked(tmp_path):
    """DuckDB's lock is a POSIX record lock, dropped when the process closes any descriptor
    of the file: the snapshot must copy without opening the file in this process."""
    import subprocess
    import sys

    import duckdb

    from helpfaster_box.store.db import open_database

    db = open_database(tmp_path / "live.duckdb")
    db.write(lambda cur: cur.execute("CREATE TABLE t (x INTEGER)"))
    db.write(lambda cur: cur.execute("INSERT INTO t SELECT range FROM range(1000)"))
    db.snapshot(tmp_path / "copy.duckdb")
    db.write(lambda cur: cur.execute("INSERT INTO t VALUES (-1)"))  # after the snapshot
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; duckdb.connect(sys.argv[1])",
            str(tmp_path / "live.duckdb"),
        ],
        capture_output=True,
        text=True,
    )
    assert other.returncode != 0 and "lock" in other.stderr, other.stderr  # still ours alone
    db.close()
    copy = duckdb.connect(str(tmp_path / "copy.duckdb"), read_only=True)
    assert copy.execute("SELECT count(*), min(x) FROM t").fetchone() == (1000, 0)


def test_a_migration_merged_below_the_latest_applied_one_is_still_applied(tmp_path):
    path = tmp_path / "h.duckdb"
    open_database(path).close()
    db = open_database(path, migrate=False)
    try:  # as if 008 had been merged after this database was migrated to 009
        db.write(lambda cur: cur.execute("DELETE FROM schema_migrations WHERE version = 8"))
        assert db.schema_version() > 8
        assert db.migrate() == ["008_source_attempts.sql"]
        assert applied_versions(db) == [v for v, _, _ in db_mod._migrations()]
        columns = db.read(lambda cur: [r[0] for r in cur.execute("DESCRIBE sources").fetchall()])
        assert "attempts" in columns
    finally:
        db.close()
