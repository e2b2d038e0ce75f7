"""Entry point of the single binary (dist/helpfaster-box, built by scripts/binary).

PyInstaller's one-file bootloader unpacks the interpreter and the libraries into a
temporary directory on each run. The default models are not among them (another
140 MB to inflate and write on every start): scripts/binary appends them after the
executable's ELF image (PyInstaller 6 keeps its own archive in an ELF section, so
trailing bytes do not disturb it), followed by a JSON index and a magic trailer.
On start they are copied once from there into `<cache dir>/models`, each checked
against the bundled models/manifest.toml's sha256 on the way, and that directory
becomes the default `models_dir` (HELPFASTER_MODELS_DIR): it must outlive a run,
since `models add` copies an operator's GGUF there and records it in local.toml.
Later starts compare the manifest's digest recorded in `.unpacked` and each file's
size (hashing 140 MB again would add ~0.3 s to every start). The cache dir is
HELPFASTER_CACHE_DIR, else $XDG_CACHE_HOME/helpfaster-box, else ~/.cache/helpfaster-box.

Everything else (`serve`, `orgs`, `keys`, `models`, `reindex`, `check`, `--version`,
settings, config file, environment) is the ordinary CLI.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import tomllib
from pathlib import Path

STAMP = ".unpacked"
MAGIC = b"HFBOX-MODELS-v1\n"  # last 16 bytes of the binary; the 8 before: index length


def payload_index(exe: Path) -> dict[str, dict[str, int]]:
    """{file name: {"offset", "size"}} of the models appended to `exe`."""
    with open(exe, "rb") as f:
        f.seek(-24, os.SEEK_END)
        tail = f.read(24)
        if tail[8:] != MAGIC:
            raise SystemExit("helpfaster-box: this binary carries no models (built without them?)")
        length = int.from_bytes(tail[:8], "little")
        f.seek(-24 - length, os.SEEK_END)
        return dict(json.loads(f.read(length)))


def cache_dir() -> Path:
    explicit = os.environ.get("HELPFASTER_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "helpfaster-box"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def unpack_models(exe: Path, manifest_file: Path, target: Path) -> bool:
    """Make `target` hold the default models appended to `exe`; True if it copied them."""
    manifest = manifest_file.read_bytes()
    digest = hashlib.sha256(manifest).hexdigest()
    models = tomllib.loads(manifest.decode())["model"]
    stamp = target / STAMP
    if (
        stamp.is_file()
        and stamp.read_text().strip() == digest
        and all(
            (target / m["file"]).is_file() and (target / m["file"]).stat().st_size == m["size"]
            for m in models
        )
    ):
        return False
    target.mkdir(parents=True, exist_ok=True)
    index = payload_index(exe)
    for m in models:
        dest = target / m["file"]
        if dest.is_file() and dest.stat().st_size == m["size"] and _sha256(dest) == m["sha256"]:
            continue
        tmp = target / f".{m['file']}.tmp"
        _copy_range(exe, index[m["file"]]["offset"], index[m["file"]]["size"], tmp)
        if _sha256(tmp) != m["sha256"]:
            tmp.unlink()
            raise SystemExit(
                f"helpfaster-box: bundled model {m['file']} does not match its manifest; the binary is damaged"
            )
        os.replace(tmp, dest)
    shutil.copyfile(manifest_file, target / "manifest.toml")
    stamp.write_text(digest + "\n")
    return True


def append_models(exe: Path, models_dir: Path) -> None:
    """Build step (scripts/binary): append the manifest's models to `exe`, then the
    JSON index {file: {offset, size}}, its length (8 bytes, little-endian) and MAGIC."""
    index: dict[str, dict[str, int]] = {}
    with open(exe, "ab") as out:
        for m in tomllib.loads((models_dir / "manifest.toml").read_text())["model"]:
            src, h = models_dir / m["file"], hashlib.sha256()
            offset = out.tell()
            with open(src, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                    out.write(chunk)
            if h.hexdigest() != m["sha256"]:
                raise SystemExit(f"{src} does not match {models_dir / 'manifest.toml'}: run ./install.sh")
            index[m["file"]] = {"offset": offset, "size": out.tell() - offset}
        data = json.dumps(index).encode()
        out.write(data + len(data).to_bytes(8, "little") + MAGIC)


def _copy_range(src: Path, offset: int, size: int, dest: Path) -> None:
    with open(src, "rb") as f, open(dest, "wb") as out:
        f.seek(offset)
        left = size
        while left:
            chunk = f.read(min(left, 1 << 20))
            if not chunk:
                raise SystemExit(
                    "helpfaster-box: the binary is truncated; copy it again and check its sha256"
                )
            out.write(chunk)
            left -= len(chunk)


def main() -> None:
    # The ingestion sandbox parses in multiprocessing children (forkserver): in a frozen
    # binary those children re-run this executable, and freeze_support routes them.
    multiprocessing.freeze_support()
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass and "HELPFASTER_MODELS_DIR" not in os.environ:
        target = cache_dir() / "models"
        if unpack_models(Path(sys.executable), Path(meipass) / "models" / "manifest.toml", target):
            print(f"helpfaster-box: default models unpacked into {target}", file=sys.stderr)
        os.environ["HELPFASTER_MODELS_DIR"] = str(target)
    from helpfaster_box.cli.main import main as cli

    cli()


if __name__ == "__main__":
    if not getattr(sys, "frozen", False) and sys.argv[1:2] == ["append"]:
        # the build step: python -m helpfaster_box.cli.frozen append EXE MODELS_DIR
        append_models(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
