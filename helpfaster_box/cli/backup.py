"""`backup DIR` and `restore DIR`: a data directory to a directory of files and back.

`backup` asks the running server through the control channel (the server holds the
DuckDB file); with no server it opens the files itself. `restore` needs the box
stopped. See `backup/snapshot.py` for what a backup holds and why it is consistent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from helpfaster_box.backup import control, snapshot
from helpfaster_box.errors import DomainError
from helpfaster_box.settings import Settings
from helpfaster_box.store.db import Database, DatabaseLocked


def _direct(settings: Settings, dest: Path) -> dict[str, Any]:
    """No server: open the database ourselves (no migration: a backup changes nothing)."""
    try:
        db = Database(settings.db_path)
    except DatabaseLocked:
        raise click.ClickException(
            f"{settings.db_path} is held by another process, but no server answered on the control "
            f"channel ({settings.data_path / control.CONTROL_FILE}). Is `serve` starting or stuck?"
        ) from None
    try:
        return snapshot.write_snapshot(db, settings.data_path, dest, made_by="cli")
    finally:
        db.close()


def run_backup(settings: Settings, dest: Path) -> str:
    dest = dest.expanduser().absolute()
    if not settings.db_path.exists():
        raise click.ClickException(f"{settings.data_path} holds no HelpFaster Box database.")
    info = control.read_control(settings.data_path)
    try:
        if info is not None:
            try:
                out = control.request_backup(info, dest)
                return f"backup written by the running server: {out['files']} files, {out['bytes']:,} bytes in {dest}"
            except control.ServerUnreachable:
                pass  # a stale control file: nobody serves, read the files
        manifest = _direct(settings, dest)
    except control.ControlFailed as exc:
        raise click.ClickException(str(exc)) from None
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    return f"backup written: {len(manifest['files'])} files, {manifest['bytes']:,} bytes in {dest}"


def run_restore(settings: Settings, source: Path, force: bool) -> str:
    try:
        manifest = snapshot.restore(source.expanduser().absolute(), settings.data_path, force=force)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    return (
        f"restored {len(manifest['files'])} files from the backup of {manifest['createdAt']} "
        f"(version {manifest['version']}, schema {manifest['schemaVersion']}) into {settings.data_path}"
    )
