"""Write, verify and restore a backup directory.

A backup is a plain directory an operator can copy anywhere (rsync, tar, a USB disk):

    helpfaster.duckdb      the database as of one instant (Database.snapshot)
    indexes/, uploads/     the FAISS + BM25 files and the original documents
    manifest.json          format, version, schema version, time, and every file with
                           its size and sha256; written last, so a backup cut short
                           has none and restore refuses it

Consistency while serving: the server runs `write_snapshot` as a job of the
knowledge worker (the one thread that changes index files), and the database copy
happens under the DB write lock, so the indexes cannot move and no transaction can
commit while they are copied. Uploads are written before the transaction that
records their source, so every source in the copied database has its original. An
index that still disagrees with the database (a crash mid-save) is rebuilt from the
database at the next start, as always.

Restore refuses: a backup whose files do not match the manifest, a schema newer than
this code knows, a data dir in use by a server, and a non-empty data dir unless forced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb

from helpfaster_box import __version__
from helpfaster_box.errors import Conflict, Invalid
from helpfaster_box.store.db import Database, latest_version
from helpfaster_box.store.ids import iso, utcnow

MANIFEST = "manifest.json"
FORMAT = 1
DB_FILE = "helpfaster.duckdb"
TREES = ("indexes", "uploads")
# What a restore replaces in the data dir (anything else there is left alone).
MANAGED = (DB_FILE, f"{DB_FILE}.wal", *TREES)


def sha256_of(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def prepare_target(dest: Path, data_dir: Path) -> Path:
    """An absolute, empty (or new) directory outside the data dir."""
    if not dest.is_absolute():
        raise Invalid("The backup directory must be an absolute path.", field="dir")
    dest = Path(os.path.normpath(dest))
    data_dir = data_dir.resolve()
    if _inside(dest.resolve(), data_dir) or _inside(data_dir, dest.resolve()):
        raise Invalid("The backup directory must be outside the data directory.", field="dir")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise Conflict(f"{dest} exists and is not an empty directory; choose a new one.")
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def _copy_tree(src: Path, dest: Path) -> None:
    """Copy a tree, skipping dot files (temporary files of a save or an upload in progress)."""
    if not src.is_dir():
        dest.mkdir()
        return
    shutil.copytree(src, dest, ignore=lambda _dir, names: [n for n in names if n.startswith(".")])


def _files(root: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST):
        out.append(
            {
                "path": path.relative_to(root).as_posix(),
                "bytes": path.stat().st_size,
                "sha256": sha256_of(path),
            }
        )
    return out


def write_snapshot(db: Database, data_dir: Path, dest: Path, *, made_by: str) -> dict[str, Any]:
    """Copy the database (consistently), indexes and uploads into `dest`; returns the manifest."""
    started = time.perf_counter()
    dest = prepare_target(dest, data_dir)
    db.snapshot(dest / DB_FILE)
    for tree in TREES:
        _copy_tree(data_dir / tree, dest / tree)
    files = _files(dest)
    manifest = {
        "format": FORMAT,
        "version": __version__,
        "schemaVersion": db.schema_version(),
        "createdAt": iso(utcnow()),
        "madeBy": made_by,
        "files": files,
        "bytes": sum(f["bytes"] for f in files),
        "seconds": round(time.perf_counter() - started, 3),
    }
    tmp = dest / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(dest / MANIFEST)
    return manifest


def verify(backup_dir: Path) -> dict[str, Any]:
    """The manifest of a complete, intact backup; Invalid naming what is wrong otherwise."""
    try:
        manifest = json.loads((backup_dir / MANIFEST).read_text())
    except FileNotFoundError:
        raise Invalid(f"{backup_dir} has no {MANIFEST}: not a backup, or one cut short.") from None
    except (OSError, ValueError) as exc:
        raise Invalid(f"{backup_dir / MANIFEST} cannot be read: {exc}") from None
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), list):
        raise Invalid(f"{backup_dir / MANIFEST} is not a backup manifest this version reads.")
    problems = []
    root = backup_dir.resolve()
    for entry in manifest["files"]:
        path = (backup_dir / entry["path"]).resolve()
        if not _inside(path, root):
            problems.append(f"{entry['path']}: outside the backup")
        elif not path.is_file():
            problems.append(f"{entry['path']}: missing")
        elif path.stat().st_size != entry["bytes"] or sha256_of(path) != entry["sha256"]:
            problems.append(f"{entry['path']}: checksum mismatch")
    if not any(e["path"] == DB_FILE for e in manifest["files"]):
        problems.append(f"{DB_FILE}: not in the manifest")
    if problems:
        raise Invalid(f"{backup_dir} is damaged: " + "; ".join(problems[:10]))
    return manifest


def ensure_not_in_use(data_dir: Path) -> None:
    """Refuse while a process (a server) holds the data dir's database."""
    db_file = data_dir / DB_FILE
    if not db_file.exists():
        return
    try:
        duckdb.connect(str(db_file)).close()
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise Conflict(
                f"{db_file} is in use (is `helpfaster-box serve` running?); stop it first."
            ) from None
        raise


def restore(backup_dir: Path, data_dir: Path, *, force: bool) -> dict[str, Any]:
    """Bring `data_dir` to the state of the backup; returns the backup's manifest."""
    manifest = verify(backup_dir)
    if int(manifest["schemaVersion"]) > latest_version():
        raise Invalid(
            f"The backup has schema version {manifest['schemaVersion']}, newer than this HelpFaster Box "
            f"knows ({latest_version()}); upgrade first."
        )
    ensure_not_in_use(data_dir)
    if data_dir.exists() and any(data_dir.iterdir()) and not force:
        raise Conflict(f"{data_dir} is not empty; pass --force to replace its database, indexes and uploads.")
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = data_dir / f".restore-{secrets.token_hex(4)}"
    try:
        staging.mkdir()
        for entry in manifest["files"]:
            target = staging / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(backup_dir / entry["path"], target)
        for tree in TREES:
            (staging / tree).mkdir(exist_ok=True)
        for name in MANAGED:  # the swap: old state out, the verified copy in
            old = data_dir / name
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink(missing_ok=True)
            if (staging / name).exists():
                (staging / name).replace(old)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    return manifest
