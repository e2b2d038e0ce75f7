"""Organizations: the first run of an empty box, and an org's own view of itself."""

from __future__ import annotations

from typing import Any

from helpfaster_box.keys import queries as keys_q
from helpfaster_box.organizations import queries as orgs_q
from helpfaster_box.organizations.schemas import Limits, OrganizationOut
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import Database, open_database
from helpfaster_box.store.ids import iso

FIRST_ORG = "default"
FIRST_PLAN = "scale"


def bootstrap(settings: Settings) -> str | None:
    """On an empty database create the `default` org and an admin key; return the key.

    Raises store.db.DatabaseLocked / SchemaTooNew when the database cannot be opened.
    """
    db = open_database(settings.db_path)
    try:

        def first_run(cur: Any) -> str | None:
            if orgs_q.count_orgs(cur):
                return None
            org = orgs_q.create_org(cur, FIRST_ORG, FIRST_PLAN)
            _, key = keys_q.create_key(cur, org["id"], "admin", "first admin key")
            return key

        return db.write(first_run)
    finally:
        db.close()


async def describe(db: Database, settings: Settings, org_id: str) -> OrganizationOut:
    def read(cur: Any) -> tuple[dict[str, Any], dict[str, int]]:
        org = orgs_q.get_org(cur, org_id)
        assert org is not None  # the key that authenticated belongs to it
        return org, orgs_q.usage(cur, org_id)

    org, usage = await db.aread(read)
    return OrganizationOut(
        id=org["id"],
        name=org["name"],
        plan=org["plan"],
        created_at=iso(org["created_at"]),
        limits=Limits(requests_per_minute=settings.rate_limit_for(org["plan"])),
        usage=usage,
    )
