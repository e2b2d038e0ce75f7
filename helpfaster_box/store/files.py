"""Data files are private to the service user, whatever the umask.

The data directory holds conversations, leads (personal data), uploaded originals and the
webhook secret key. Under the common umask 022 it was 0755 and helpfaster.duckdb 0644:
readable by every local user. Directories are made 0700 and files 0600 explicitly here
(the systemd unit adds UMask=0077 and StateDirectoryMode=0700 for whatever else appears,
such as DuckDB's .wal, which sits inside the 0700 directory anyway).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """mkdir -p where every directory it creates, and the directory itself, is 0700
    (existing parents are left as they are)."""
    missing = []
    here = path
    while not here.exists():
        missing.append(here)
        here = here.parent
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)  # mkdir's mode is masked by the umask
    if path.stat().st_mode & 0o777 != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """While the server runs, files others create for us (DuckDB's .wal, faiss temp files)
    are private too: the umask gains 077, and is restored at the end."""
    old = os.umask(0o077)
    os.umask(old | 0o077)
    try:
        yield
    finally:
        os.umask(old)


def open_private(path: Path) -> BinaryIO:
    """Open for writing (truncating) a file only its owner can read, created 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # an existing file keeps its old mode through O_CREAT
    return os.fdopen(fd, "wb")


def write_durably(path: Path, data: bytes | memoryview) -> None:
    """Write a private file and fsync it: its bytes are on disk before anything that
    points at it is committed (a power cut otherwise leaves it empty under its name)."""
    with open_private(path) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new name in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private(path: Path) -> None:
    """0600 on an existing file (a database file another library created)."""
    if path.exists():
        os.chmod(path, FILE_MODE)
