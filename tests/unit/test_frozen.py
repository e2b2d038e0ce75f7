"""The single binary's default models: shipped in the unpacked one-dir tree, placed once
into the cache dir (hard-linked, else copied) with every file checked against the
manifest; later starts only compare the manifest's digest and the sizes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from helpfaster_box.cli.frozen import unpack_models


def fake_models(tmp_path: Path) -> Path:
    models = tmp_path / "tree" / "_internal" / "models"
    models.mkdir(parents=True)
    entries = []
    for name, data in (("a.gguf", b"alpha" * 1000), ("b.gguf", b"beta" * 3000)):
        (models / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        entries.append(
            f'[[model]]\nname = "{name}"\nfile = "{name}"\nsize = {len(data)}\nsha256 = "{digest}"\n'
        )
    (models / "manifest.toml").write_text("\n".join(entries))
    return models


def test_models_are_placed_once_and_checked(tmp_path):
    bundled = fake_models(tmp_path)
    cache = tmp_path / "cache"
    assert unpack_models(bundled, bundled / "manifest.toml", cache) is True
    assert (cache / "a.gguf").read_bytes() == (bundled / "a.gguf").read_bytes()
    assert (cache / "b.gguf").read_bytes() == (bundled / "b.gguf").read_bytes()
    assert (cache / "a.gguf").stat().st_ino == (bundled / "a.gguf").stat().st_ino  # linked, not copied
    assert (cache / "manifest.toml").read_bytes() == (bundled / "manifest.toml").read_bytes()
    assert not list(cache.glob(".*.tmp"))
    assert unpack_models(bundled, bundled / "manifest.toml", cache) is False  # later starts: nothing to do

    (cache / "b.gguf").unlink()
    (cache / "b.gguf").write_bytes(b"short")  # damaged in the cache: placed again
    assert unpack_models(bundled, bundled / "manifest.toml", cache) is True
    assert (cache / "b.gguf").read_bytes() == (bundled / "b.gguf").read_bytes()


def test_a_damaged_bundled_model_is_refused(tmp_path):
    bundled = fake_models(tmp_path)
    data = bytearray((bundled / "a.gguf").read_bytes())
    data[10] ^= 0xFF  # a flipped byte in the unpacked tree
    (bundled / "a.gguf").write_bytes(bytes(data))
    with pytest.raises(SystemExit, match="damaged"):
        unpack_models(bundled, bundled / "manifest.toml", tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*a.gguf*"))


def test_a_missing_bundled_model_says_so(tmp_path):
    bundled = fake_models(tmp_path)
    (bundled / "b.gguf").unlink()
    with pytest.raises(SystemExit, match="missing"):
        unpack_models(bundled, bundled / "manifest.toml", tmp_path / "cache")
