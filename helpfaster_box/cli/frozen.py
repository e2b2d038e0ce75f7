"""Entry point of the single binary (dist/helpfaster-box, built by scripts/binary).

dist/helpfaster-box is a POSIX sh launcher followed by a gzip'd tar of PyInstaller's
one-dir build (scripts/launcher.sh, scripts/selfextract.py): its first start unpacks the
tree once into `<cache dir>/bin/<version>-<build hash>`, every start execs the tree's
executable, which runs this module. (PyInstaller's one-file mode wrote the ~300 MB of
interpreter and native libraries to a temporary directory on every start: 1.3-2.6x
the venv's `serve` start.) The default models ride in that tree under
`_internal/models` (sys._MEIPASS/models, beside the bundled models/manifest.toml).

On start they are placed once into `<cache dir>/models` (hard-linked from the tree when
it is on the same file system, else copied), each checked against the manifest's
sha256, and that directory becomes the default `models_dir` (HELPFASTER_MODELS_DIR): it
must outlive a build, since `models add` copies an operator's GGUF there and records it
in local.toml. Later starts compare the manifest's digest recorded in `.unpacked` and
each file's size (hashing 140 MB again would add ~0.3 s to every start). The cache dir
is HELPFASTER_CACHE_DIR, else $XDG_CACHE_HOME/helpfaster-box, else
~/.cache/helpfaster-box (the launcher resolves it the same way).

Everything else (`serve`, `orgs`, `keys`, `models`, `reindex`, `check`, `--version`,
settings, config file, environment) is the ordinary CLI.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import sys
import tomllib
from pathlib import Path

from helpfaster_box.llm.registry import sha256_file

STAMP = ".unpacked"


def cache_dir() -> Path:
    explicit = os.environ.get("HELPFASTER_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "helpfaster-box"


def unpack_models(source: Path, manifest_file: Path, target: Path) -> bool:
    """Make `target` hold the manifest's models found in `source`; True if it placed any."""
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
    for m in models:
        dest = target / m["file"]
        if dest.is_file() and dest.stat().st_size == m["size"] and sha256_file(dest) == m["sha256"]:
            continue
        tmp = target / f".{m['file']}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.link(source / m["file"], tmp)  # no second 140 MB on disk
        except FileNotFoundError:
            raise SystemExit(
                f"helpfaster-box: bundled model {m['file']} is missing from {source}; the binary is damaged"
            ) from None
        except OSError:
            shutil.copyfile(source / m["file"], tmp)  # another file system
        if sha256_file(tmp) != m["sha256"]:
            tmp.unlink()
            raise SystemExit(
                f"helpfaster-box: bundled model {m['file']} does not match its manifest; the binary is damaged"
            )
        os.replace(tmp, dest)
    shutil.copyfile(manifest_file, target / "manifest.toml")
    stamp.write_text(digest + "\n")
    return True


def main() -> None:
    # The ingestion sandbox parses in multiprocessing children (forkserver): in a frozen
    # binary those children re-run this executable, and freeze_support routes them.
    multiprocessing.freeze_support()
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass and "HELPFASTER_MODELS_DIR" not in os.environ:
        target = cache_dir() / "models"
        bundled = Path(meipass) / "models"
        if unpack_models(bundled, bundled / "manifest.toml", target):
            print(f"helpfaster-box: default models unpacked into {target}", file=sys.stderr)
        os.environ["HELPFASTER_MODELS_DIR"] = str(target)
    from helpfaster_box.cli.main import main as cli

    cli()


if __name__ == "__main__":
    main()
