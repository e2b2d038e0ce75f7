"""The model registry: which model files exist, which is active per role, are they intact.

models/manifest.toml (shipped, never edited) lists the default models and
where they come from; models/local.toml (operator-local, gitignored) records
added models and which model is active for each role. Placing and adding files
is `provision.py`; the command line is `helpfaster-box models ...`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

ROLES: tuple[str, ...] = ("chat", "embedding")
MANIFEST = "manifest.toml"
LOCAL = "local.toml"


class ModelError(Exception):
    """A model cannot be provisioned, added or found; the message says why."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    role: str
    file: str
    sha256: str
    origin: str  # "manifest" or "local"
    package: str | None = None
    version: str | None = None
    active: bool = False
    present: bool = False


class ModelStatus(NamedTuple):
    name: str
    role: str
    ok: bool
    detail: str


def default_models_dir() -> Path:
    """models/ at the project root, unless HELPFASTER_MODELS_DIR says otherwise."""
    env = os.environ.get("HELPFASTER_MODELS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# -- manifest and local.toml ---------------------------------------------------


def _manifest(models_dir: Path) -> list[dict[str, Any]]:
    path = Path(models_dir) / MANIFEST
    if not path.is_file():
        raise ModelError(f"{path} not found")
    with open(path, "rb") as f:
        return tomllib.load(f).get("model", [])


def _local(models_dir: Path) -> dict[str, Any]:
    path = Path(models_dir) / LOCAL
    if not path.is_file():
        return {"active": {}, "model": []}
    with open(path, "rb") as f:
        data = tomllib.load(f)
    data.setdefault("active", {})
    data.setdefault("model", [])
    return data


def _toml_str(value: str) -> str:
    # A JSON string is a TOML basic string (same escapes) as long as nothing
    # becomes a surrogate-pair escape (ensure_ascii=False) and DEL is escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _write_local(models_dir: Path, data: dict[str, Any]) -> None:
    lines = [
        "# Operator-local model choices, written by `helpfaster-box models add`.",
        "# Not shipped, not in git; models/manifest.toml holds the defaults.",
        "",
        "[active]",
    ]
    lines += [f"{role} = {_toml_str(data['active'][role])}" for role in ROLES if role in data["active"]]
    for m in data["model"]:
        lines += ["", "[[model]]"]
        lines += [f"{k} = {_toml_str(str(m[k]))}" for k in ("name", "role", "file", "sha256", "added")]
    _atomic_write_bytes(Path(models_dir) / LOCAL, ("\n".join(lines) + "\n").encode())


def _atomic_write_bytes(dest: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def list_models(models_dir: str | os.PathLike[str]) -> list[ModelEntry]:
    """Manifest defaults then local additions, each flagged active/present."""
    models_dir = Path(models_dir)
    manifest, local = _manifest(models_dir), _local(models_dir)
    active = {m["role"]: m["file"] for m in reversed(manifest)} | local["active"]  # first wins
    entries = [
        ModelEntry(
            m["name"],
            m["role"],
            m["file"],
            m["sha256"],
            "manifest",
            m.get("package"),
            m.get("version"),
        )
        for m in manifest
    ] + [ModelEntry(m["name"], m["role"], m["file"], m["sha256"], "local") for m in local["model"]]
    return [
        replace(e, active=active.get(e.role) == e.file, present=(models_dir / e.file).is_file())
        for e in entries
    ]


def active_model_path(models_dir: str | os.PathLike[str], role: str) -> Path:
    """local.toml's active model for `role`, else the manifest default."""
    if role not in ROLES:
        raise ModelError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
    models_dir = Path(models_dir)
    chosen = _local(models_dir)["active"].get(role)
    if chosen:
        return models_dir / chosen
    for m in _manifest(models_dir):
        if m["role"] == role:
            return models_dir / m["file"]
    raise ModelError(f"no {role} model in {models_dir / MANIFEST}")


def verify(models_dir: str | os.PathLike[str]) -> list[ModelStatus]:
    """Check every listed model file exists with its recorded sha256."""
    models_dir = Path(models_dir)
    results = []
    for e in list_models(models_dir):
        path = models_dir / e.file
        if not path.is_file():
            results.append(ModelStatus(e.name, e.role, False, f"missing: {path}"))
            continue
        actual = sha256_file(path)
        if actual != e.sha256:
            results.append(
                ModelStatus(e.name, e.role, False, f"sha256 mismatch: {actual}, expected {e.sha256}")
            )
        else:
            label = "active" if e.active else "available"
            results.append(ModelStatus(e.name, e.role, True, f"ok ({label}, {e.file})"))
    # local.toml edited by hand can name an active file that no entry lists.
    listed = {e.file for e in list_models(models_dir)}
    for role, file in _local(models_dir)["active"].items():
        if file not in listed:
            results.append(ModelStatus(file, role, False, "active in local.toml but not recorded"))
    return results


def resolve_model(settings: Any, role: str) -> Path:
    """The configured model file for a role: an explicit setting, else models_dir's active one."""
    explicit = settings.chat_model if role == "chat" else settings.embedding_model
    return Path(explicit).expanduser() if explicit else active_model_path(settings.models_dir, role)
