"""The helpfaster-box command: serve, orgs, keys, models, reindex, check, backup, restore."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from helpfaster_box import __version__
from helpfaster_box.keys import queries as keys_q
from helpfaster_box.organizations import queries as orgs_q
from helpfaster_box.settings import PLANS, Settings, SettingsError, load_settings
from helpfaster_box.store.db import Database, DatabaseLocked, SchemaTooNew, open_database
from helpfaster_box.store.ids import iso

SETTING_FLAGS = {"host", "port", "log_level"}


def common_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--data-dir and --config on every command (also HELPFASTER_DATA_DIR / HELPFASTER_CONFIG)."""

    @click.option(
        "--config",
        "config_file",
        envvar="HELPFASTER_CONFIG",
        type=click.Path(dir_okay=False),
        help="TOML config file (see config/helpfaster.toml).",
    )
    @click.option(
        "--data-dir",
        envvar="HELPFASTER_DATA_DIR",
        type=click.Path(file_okay=False),
        help="Data directory (default ~/.local/share/helpfaster-box).",
    )
    @functools.wraps(fn)
    def wrapper(*args: Any, config_file: str | None, data_dir: str | None, **kwargs: Any) -> Any:
        # Options named like a setting are CLI-layer overrides (the top layer).
        overrides = {"data_dir": data_dir}
        for name in SETTING_FLAGS & kwargs.keys():
            overrides[name] = kwargs.pop(name)
        settings = _settings(config_file, overrides)
        return fn(*args, settings=settings, **kwargs)

    return wrapper


def _settings(config_file: str | None, overrides: dict[str, Any]) -> Settings:
    try:
        return load_settings(config_file, overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _open(settings: Settings) -> Database:
    try:
        return open_database(settings.db_path)
    except (DatabaseLocked, SchemaTooNew) as exc:
        raise click.ClickException(str(exc)) from None


def _org(db: Database, name: str) -> dict[str, Any]:
    org = db.read(orgs_q.get_org_by_name, name)
    if org is None:
        raise click.ClickException(f"no organization named {name!r} (see `helpfaster-box orgs list`)")
    return org


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="helpfaster-box")
def main() -> None:
    """HelpFaster Box: AI support chatbots behind the HelpFaster REST API, on this machine."""


def _settings_epilog() -> str:
    from helpfaster_box.settings import FIELDS, describe

    lines = ["\b", "Every setting (config file key / environment variable):"]
    for name in FIELDS:
        lines.append(f"  {name} / HELPFASTER_{name.upper()}: {describe(name)}")
    return "\n".join(lines)


@main.command(epilog=_settings_epilog())
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="TCP port (default 8080).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Log verbosity.")
@common_options
def serve(settings: Settings) -> None:
    """Serve the API (and create a first admin key on an empty data dir)."""
    from helpfaster_box.cli.serve import run

    run(settings)


@main.group()
def orgs() -> None:
    """Manage organizations (while the server is stopped)."""


@orgs.command("create")
@click.argument("name")
@click.option("--plan", type=click.Choice(PLANS), default="free", show_default=True)
@common_options
def orgs_create(settings: Settings, name: str, plan: str) -> None:
    """Create an organization."""
    db = _open(settings)
    try:
        if db.read(orgs_q.get_org_by_name, name):
            raise click.ClickException(f"an organization named {name!r} already exists")
        org = db.write(orgs_q.create_org, name, plan)
    finally:
        db.close()
    click.echo(f"created organization {org['name']} ({org['id']}, plan {plan})")


@orgs.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@common_options
def orgs_list(settings: Settings, as_json: bool) -> None:
    """List organizations."""
    db = _open(settings)
    try:
        rows = db.read(orgs_q.list_orgs)
    finally:
        db.close()
    for org in rows:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "id": org["id"],
                        "name": org["name"],
                        "plan": org["plan"],
                        "createdAt": iso(org["created_at"]),
                    }
                )
            )
        else:
            click.echo(f"{org['id']}  {org['plan']:<8} {org['name']}")


@orgs.command("set-plan")
@click.argument("name")
@click.argument("plan", type=click.Choice(PLANS))
@common_options
def orgs_set_plan(settings: Settings, name: str, plan: str) -> None:
    """Change an organization's plan (and so its rate limit)."""
    db = _open(settings)
    try:
        org = _org(db, name)
        db.write(orgs_q.set_plan, org["id"], plan)
    finally:
        db.close()
    click.echo(f"{name} is now on the {plan} plan")


@main.group()
def keys() -> None:
    """Manage API keys (while the server is stopped; use /v1/api-keys while it runs)."""


@keys.command("create")
@click.option("--org", "org_name", required=True, help="Organization name.")
@click.option("--role", type=click.Choice(keys_q.ROLES), default="member", show_default=True)
@click.option("--name", help="A label for the key.")
@click.option("--json", "as_json", is_flag=True, help='Print {"id","key","org","role"} as JSON.')
@common_options
def keys_create(settings: Settings, org_name: str, role: str, name: str | None, as_json: bool) -> None:
    """Create an API key; the key is printed once and never again."""
    db = _open(settings)
    try:
        org = _org(db, org_name)
        row, key = db.write(keys_q.create_key, org["id"], role, name)
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps({"id": row["id"], "key": key, "org": org["name"], "role": role}))
    else:
        click.echo(f"created {role} key {row['id']} for {org['name']}")
        click.echo(f"  {key}")
        click.echo("Store it now: it is not shown again.")


@keys.command("list")
@click.option("--org", "org_name", help="Only this organization's keys.")
@common_options
def keys_list(settings: Settings, org_name: str | None) -> None:
    """List keys (prefix and name only)."""
    db = _open(settings)
    try:
        org_id = _org(db, org_name)["id"] if org_name else None
        rows = db.read(keys_q.list_keys, org_id)
    finally:
        db.close()
    for k in rows:
        status = "revoked" if k["revoked_at"] else "active"
        click.echo(
            f"{k['id']}  {k['prefix']}…  {k['role']:<6} {status:<7} {k['org_name']}  {k['name'] or ''}"
        )


@keys.command("revoke")
@click.argument("key_id")
@common_options
def keys_revoke(settings: Settings, key_id: str) -> None:
    """Revoke a key; requests with it fail from now on."""
    db = _open(settings)
    try:
        ok = db.write(keys_q.revoke_key, key_id)
    finally:
        db.close()
    if not ok:
        raise click.ClickException(f"no active key {key_id}")
    click.echo(f"revoked {key_id}")


@main.command()
@click.option("--chatbot", "chatbot_id", help="Only this chatbot (default: all).")
@click.option("--reembed", is_flag=True, help="Embed every chunk again (after changing the embedding model).")
@common_options
def reindex(settings: Settings, chatbot_id: str | None, reembed: bool) -> None:
    """Rebuild the FAISS + BM25 indexes from the database (server stopped)."""
    from helpfaster_box.knowledge.reindex import reindex as rebuild

    db = _open(settings)
    embedder = None
    try:
        if reembed:
            from helpfaster_box.llm.embedder import Embedder
            from helpfaster_box.llm.registry import resolve_model

            embedder = Embedder(str(resolve_model(settings, "embedding")))
        done = rebuild(settings, db, chatbot_id, embedder, log_fn=click.echo)
    finally:
        if embedder is not None:
            embedder.close()
        db.close()
    click.echo(f"reindexed {len(done)} chatbot(s), {sum(done.values())} chunks")


@main.command()
@common_options
def check(settings: Settings) -> None:
    """Check the settings, the database and the models without serving."""
    from helpfaster_box.llm.registry import ModelError, resolve_model

    click.echo(f"settings: ok (data dir {settings.data_path})")
    db = _open(settings)
    try:
        click.echo(f"database: ok ({settings.db_path}, schema version {db.schema_version()})")
    finally:
        db.close()
    problems = 0
    for role in ("chat", "embedding"):
        try:
            path = resolve_model(settings, role)
        except ModelError as exc:
            click.echo(f"{role} model: MISSING ({exc})")
            problems += 1
            continue
        ok = path.is_file()
        problems += not ok
        click.echo(f"{role} model: {'ok' if ok else 'MISSING'} ({path})")
    if problems:
        raise click.ClickException(
            "some models are missing: run ./install.sh or `helpfaster-box models provision`"
        )


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@common_options
def backup(settings: Settings, directory: Path) -> None:
    """Write a consistent backup of the data dir into DIRECTORY (new or empty), even while serving."""
    from helpfaster_box.cli.backup import run_backup

    click.echo(run_backup(settings, directory))


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--force", is_flag=True, help="Replace the database, indexes and uploads of a non-empty data dir."
)
@common_options
def restore(settings: Settings, directory: Path, force: bool) -> None:
    """Verify the backup in DIRECTORY and restore it into the data dir (server stopped)."""
    from helpfaster_box.cli.backup import run_restore

    click.echo(run_restore(settings, directory, force))


def _register_optional() -> None:
    """Subcommands that live in their own modules."""
    try:
        from helpfaster_box.cli.models import models
    except ImportError:  # pragma: no cover - during development only
        return
    main.add_command(models)


_register_optional()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
