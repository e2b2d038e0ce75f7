"""Pack a PyInstaller one-dir build and the default models into one self-extracting file.

    python scripts/selfextract.py ONEDIR MODELS_DIR OUT VERSION

Called by scripts/binary. OUT is scripts/launcher.sh (a POSIX sh header padded to
HEADER bytes) followed by a gzip'd tar of ONEDIR, with MODELS_DIR's manifest models
(checked against models/manifest.toml here) under _internal/models/ and, last, a
.sha256sums of every regular file that the launcher checks after unpacking. The
header carries the payload's sha256 (the build's content hash, naming its cache
directory) and the payload's offset.

Why one-dir inside a self-extracting file and not PyInstaller's one-file mode: the
one-file bootloader writes the ~300 MB of interpreter and native libraries to a new
temporary directory on every start (~2.5 s a start here, 1.3-2.6x the venv's `serve`
start); this file is unpacked once per build and later starts only exec the tree.
Why gzip: the host side must be what a bare Debian has (gzip and tar are essential
packages, zstd is not). Level 6 inflates at the same speed as level 9 and is written
~3x faster.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import sys
import tarfile
import tomllib
from pathlib import Path
from typing import BinaryIO

from helpfaster_box.llm.registry import sha256_file  # stdlib only: runs in the build venv

HEADER = 8192  # bytes of sh before the payload
LAUNCHER = Path(__file__).with_name("launcher.sh")
EXE = "helpfaster-box"


class HashingReader(io.RawIOBase):
    """Reads a file for tarfile while hashing it (each file is read once)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.h = f, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.h.update(data)
        return data


class HashingWriter(io.RawIOBase):
    def __init__(self, f: BinaryIO) -> None:
        self.f, self.h = f, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.h.update(data)
        return self.f.write(data)


def entries(onedir: Path, models_dir: Path) -> list[tuple[str, Path]]:
    """(name in the tar, source path), sorted so that a build's tar is laid out the same."""
    found = [(str(p.relative_to(onedir)), p) for p in onedir.rglob("*")]
    manifest = tomllib.loads((models_dir / "manifest.toml").read_text())["model"]
    # resolved: models/ may hold symlinks to the files (a checkout's models/ often does)
    found += [(f"_internal/models/{m['file']}", (models_dir / m["file"]).resolve()) for m in manifest]
    if not (onedir / EXE).is_file() or not (onedir / "_internal" / "models" / "manifest.toml").is_file():
        raise SystemExit(f"{onedir} is not the one-dir build (no {EXE} or _internal/models/manifest.toml)")
    for m in manifest:
        if sha256_file(models_dir / m["file"]) != m["sha256"]:
            raise SystemExit(f"{models_dir / m['file']} does not match its manifest: run ./install.sh")
    return sorted(found)


def _info(name: str, path: Path) -> tarfile.TarInfo:
    st = path.lstat()
    info = tarfile.TarInfo(name)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = int(st.st_mtime)
    if stat.S_ISLNK(st.st_mode):
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
    elif stat.S_ISDIR(st.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = st.st_size, 0o755 if st.st_mode & 0o111 else 0o644
    return info


def write_payload(out: BinaryIO, onedir: Path, models_dir: Path, level: int = 6) -> str:
    """Write the gzip'd tar to `out`; return its sha256."""
    sink = HashingWriter(out)
    sums = []
    with (
        gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=level, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for name, path in entries(onedir, models_dir):
            info = _info(name, path)
            if not info.isreg():
                tar.addfile(info)
                continue
            with open(path, "rb") as f:
                reader = HashingReader(f)
                tar.addfile(info, reader)  # type: ignore[arg-type]
            sums.append(f"{reader.h.hexdigest()}  {name}\n")
        data = "".join(sums).encode()
        info = tarfile.TarInfo(".sha256sums")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return sink.h.hexdigest()


def header(key: str, version: str) -> bytes:
    text = (
        LAUNCHER.read_text()
        .replace("@KEY@", key)
        .replace("@ID@", f"{version}-{key[:16]}")
        .replace("@VERSION@", version)
        .replace("@OFFSET@", str(HEADER + 1))  # tail -c +N counts from 1
    ).encode()
    if len(text) > HEADER - 2:
        raise SystemExit(f"{LAUNCHER} is {len(text)} bytes, over the {HEADER}-byte header")
    return text + b"#" * (HEADER - len(text) - 1) + b"\n"


def pack(onedir: Path, models_dir: Path, out: Path, version: str, level: int = 6) -> str:
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(b"\0" * HEADER)  # the header is written once the payload's hash is known
        key = write_payload(f, onedir, models_dir, level)  # type: ignore[arg-type]
        f.seek(0)
        f.write(header(key, version))
    tmp.chmod(0o755)
    os.replace(tmp, out)
    return key


if __name__ == "__main__":
    onedir_arg, models_arg, out_arg, version_arg = sys.argv[1:5]
    print(pack(Path(onedir_arg), Path(models_arg), Path(out_arg), version_arg))
