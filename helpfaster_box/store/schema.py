"""store/schema.sql: the whole current schema in one readable file, derived from the
migrations (the migrations are what runs; this file is for reading and review).

    python -m helpfaster_box.store.schema > helpfaster_box/store/schema.sql

A test fails when the file and the migrations disagree.
"""

from __future__ import annotations

import duckdb

from helpfaster_box.store.db import _migrations

HEADER = """-- HelpFaster Box: the complete current schema, generated from store/migrations/
-- by `python -m helpfaster_box.store.schema`. Do not edit: add a migration instead.
"""


def render() -> str:
    con = duckdb.connect(":memory:")
    for _, _, sql in _migrations():
        con.execute(sql)
    parts = [HEADER]
    for (sql,) in con.execute("SELECT sql FROM duckdb_sequences() ORDER BY sequence_name").fetchall():
        parts.append(sql.strip())
    for table, sql in con.execute(
        "SELECT table_name, sql FROM duckdb_tables() ORDER BY table_name"
    ).fetchall():
        parts.append("")
        parts.append(sql.strip())
        for (isql,) in con.execute(
            "SELECT sql FROM duckdb_indexes() WHERE table_name = ? ORDER BY index_name", [table]
        ).fetchall():
            parts.append(isql.strip())
    con.close()
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(render(), end="")
