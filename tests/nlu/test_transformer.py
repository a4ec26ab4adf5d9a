"""The transformer parser: trains with torch, exports to ONNX, serves with onnxruntime.

What every parser must do is in `test_parser_conformance.py`; this file checks what is
particular to this one. Kept small (a few hundred SNIPS utterances, two epochs) so the file
runs in a few minutes on 2 cores; the accuracy targets are the benchmark's business.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxscript")

from voxloop.data import load_corpus  # noqa: E402
from voxloop.errors import ConfigError, ModelFormatError  # noqa: E402
from voxloop.nlu.distill import TeacherMemo, soft_targets  # noqa: E402
from voxloop.nlu.evaluate import evaluate  # noqa: E402
from voxloop.nlu.runtime import OnnxParser, first_subwords, viterbi  # noqa: E402
from voxloop.nlu.tokenize import tokenize  # noqa: E402
from voxloop.nlu.transformer import (  # noqa: E402
    BIGRAM_WEIGHTS,
    UNSEEN_PENALTIES,
    TransformerParser,
    choose_threshold,
    crf_loss,
    fit_temperature,
    holdout_split,
)
from voxloop.schema import Utterance  # noqa: E402

SMALL = {"max_epochs": 2, "batch_size": 16, "threads": 2, "progress": False}


@pytest.fixture(scope="module")
def snips(datasets: Path) -> dict[str, Sequence[Utterance]]:
    corpus = load_corpus(f"snips:{datasets / 'snips'}")
    return {"train": corpus.split("train")[:500], "test": corpus.split("test")[:200]}


@pytest.fixture(scope="module")
def trained(snips: dict[str, Sequence[Utterance]]) -> TransformerParser:
    return TransformerParser(**SMALL).fit(snips["train"])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def saved(trained: TransformerParser, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("transformer") / "model"
    trained.save(path, {"corpus": "snips slice"})
    return path


# --- pure helpers ---------------------------------------------------------------------
def test_first_subwords_maps_each_word_to_its_first_piece() -> None:
    text = "play what's new"
    tokens = tokenize(text)  # play / what's / new
    # [CLS] play what ' s new [SEP]
    offsets = [(0, 0), (0, 4), (5, 9), (9, 10), (10, 11), (12, 15), (0, 0)]
    assert first_subwords(tokens, offsets) == [1, 2, 5]


def test_first_subwords_marks_words_without_pieces() -> None:
    text = "a \x00 b"
    offsets = [(0, 0), (0, 1), (4, 5), (0, 0)]  # the control character has no piece
    assert first_subwords(tokenize(text), offsets) == [1, -1, 2]
    assert first_subwords([("x", 0, 1)], [(0, 0), (0, 0)]) == [-1]


def test_viterbi_never_continues_a_span_it_did_not_open() -> None:
    # tags: O, B-x, I-x; "I-x" scores best everywhere but cannot start or follow "O".
    transitions = np.array([[0, 0, -np.inf], [0, 0, 0], [0, 0, 0]], dtype=float)
    start = np.array([0, 0, -np.inf])
    scores = np.log(np.array([[0.3, 0.2, 0.5], [0.1, 0.1, 0.8]]))
    assert viterbi(scores, transitions, start) == [1, 2]
    assert viterbi(np.log(np.array([[0.6, 0.1, 0.3]])), transitions, start) == [0]


def test_fit_temperature_recovers_an_overconfident_scale() -> None:
    rng = np.random.default_rng(0)
    true = rng.normal(size=(4000, 5)) * 2
    p = np.exp(true) / np.exp(true).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in p])
    assert fit_temperature((true * 3).astype(np.float32), labels) == pytest.approx(3.0, rel=0.1)


def test_threshold_rejects_the_wrong_low_confidence_guesses_only() -> None:
    confidence = np.array([0.2, 0.3, 0.35, 0.9, 0.95, 0.99, 0.97, 0.92, 0.91, 0.93])
    correct = np.array([False, False, True, True, True, True, True, True, True, True])
    t = choose_threshold(confidence, correct, max_rejection=0.5)
    assert 0.3 < t <= 0.35
    assert choose_threshold(confidence, correct, max_rejection=0.1) == pytest.approx(0.25)
    assert choose_threshold(confidence, correct, max_rejection=0.0) == 0.0


# --- training -------------------------------------------------------------------------
def test_training_history_has_the_dev_metrics_of_each_epoch(trained: TransformerParser) -> None:
    assert [h["epoch"] for h in trained.history_] == [1, 2]
    assert {"loss", "dev_intent_accuracy", "dev_slot_f1", "dev_exact_match"} <= set(
        trained.history_[0]
    )


def test_progress_stages_are_reported(snips: dict[str, Sequence[Utterance]]) -> None:
    stages: list[str] = []
    TransformerParser(max_epochs=1, threads=2, progress=False).fit(
        snips["train"][:30], on_stage=stages.append
    )
    assert stages == ["epoch 1", "calibration", "export"]


def test_refit_trains_again_on_the_held_out_part_too(
    snips: dict[str, Sequence[Utterance]], tmp_path: Path
) -> None:
    train = list(snips["train"][:200])
    # The one utterance of a rare intent sits where the seed-0 split holds it out.
    dev, _ = holdout_split(train, 0.1, 1000, random.Random(0))
    position = next(i for i, u in enumerate(train) if u is dev[0])
    train[position] = dataclasses.replace(dev[0], intent="RareIntent", slots=())
    stages: list[str] = []
    parser = TransformerParser(max_epochs=1, threads=2, progress=False, refit=True).fit(
        train, on_stage=stages.append
    )
    assert stages == ["epoch 1", "calibration", "refit epoch 1", "export"]
    assert "RareIntent" in parser.intents_  # seen only in the refit
    assert parser.calibration_["dev_size"] == 20  # calibrated on the held-out tenth
    assert parser.refit_["epochs"] == 1 and parser.refit_["train_size"] == 200
    parser.save(tmp_path / "model")
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["refit"]["train_size"] == 200
    assert "RareIntent" in manifest["intents"]


# --- export ---------------------------------------------------------------------------
def test_onnx_fp32_matches_torch(
    trained: TransformerParser, saved: Path, snips: dict[str, Sequence[Utterance]]
) -> None:
    texts = [u.text for u in snips["test"][:64]] + ["", "Ünïcode ﬁne — 東京 🎵 what's up?!"]
    torch_intent, torch_slots = trained.torch_logits(texts)
    _, onnx_intent, onnx_slots = OnnxParser.load(saved, precision="fp32").logits(texts)
    assert np.abs(onnx_intent - torch_intent).max() < 1e-3
    assert max(np.abs(o - t).max() for o, t in zip(onnx_slots, torch_slots, strict=True)) < 1e-3
    assert trained.export_diff_ is not None and trained.export_diff_ < 1e-3


def test_each_gelu_is_one_node_in_both_files(saved: Path) -> None:
    import onnx

    for name in ("model.onnx", "model.int8.onnx"):
        ops = [n.op_type for n in onnx.load(str(saved / name)).graph.node]
        assert ops.count("Gelu") == 6 and "Erf" not in ops  # MiniLM-L6: one per layer


def _gelu_graph(path: Path, *, divisor: float, swapped: bool) -> None:
    """x -> [x / divisor -> Erf -> + 1 -> * 0.5] * x, with the commutative operands of Add
    and the two Muls in the exporter's order or swapped."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, value: float) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(value, dtype=np.float32), name)

    def pair(a: str, b: str) -> list[str]:
        return [b, a] if swapped else [a, b]

    nodes = [
        helper.make_node("Div", ["x", "divisor"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", pair("e", "one"), ["a"]),
        helper.make_node("Mul", pair("a", "half"), ["h"]),
        helper.make_node("Mul", pair("x", "h"), ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "gelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])],
        [const("divisor", divisor), const("one", 1.0), const("half", 0.5)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(path))


@pytest.mark.parametrize("swapped", [False, True])
def test_fuse_gelu_keeps_the_function_and_fuses_only_exact_gelu(
    tmp_path: Path, swapped: bool
) -> None:
    import onnx
    import onnxruntime as ort

    from voxloop.nlu.onnx_export import fuse_gelu

    x = np.linspace(-4, 4, 10, dtype=np.float32).reshape(2, 5)

    def run(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]

    path = tmp_path / "gelu.onnx"
    _gelu_graph(path, divisor=math.sqrt(2), swapped=swapped)
    before = run(path)
    assert fuse_gelu(path) == 1
    model = onnx.load(str(path))
    assert [(n.op_type, n.domain) for n in model.graph.node] == [("Gelu", "com.microsoft")]
    assert not model.graph.initializer  # the pattern's constants went with it
    assert np.abs(run(path) - before).max() < 1e-6
    # x / 2 is not GELU's x / sqrt 2: left alone
    _gelu_graph(path, divisor=2.0, swapped=swapped)
    assert fuse_gelu(path) == 0
    assert [n.op_type for n in onnx.load(str(path)).graph.node][0] == "Div"


def test_int8_is_close_to_fp32(saved: Path, snips: dict[str, Sequence[Utterance]]) -> None:
    test = snips["test"]
    texts = [u.text for u in test]
    fp32 = evaluate(test, OnnxParser.load(saved, precision="fp32").parse(texts))
    int8 = evaluate(test, OnnxParser.load(saved).parse(texts))
    assert abs(fp32.intent_accuracy - int8.intent_accuracy) <= 0.02
    assert abs(fp32.slot_f1 - int8.slot_f1) <= 0.03


# --- the saved model ------------------------------------------------------------------
def test_save_then_load_gives_identical_parses(
    trained: TransformerParser, saved: Path, snips: dict[str, Sequence[Utterance]]
) -> None:
    texts = [u.text for u in snips["test"][:100]]
    assert OnnxParser.load(saved).parse(texts) == trained.parse(texts)
    assert TransformerParser.load(saved).parse(texts) == trained.parse(texts)


def test_an_onnx_file_from_another_model_is_refused_at_load(saved: Path, tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    # A graph with the model's inputs and outputs but three intents: what a file copied
    # from another model's directory looks like to the loader.
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
        for n in ("input_ids", "attention_mask")
    ]
    outputs = [
        helper.make_tensor_value_info("intent_logits", TensorProto.FLOAT, ["batch", 3]),
        helper.make_tensor_value_info("slot_logits", TensorProto.FLOAT, ["batch", "seq", 5]),
    ]
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["f", "axis"], ["slot_logits"]),
        helper.make_node("ReduceSum", ["slot_logits", "axis"], ["intent_logits"], keepdims=0),
    ]
    axis = helper.make_tensor("axis", TensorProto.INT64, [1], [2])
    graph = helper.make_graph(nodes, "other", inputs, outputs, initializer=[axis])
    model = shutil.copytree(saved, tmp_path / "model")
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]),
        model / "model.int8.onnx",
    )
    labels = json.loads((saved / "labels.json").read_text())
    with pytest.raises(
        ModelFormatError,
        match=f"intent_logits has 3 labels, labels.json lists "
        f"{len(labels['intents'])}; the file belongs to another model",
    ):
        OnnxParser.load(model)


def test_saved_model_is_onnx_and_json_with_a_manifest(saved: Path) -> None:
    names = {f.name for f in saved.iterdir()}
    assert names == {
        "manifest.json",
        "labels.json",
        "tokenizer.json",
        "model.onnx",
        "model.int8.onnx",
    }
    for f in saved.iterdir():
        head = f.read_bytes()[:2]
        assert head not in (b"\x80\x04", b"\x80\x05"), f"{f.name} looks like a pickle"
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["model_type"] == "transformer" and manifest["format_version"] == 1
    assert manifest["corpus"] == "snips slice"
    calibration = manifest["calibration"]
    assert calibration["temperature"] > 0
    assert calibration["ece_after"] <= calibration["ece_before"] + 0.02
    assert calibration["bigram_weight"] in BIGRAM_WEIGHTS
    penalty = calibration["unseen_penalty"]  # null: forbidden (infinite)
    assert (math.inf if penalty is None else penalty) in UNSEEN_PENALTIES
    labels = json.loads((saved / "labels.json").read_text())
    n = len(labels["tags"])
    transitions = np.exp(np.array(labels["bigrams"]["transitions"]))
    assert transitions.shape == (n, n) and np.allclose(transitions.sum(axis=1), 1.0)


def test_a_model_saved_without_tag_bigrams_still_loads_and_parses(
    saved: Path, tmp_path: Path, snips: dict[str, Sequence[Utterance]]
) -> None:
    older = tmp_path / "older"
    shutil.copytree(saved, older)
    labels = json.loads((older / "labels.json").read_text())
    del labels["bigrams"]
    (older / "labels.json").write_text(json.dumps(labels))
    manifest = json.loads((older / "manifest.json").read_text())
    del manifest["calibration"]["bigram_weight"]
    del manifest["calibration"]["unseen_penalty"]
    (older / "manifest.json").write_text(json.dumps(manifest))
    texts = [u.text for u in snips["test"][:50]]
    parses = OnnxParser.load(older).parse(texts)
    assert [p.text for p in parses] == texts
    decoder = OnnxParser.load(older).decoder_
    assert decoder._transitions.max() == 0.0  # BIO rules only
    assert decoder.unseen_penalty == math.inf  # labels unseen with an intent: forbidden


def test_runtime_does_not_import_torch(saved: Path) -> None:
    code = (
        "import sys\n"
        "from voxloop.nlu.runtime import OnnxParser\n"
        f"p = OnnxParser.load({str(saved)!r})\n"
        "(r,) = p.parse(['play the beatles'])\n"
        "assert r.intent, r\n"
        "heavy = [m for m in ('torch', 'transformers', 'onnxscript') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_parse_is_independent_of_its_batch_mates(
    saved: Path, snips: dict[str, Sequence[Utterance]]
) -> None:
    texts = [u.text for u in snips["test"][:60]]
    single = OnnxParser.load(saved, batch_size=1)
    assert single.parse(texts) == [single.parse([t])[0] for t in texts]
    # int8 (its activation scales fixed at training time) and fp32 alike: batched parses
    # are the parses of each text alone, to float rounding in the confidences.
    for precision in ("int8", "fp32"):
        batched = OnnxParser.load(saved, precision=precision, batch_size=32).parse(texts)
        one_by_one = OnnxParser.load(saved, precision=precision, batch_size=1).parse(texts)
        for a, b in zip(batched, one_by_one, strict=True):
            assert (a.intent, a.ranking[0].intent) == (b.intent, b.ranking[0].intent)
            assert [(s.label, s.start, s.end) for s in a.slots] == [
                (s.label, s.start, s.end) for s in b.slots
            ]
            assert abs(a.confidence - b.confidence) <= 1e-4
    assert single.parse([]) == []


def test_int8_activation_scales_are_fixed_unless_calibration_is_off(
    saved: Path, tmp_path: Path, snips: dict[str, Sequence[Utterance]]
) -> None:
    import onnx
    from onnx import numpy_helper

    def ops(directory: Path) -> set[str]:
        return {n.op_type for n in onnx.load(str(directory / "model.int8.onnx")).graph.node}

    assert "DynamicQuantizeLinear" not in ops(saved) and "QuantizeLinear" in ops(saved)
    assert "MatMulIntegerToFloat" in ops(saved) and "MatMulInteger" not in ops(saved)
    weights = [
        numpy_helper.to_array(i)
        for i in onnx.load(str(saved / "model.int8.onnx")).graph.initializer
    ]
    # MiniLM keeps 8-bit weights (int8_reduce_range: e5-small only)
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights if w.dtype == np.int8) == 127
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["hyperparameters"]["int8_calibration"] is None  # MiniLM: 2,000 texts
    dynamic = tmp_path / "dynamic"
    shutil.copytree(saved, dynamic)
    TransformerParser(int8_calibration=0).quantize(dynamic, [u.text for u in snips["train"]])
    assert "DynamicQuantizeLinear" in ops(dynamic) and "QuantizeLinear" not in ops(dynamic)
    texts = [u.text for u in snips["test"][:60]]
    # both quantisations of one network mostly agree (here: the same top intent)
    fixed = OnnxParser.load(saved).parse(texts)
    per_batch = OnnxParser.load(dynamic).parse(texts)
    pairs = zip(fixed, per_batch, strict=True)
    agree = sum(a.ranking[0].intent == b.ranking[0].intent for a, b in pairs)
    assert agree >= 0.9 * len(texts)


def test_slots_are_exact_spans_of_the_original_text(trained: TransformerParser) -> None:
    text = "Play  ÉDITH Piaf's   “La Vie en Rose” on Spotify"
    (parse,) = trained.parse([text])
    for span in parse.slots:
        assert text[span.start : span.end] == span.value
        assert span.value == span.value.strip() and span.value


def test_parses_carry_the_model_locale_and_no_domain_for_snips(
    trained: TransformerParser, snips: dict[str, Sequence[Utterance]]
) -> None:
    for parse in trained.parse([u.text for u in snips["test"][:50]]):
        assert parse.domain is None and parse.locale == "en-US"


def test_threshold_from_dev_rejects_little_of_dev(trained: TransformerParser) -> None:
    assert 0.0 <= trained.threshold_ < 1.0
    assert trained.calibration_["dev_size"] == 50


def test_low_confidence_parse_is_not_recognized(saved: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(saved, model)
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["calibration"]["threshold"] = 1.01
    (model / "manifest.json").write_text(json.dumps(manifest))
    (parse,) = OnnxParser.load(model).parse(["play something by the beatles"])
    assert parse.intent is None
    assert parse.ranking and parse.ranking[0].intent == "PlayMusic"


def test_loading_a_classical_model_as_transformer_says_so(tmp_path: Path, saved: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(saved, model)
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["model_type"] = "classical"
    (model / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="not a transformer model"):
        OnnxParser.load(model)


def test_substituted_copies_join_the_training_part_never_the_held_out_one(
    snips: dict[str, Sequence[Utterance]], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Utterance] = []

    def stop(self: TransformerParser, torch: Any, train: list[Utterance], *rest: Any) -> Any:
        seen.extend(train)
        raise RuntimeError("stop before training")

    monkeypatch.setattr(TransformerParser, "_setup", stop)
    data = list(snips["train"][:300])  # no dev split: a tenth is held out
    with pytest.raises(RuntimeError, match="stop before training"):
        TransformerParser(**SMALL, substitute_slots=2).fit(data)  # type: ignore[arg-type]
    originals = [u for u in seen if u in data]
    copies = seen[len(originals) :]
    assert seen[: len(originals)] == originals and 0 < len(originals) < len(data)
    assert len(copies) == 2 * sum(1 for u in originals if u.slots)
    held_out_texts = {u.text for u in data if u not in originals}
    assert not held_out_texts & {u.text for u in copies if u not in data}


# --- distillation ---------------------------------------------------------------------
def test_soft_targets_are_the_teachers_probabilities_per_word(
    saved: Path, snips: dict[str, Sequence[Utterance]]
) -> None:
    teacher = OnnxParser.load(saved, precision="fp32")
    intents, tags = teacher.decoder_.intents, teacher.decoder_.tags
    texts = [u.text for u in snips["test"][:20]]
    soft = soft_targets([saved], texts, intents[::-1], tags[::-1], temperature=1.0)
    offsets, intent_logits, slot_logits = teacher.logits(texts)
    # In the student's (here: reversed) label order, one row per word, each a distribution.
    assert np.allclose(soft.intents.sum(1), 1.0, atol=1e-5)
    assert list(soft.intents.argmax(1)) == [len(intents) - 1 - i for i in intent_logits.argmax(1)]
    for text, words, slots, pieces in zip(texts, soft.words, slot_logits, offsets, strict=True):
        assert words.shape == (len(tokenize(text)), len(tags))
        assert np.allclose(words.sum(1), 1.0, atol=1e-5)
        firsts = first_subwords(tokenize(text), pieces)
        assert list(words.argmax(1)) == [len(tags) - 1 - int(slots[j].argmax()) for j in firsts]


def test_a_memo_runs_each_teacher_once_per_text_with_the_same_targets(
    saved: Path, snips: dict[str, Sequence[Utterance]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A refit asks again for the texts of its first pass: the teacher must not run twice.
    teacher = OnnxParser.load(saved, precision="fp32")
    intents, tags = teacher.decoder_.intents, teacher.decoder_.tags
    texts = [u.text for u in snips["test"][:12]]
    plain = soft_targets([saved], texts, intents, tags, temperature=2.0)
    memo: TeacherMemo = {}
    first = soft_targets([saved], texts[:8] + texts[:2], intents, tags, temperature=2.0, memo=memo)
    runs: list[int] = []
    logits = OnnxParser.logits

    def counted(self: OnnxParser, some: Sequence[str]) -> Any:
        runs.append(len(some))
        return logits(self, some)

    monkeypatch.setattr(OnnxParser, "logits", counted)
    again = soft_targets([saved], texts, intents, tags, temperature=2.0, memo=memo)
    assert runs == [4]  # only the four texts the first call did not see
    assert np.allclose(first.intents[8:], plain.intents[:2], atol=1e-5)
    assert np.allclose(again.intents, plain.intents, atol=1e-5)
    for a, b in zip(again.words, plain.words, strict=True):
        assert np.allclose(a, b, atol=1e-5, equal_nan=True)


def test_a_teacher_without_a_student_label_is_refused(saved: Path) -> None:
    teacher = OnnxParser.load(saved, precision="fp32")
    with pytest.raises(ConfigError, match="'B-no_such_slot'"):
        soft_targets(
            [saved],
            ["play a song"],
            teacher.decoder_.intents,
            ["O", "B-no_such_slot"],
            temperature=2.0,
        )


def test_a_distill_weight_outside_0_to_1_is_refused(
    saved: Path, snips: dict[str, Sequence[Utterance]]
) -> None:
    parser = TransformerParser(**SMALL, teachers=[str(saved)], distill_weight=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="distill_weight.*between 0 and 1, not 1.5"):
        parser.fit(snips["train"][:30])


def test_a_student_learns_from_the_teacher_alone(
    saved: Path, snips: dict[str, Sequence[Utterance]]
) -> None:
    # distill_weight=1: the labels take no part in the loss, only the teacher's soft
    # targets; the student still learns the teacher's intents and slots.
    student = TransformerParser(**SMALL, teachers=[str(saved)], distill_weight=1.0).fit(  # type: ignore[arg-type]
        snips["train"]
    )
    texts = [u.text for u in snips["test"]]
    teacher = OnnxParser.load(saved, precision="fp32").parse(texts)
    taught = student.parse(texts)
    agree = sum(a.intent == b.intent for a, b in zip(taught, teacher, strict=True))
    assert agree >= 0.8 * len(texts)
    assert evaluate(snips["test"], taught).slot_f1 > 0.75 * evaluate(snips["test"], teacher).slot_f1


def test_crf_loss_is_the_negative_log_likelihood_over_every_tag_sequence() -> None:
    import itertools

    import torch

    rng = np.random.default_rng(0)
    n_tags, ignore = 3, -100
    model = torch.nn.Module()
    model.transitions = torch.nn.Parameter(torch.tensor(rng.normal(size=(n_tags, n_tags))))
    model.start = torch.nn.Parameter(torch.tensor(rng.normal(size=n_tags)))
    logits = torch.tensor(rng.normal(size=(2, 5, n_tags)))
    # sub-words 0, 2, 3 of the first text are words' first pieces; 1 and 4 of the second
    labels = np.array([[1, ignore, 0, 2, ignore], [ignore, 2, ignore, ignore, 1]])
    transitions, start = model.transitions.detach().numpy(), model.start.detach().numpy()

    def score(text: Any, words: Any, path: Sequence[int]) -> float:
        total = start[path[0]] + sum(text[w, t] for w, t in zip(words, path, strict=True))
        return float(total + sum(transitions[a, b] for a, b in itertools.pairwise(path)))

    expected = 0.0
    for row, text in zip(labels, logits.numpy(), strict=True):
        words = np.flatnonzero(row != ignore)
        paths = itertools.product(range(n_tags), repeat=len(words))
        log_z = np.logaddexp.reduce([score(text, words, p) for p in paths])
        expected += log_z - score(text, words, row[words].tolist())
    loss = crf_loss(torch, model, logits, labels)
    assert loss.item() == pytest.approx(expected / 5, rel=1e-9)  # per labelled word
    loss.backward()
    assert model.transitions.grad is not None and model.transitions.grad.abs().sum() > 0
    assert crf_loss(torch, model, logits, np.full((2, 5), ignore)).item() == 0.0  # no words


def test_a_crf_slot_head_decodes_with_its_learned_transitions(
    snips: dict[str, Sequence[Utterance]], tmp_path: Path
) -> None:
    parser = TransformerParser(**SMALL, crf=True).fit(snips["train"])  # type: ignore[arg-type]
    assert parser.bigrams_ is not None
    transitions, start = parser.bigrams_
    np.testing.assert_array_equal(transitions, parser.model_.transitions.detach().double().numpy())
    o, i_x = parser.tags_.index("O"), parser.tags_.index("I-playlist")
    assert transitions[o, i_x] < 0  # never seen: "I-" after "O" learned to be unlikely
    parser.save(tmp_path / "crf")
    labels = json.loads((tmp_path / "crf" / "labels.json").read_text())
    np.testing.assert_allclose(labels["bigrams"]["transitions"], transitions)
    assert (
        json.loads((tmp_path / "crf" / "manifest.json").read_text())["hyperparameters"]["crf"]
        is True
    )
    result = evaluate(
        snips["test"], OnnxParser.load(tmp_path / "crf").parse([u.text for u in snips["test"]])
    )
    assert result.slot_f1 > 0.5  # learned (all "O" scores 0; the softmax head 0.63 here)


def test_a_crf_slot_head_with_teachers_is_refused(
    saved: Path, snips: dict[str, Sequence[Utterance]]
) -> None:
    parser = TransformerParser(**SMALL, crf=True, teachers=[str(saved)])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="crf.*CRF slot head cannot be distilled"):
        parser.fit(snips["train"][:30])
