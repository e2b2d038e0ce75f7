"""`serve`: bootstrap an empty data dir, then run the app under uvicorn."""

from __future__ import annotations

import click
import uvicorn

from helpfaster_box.observability import logs
from helpfaster_box.organizations.service import bootstrap
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import DatabaseLocked, SchemaTooNew
from helpfaster_box.web.app import create_app


def run(settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_format)
    try:
        key = bootstrap(settings)
    except (DatabaseLocked, SchemaTooNew) as exc:
        raise click.ClickException(str(exc)) from None
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
        log_config=None,  # logs.configure did it: JSON or text, through the root logger
        access_log=False,  # the app writes its own access line (web/observe.py)
        proxy_headers=False,  # X-Forwarded-* are read in the app, from trusted_proxies only
        timeout_graceful_shutdown=10,
    )
