"""The single binary's self-extracting launcher (scripts/launcher.sh, packed by
scripts/selfextract.py) on a stand-in one-dir tree whose executable is a shell script
that prints its arguments and environment: run under `env -i` with no PATH, unpacked
once per build, atomic against a start killed mid-unpack and against concurrent starts,
a damaged file refused. The real tree is checked by tests/e2e/test_single_binary.py."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("selfextract", ROOT / "scripts" / "selfextract.py")
assert _spec and _spec.loader
selfextract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(selfextract)

EXE = """#!/bin/sh
for a in "$@"; do printf 'arg:%s\\n' "$a"; done
exec /usr/bin/env
"""


def build(tmp_path: Path, big: int = 0) -> Path:
    """A packed stand-in binary; `big` bytes of incompressible data make unpacking slow."""
    onedir, models = tmp_path / "onedir", tmp_path / "models"
    (onedir / "_internal" / "models").mkdir(parents=True)
    (onedir / "helpfaster-box").write_text(EXE)
    (onedir / "helpfaster-box").chmod(0o755)
    (onedir / "_internal" / "lib.so").write_bytes(os.urandom(big) if big else b"\x7fELF lib")
    (onedir / "_internal" / "lib.so.1").symlink_to("lib.so")
    models.mkdir()
    data = b"gguf" * 1000
    (tmp_path / "real.gguf").write_bytes(data)
    (models / "m.gguf").symlink_to(tmp_path / "real.gguf")  # as in a checkout's models/
    manifest = f'[[model]]\nname = "m"\nfile = "m.gguf"\nsize = {len(data)}\nsha256 = "{hashlib.sha256(data).hexdigest()}"\n'
    (models / "manifest.toml").write_text(manifest)
    (onedir / "_internal" / "models" / "manifest.toml").write_text(manifest)
    out = tmp_path / "dist" / "helpfaster-box"
    out.parent.mkdir()
    selfextract.pack(onedir, models, out, "1.2.3", level=1)
    return out


def scrubbed(binary: Path, home: Path, *args: str) -> list[str]:
    return ["env", "-i", f"HOME={home}", "PATH=/nonexistent", "HELLO=a b", str(binary), *args]


def run(binary: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(scrubbed(binary, home, *args), capture_output=True, text=True, timeout=60)


def trees(home: Path) -> list[str]:
    return sorted(p.name for p in (home / ".cache" / "helpfaster-box" / "bin").iterdir())


def test_unpacks_once_then_execs_with_the_same_arguments_and_environment(tmp_path):
    binary = build(tmp_path)
    key = binary.read_bytes()[: selfextract.HEADER].split(b"_hfb_key=")[1][:64].decode()
    home = tmp_path / "home"
    first = run(binary, home, "serve", "--port", "1 2", "")
    assert first.returncode == 0, first.stderr
    assert "unpacking into" in first.stderr
    lines = first.stdout.splitlines()
    assert lines[:4] == ["arg:serve", "arg:--port", "arg:1 2", "arg:"]
    # the environment as given (dash exports PWD, the working directory, as every shell does)
    assert sorted(lines[4:]) == sorted(
        [f"HOME={home}", "PATH=/nonexistent", "HELLO=a b", f"PWD={os.getcwd()}"]
    )
    tree_id = f"1.2.3-{key[:16]}"
    assert trees(home) == [tree_id]  # no temporary tree left behind
    tree = home / ".cache" / "helpfaster-box" / "bin" / tree_id
    assert (tree / ".complete").read_text() == key + "\n"
    assert (tree / "_internal" / "models" / "m.gguf").read_bytes() == b"gguf" * 1000
    assert not (tree / "_internal" / "models" / "m.gguf").is_symlink()  # the file, not a link
    assert (tree / "_internal" / "lib.so.1").is_symlink()
    assert hashlib.sha256(binary.read_bytes()[selfextract.HEADER :]).hexdigest() == key

    marker = (tree / ".complete").stat().st_mtime_ns
    later = run(binary, home, "--version")
    assert later.returncode == 0 and later.stdout.splitlines()[0] == "arg:--version"
    assert later.stderr == ""  # nothing unpacked
    assert (tree / ".complete").stat().st_mtime_ns == marker and trees(home) == [tree_id]


def test_the_cache_dir_setting_is_honoured(tmp_path):
    binary = build(tmp_path)
    cache = tmp_path / "opt cache"
    done = subprocess.run(
        ["env", "-i", f"HELPFASTER_CACHE_DIR={cache}", str(binary), "x"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert len(list((cache / "bin").glob("1.2.3-*/.complete"))) == 1
    nowhere = subprocess.run(["env", "-i", str(binary)], capture_output=True, text=True)
    assert nowhere.returncode == 1 and "HELPFASTER_CACHE_DIR" in nowhere.stderr


def test_a_start_killed_mid_unpack_leaves_no_tree_that_is_used(tmp_path):
    binary = build(tmp_path, big=20_000_000)
    home = tmp_path / "home"
    bindir = home / ".cache" / "helpfaster-box" / "bin"
    proc = subprocess.Popen(scrubbed(binary, home, "x"), start_new_session=True, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    assert b"unpacking into" in proc.stderr.readline()  # it is unpacking now
    time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its tail | gzip | tar
    proc.wait()
    proc.stderr.close()
    assert [p.name for p in bindir.iterdir() if not p.name.startswith(".unpack-")] == []
    # a dead start's temporary tree (its PID gone) is never used, and the next start removes it
    stale = bindir / ".unpack-999999999-1.2.3-0000"
    (stale / "_internal").mkdir(parents=True)
    again = run(binary, home, "x")
    assert again.returncode == 0 and again.stdout.startswith("arg:x"), again.stderr
    assert len(trees(home)) == 1 and not trees(home)[0].startswith(".")


def test_a_tree_without_its_marker_is_replaced(tmp_path):
    binary = build(tmp_path)
    home = tmp_path / "home"
    assert run(binary, home).returncode == 0
    tree = home / ".cache" / "helpfaster-box" / "bin" / trees(home)[0]
    (tree / ".complete").unlink()
    (tree / "_internal" / "lib.so").unlink()  # e.g. a half copy made by hand
    again = run(binary, home, "y")
    assert again.returncode == 0 and "unpacking into" in again.stderr, again.stderr
    assert (tree / "_internal" / "lib.so").is_file() and (tree / ".complete").is_file()
    assert len(trees(home)) == 1


def test_concurrent_first_starts_all_run_one_tree(tmp_path):
    binary = build(tmp_path, big=5_000_000)
    home = tmp_path / "home"
    procs = [
        subprocess.Popen(
            scrubbed(binary, home, str(i)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for i in range(4)
    ]
    for i, proc in enumerate(procs):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.startswith(f"arg:{i}\n")
    assert len(trees(home)) == 1 and not trees(home)[0].startswith(".")  # losers removed theirs


@pytest.mark.parametrize("where", ["payload", "truncated"])
def test_a_damaged_binary_is_refused_and_leaves_no_tree(tmp_path, where):
    binary = build(tmp_path)
    data = bytearray(binary.read_bytes())
    if where == "payload":
        data[selfextract.HEADER + len(data[selfextract.HEADER :]) // 2] ^= 0xFF
    else:
        del data[-200:]
    binary.write_bytes(bytes(data))
    home = tmp_path / "home"
    done = run(binary, home, "x")
    assert done.returncode == 1 and "arg:x" not in done.stdout
    assert "helpfaster-box:" in done.stderr
    assert trees(home) == []
