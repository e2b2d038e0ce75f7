"""On-disk form of a ChatbotIndex, written so a crash never leaves a readable-but-wrong index.

Layout of `<dir>/`: data files named `<part>.<generation>.<ext>` and `meta.json`, which
names the generation's files with their sizes and CRC32s. A save writes and fsyncs the
new generation's files, then replaces meta.json (os.replace is the commit point), then
deletes older generations. A save cut short leaves the previous meta.json pointing at
the previous, intact files; anything else missing, truncated or flipped fails a check
and raises IndexCorrupt, and the caller rebuilds the index from the database.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from helpfaster_box.store.files import fsync_dir, private_dir, write_durably

FORMAT_VERSION = 1
META = "meta.json"
_DATA_FILE = re.compile(r"(dense|ids|alive|tokens|offsets|vocab)\.[0-9a-f]+\.(faiss|npy|json)")


class IndexCorrupt(Exception):
    """A saved index is missing, incomplete or inconsistent; rebuild it from the database."""


@dataclass(slots=True)
class State:
    dim: int
    kind: Literal["flat", "hnsw"]
    dense: npt.NDArray[np.uint8]  # faiss.serialize_index output
    ids: npt.NDArray[np.int64]
    alive: npt.NDArray[np.bool_]
    tokens: npt.NDArray[np.int32]
    offsets: npt.NDArray[np.int64]
    vocab: list[str]


def exists(directory: Path) -> bool:
    return (directory / META).is_file()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def write(directory: Path, state: State) -> None:
    private_dir(directory)
    gen = secrets.token_hex(6)
    blobs: dict[str, tuple[str, bytes | memoryview]] = {
        "dense": ("faiss", state.dense.data),  # no copy of the big part
        "ids": ("npy", _npy(state.ids)),
        "alive": ("npy", _npy(state.alive)),
        "tokens": ("npy", _npy(state.tokens)),
        "offsets": ("npy", _npy(state.offsets)),
        "vocab": ("json", json.dumps(state.vocab, ensure_ascii=False).encode()),
    }
    files: dict[str, dict[str, Any]] = {}
    for part, (ext, data) in blobs.items():
        name = f"{part}.{gen}.{ext}"
        write_durably(directory / name, data)
        files[part] = {"name": name, "bytes": len(data), "crc32": zlib.crc32(data)}
    meta = {
        "format": FORMAT_VERSION,
        "dim": state.dim,
        "kind": state.kind,
        "rows": len(state.ids),
        "live": int(state.alive.sum()),
        "vocab": len(state.vocab),
        "tokens": len(state.tokens),
        "generation": gen,
        "files": files,
    }
    tmp = directory / f".{META}.{gen}.tmp"
    write_durably(tmp, json.dumps(meta, indent=1).encode())
    os.replace(tmp, directory / META)
    fsync_dir(directory)
    keep = {f["name"] for f in files.values()}
    for old in directory.iterdir():  # older generations and stray temp files
        if old.name not in keep and (_DATA_FILE.fullmatch(old.name) or old.name.startswith(f".{META}.")):
            old.unlink(missing_ok=True)


def read(directory: Path) -> State:
    try:
        return _read(directory)
    except IndexCorrupt:
        raise
    except Exception as exc:  # any failure to parse a damaged file means "corrupt"
        raise IndexCorrupt(f"{directory}: {type(exc).__name__}: {exc}") from exc


def _blob(directory: Path, meta: dict[str, Any], part: str) -> bytes:
    info = meta["files"][part]
    name = info["name"]
    if not _DATA_FILE.fullmatch(name):
        raise IndexCorrupt(f"{directory}: bad file name {name!r} in {META}")
    data = (directory / name).read_bytes()
    if len(data) != info["bytes"] or zlib.crc32(data) != info["crc32"]:
        raise IndexCorrupt(f"{directory}: {name} is truncated or damaged")
    return data


def _array(directory: Path, meta: dict[str, Any], part: str, dtype: type) -> np.ndarray:
    array = np.load(io.BytesIO(_blob(directory, meta, part)), allow_pickle=False)
    if array.dtype != dtype or array.ndim != 1:
        raise IndexCorrupt(f"{directory}: {part} has dtype {array.dtype}, ndim {array.ndim}")
    return array


def _read(directory: Path) -> State:
    meta = json.loads((directory / META).read_bytes())
    if meta.get("format") != FORMAT_VERSION:
        raise IndexCorrupt(f"{directory}: format {meta.get('format')!r}, want {FORMAT_VERSION}")
    if meta["kind"] not in ("flat", "hnsw") or int(meta["dim"]) <= 0:
        raise IndexCorrupt(f"{directory}: bad kind or dim in {META}")
    ids = _array(directory, meta, "ids", np.int64)
    alive = _array(directory, meta, "alive", np.bool_)
    tokens = _array(directory, meta, "tokens", np.int32)
    offsets = _array(directory, meta, "offsets", np.int64)
    vocab = json.loads(_blob(directory, meta, "vocab"))
    rows = meta["rows"]
    problems = [
        len(ids) != rows,
        len(alive) != rows,
        len(offsets) != rows + 1,
        int(alive.sum()) != meta["live"],
        len(tokens) != meta["tokens"],
        not isinstance(vocab, list) or len(vocab) != meta["vocab"],
        offsets[0] != 0 or offsets[-1] != len(tokens) or bool(np.any(np.diff(offsets) < 0)),
        len(tokens) > 0 and (int(tokens.min()) < 0 or int(tokens.max()) >= len(vocab)),
        len(np.unique(ids[alive])) != int(alive.sum()),
    ]
    if any(problems):
        raise IndexCorrupt(f"{directory}: files disagree with {META}")
    dense = np.frombuffer(_blob(directory, meta, "dense"), np.uint8)
    return State(int(meta["dim"]), meta["kind"], dense, ids, alive, tokens, offsets, vocab)
