"""Organizations: the tenant every other row belongs to."""

from __future__ import annotations

from typing import Any

import duckdb

from helpfaster_box.store.db import row_as_dict, rows_as_dicts, scalar
from helpfaster_box.store.ids import new_id, utcnow


def create_org(cur: duckdb.DuckDBPyConnection, name: str, plan: str) -> dict[str, Any]:
    row = {"id": new_id("org"), "name": name, "plan": plan, "created_at": utcnow()}
    cur.execute(
        "INSERT INTO organizations (id, name, plan, created_at) VALUES ($id, $name, $plan, $created_at)",
        row,
    )
    return row


def get_org(cur: duckdb.DuckDBPyConnection, org_id: str) -> dict[str, Any] | None:
    return row_as_dict(cur.execute("SELECT * FROM organizations WHERE id = ?", [org_id]))


def get_org_by_name(cur: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any] | None:
    return row_as_dict(cur.execute("SELECT * FROM organizations WHERE name = ?", [name]))


def list_orgs(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return rows_as_dicts(cur.execute("SELECT * FROM organizations ORDER BY created_at, id"))


def set_plan(cur: duckdb.DuckDBPyConnection, org_id: str, plan: str) -> None:
    cur.execute("UPDATE organizations SET plan = ? WHERE id = ?", [plan, org_id])


def count_orgs(cur: duckdb.DuckDBPyConnection) -> int:
    return int(scalar(cur, "SELECT count(*) FROM organizations"))


# What GET /v1/organization counts as usage; a feature with per-org rows adds its table.
USAGE_TABLES: list[str] = ["chatbots", "sources", "conversations", "leads"]


def usage(cur: duckdb.DuckDBPyConnection, org_id: str) -> dict[str, int]:
    return {
        table: int(scalar(cur, f"SELECT count(*) FROM {table} WHERE org_id = ?", [org_id]))
        for table in USAGE_TABLES
    }
