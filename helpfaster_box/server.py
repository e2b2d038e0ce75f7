"""`serve`: bootstrap an empty data dir, then run the app under uvicorn."""

from __future__ import annotations

import logging

import click
import uvicorn

from .app import create_app
from .settings import Settings
from .store import keys as keys_q
from .store import orgs as orgs_q
from .store.db import DatabaseLocked, SchemaTooNew, open_database


def bootstrap(settings: Settings) -> str | None:
    """On an empty database create the `default` org and an admin key; return the key."""
    try:
        db = open_database(settings.db_path)
    except (DatabaseLocked, SchemaTooNew) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        def first_run(cur):
            if orgs_q.count_orgs(cur):
                return None
            org = orgs_q.create_org(cur, "default", "scale")
            _, key = keys_q.create_key(cur, org["id"], "admin", "first admin key")
            return key

        return db.write(first_run)
    finally:
        db.close()


def run(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    key = bootstrap(settings)
    url = f"http://{settings.host}:{settings.port}"
    click.echo(f"HelpFaster Box serving {url}  (API docs: {url}/v1/docs)")
    click.echo(f"Data directory: {settings.data_path}")
    if key:
        click.echo("First start: created organization 'default' and an admin API key:")
        click.echo(f"  {key}")
        click.echo("Store it now: it is not shown again.")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        timeout_graceful_shutdown=10,
    )
