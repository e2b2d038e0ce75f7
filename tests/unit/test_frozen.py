"""The single binary's model payload: appended after the executable at build time, copied
out once into the cache dir with every file checked against the manifest."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from helpfaster_box.cli.frozen import append_models, payload_index, unpack_models


def fake_models(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    entries = []
    for name, data in (("a.gguf", b"alpha" * 1000), ("b.gguf", b"beta" * 3000)):
        (models / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        entries.append(
            f'[[model]]\nname = "{name}"\nfile = "{name}"\nsize = {len(data)}\nsha256 = "{digest}"\n'
        )
    (models / "manifest.toml").write_text("\n".join(entries))
    return models


def test_models_are_appended_then_unpacked_once_and_checked(tmp_path):
    models = fake_models(tmp_path)
    exe = tmp_path / "exe"
    exe.write_bytes(b"\x7fELF" + b"\0" * 4096)  # stands in for the executable image before the payload
    append_models(exe, models)
    assert set(payload_index(exe)) == {"a.gguf", "b.gguf"}
    assert exe.read_bytes().startswith(b"\x7fELF" + b"\0" * 4096)

    cache = tmp_path / "cache"
    assert unpack_models(exe, models / "manifest.toml", cache) is True
    assert (cache / "a.gguf").read_bytes() == (models / "a.gguf").read_bytes()
    assert (cache / "b.gguf").read_bytes() == (models / "b.gguf").read_bytes()
    assert unpack_models(exe, models / "manifest.toml", cache) is False  # later starts: nothing to do

    (cache / "b.gguf").write_bytes(b"short")  # damaged in the cache: copied again
    assert unpack_models(exe, models / "manifest.toml", cache) is True
    assert (cache / "b.gguf").read_bytes() == (models / "b.gguf").read_bytes()


def test_a_damaged_payload_is_refused(tmp_path):
    models = fake_models(tmp_path)
    exe = tmp_path / "exe"
    exe.write_bytes(b"image")
    append_models(exe, models)
    data = bytearray(exe.read_bytes())
    data[len(b"image") + 10] ^= 0xFF  # flip a byte of a.gguf inside the binary
    exe.write_bytes(bytes(data))
    with pytest.raises(SystemExit, match="damaged"):
        unpack_models(exe, models / "manifest.toml", tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("a.gguf"))


def test_a_binary_without_models_says_so(tmp_path):
    exe = tmp_path / "exe"
    shutil.copy(__file__, exe)
    with pytest.raises(SystemExit, match="no models"):
        payload_index(exe)
