"""int8 quantisation of an exported transformer, with chosen parts left in fp32.

ONNX Runtime's dynamic quantisation turns every MatMul/Gemm/Attention node into an int8
one, with one scale per activation tensor. Some of them cost more accuracy than they save
time: in the multilingual e5-small encoder, the feed-forward output projections of the
lowest six layers, whose input (the GELU output) is heavy-tailed (benchmarks/RESULTS.md).
this module finds each node's encoder layer and role from the module names the torch
dynamo exporter records (``pkg.torch.onnx.name_scopes``: ``layer.3.attention`` ...), so
that a caller can keep them in fp32 by name rather than by position.

Dynamic quantisation also picks each activation's int8 scale from the batch at hand, so a
text's parse moves a little with its batch-mates. `fix_activation_ranges` replaces those
per-batch scales by constants measured on calibration texts (the minimum and maximum of
each quantised activation over their real tokens, in the fp32 model): a parse then depends
on its text alone, at the same speed (benchmarks/RESULTS.md, "Static activation ranges").
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voxloop.errors import ConfigError, ModelFormatError

NAME_SCOPES = "pkg.torch.onnx.name_scopes"
OP_TYPES = ("MatMul", "Gemm", "Attention")  # the nodes dynamic quantisation makes int8
_LAYER = re.compile(r"(?:^|\.)layer\.(\d+)$")


@dataclass(frozen=True)
class QuantNode:
    """A node of the exported graph that int8 quantisation rewrites, and where it sits."""

    name: str
    layer: int | None  # None outside the encoder layers (embeddings, heads)
    role: str | None  # the layer's sub-module it belongs to: attention, intermediate, ...


def name_scopes(node: Any) -> list[str]:
    """The module scopes the dynamo exporter recorded for an ONNX node, outermost first
    (``['', 'encoder', ..., 'encoder.encoder.layer.0.attention.self.query', 'linear']``)."""
    return next(
        (ast.literal_eval(p.value) for p in node.metadata_props if p.key == NAME_SCOPES), []
    )


def quantizable_nodes(model_path: str | Path) -> list[QuantNode]:
    """Every MatMul/Gemm/Attention node of an ONNX file, in graph order, with its layer and role."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    nodes = []
    for node in graph.node:
        if node.op_type not in OP_TYPES:
            continue
        layer, role, prefix = None, None, ""
        for scope in name_scopes(node):
            match = _LAYER.search(scope)
            if match:
                layer, prefix = int(match.group(1)), scope + "."
            elif layer is not None and role is None and scope.startswith(prefix):
                role = scope[len(prefix) :].split(".")[0]
        nodes.append(QuantNode(node.name, layer, role))
    return nodes


def quantize_int8(
    fp32_path: str | Path,
    int8_path: str | Path,
    *,
    per_channel: bool,
    fp32_layers: int = 0,
    fp32_roles: Collection[str] = (),
    reduce_range: bool = False,
) -> list[str]:
    """Write the dynamic int8 quantisation of ``fp32_path`` to ``int8_path``, leaving in fp32
    the nodes of the lowest ``fp32_layers`` encoder layers whose role (the layer's
    sub-module: ``attention``, ``attention_output``, ``intermediate``, ``output``) is in
    ``fp32_roles`` (any role when empty); ``reduce_range``: 7-bit weights, which no CPU's
    int8 kernel saturates on. Returns the names of the nodes left in fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep: list[str] = []
    if fp32_layers > 0:
        nodes = quantizable_nodes(fp32_path)
        roles = {n.role for n in nodes if n.role}
        if not roles:
            raise ModelFormatError(
                f"{fp32_path}: no encoder layers found in the graph's {NAME_SCOPES} metadata; "
                "export it with torch.onnx.export(..., dynamo=True)"
            )
        if not roles >= set(fp32_roles):
            raise ConfigError(
                f"unknown roles {sorted(set(fp32_roles) - roles)}; the layers have {sorted(roles)}",
                key="int8_fp32_roles",
            )
        keep = [
            n.name
            for n in nodes
            if n.layer is not None
            and n.layer < fp32_layers
            and (not fp32_roles or n.role in fp32_roles)
        ]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs advice on the root logger
    try:
        quantize_dynamic(
            str(fp32_path),
            str(int8_path),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            reduce_range=reduce_range,
            nodes_to_exclude=keep,
        )
    finally:
        root.setLevel(level)
    return keep


def activation_ranges(
    fp32_path: str | Path, tensors: Iterable[str], feeds: Iterable[Mapping[str, npt.NDArray[Any]]]
) -> dict[str, tuple[float, float]]:
    """The minimum and maximum of each named activation of the fp32 model over ``feeds``
    (``input_ids`` / ``attention_mask`` batches), on real tokens only: a padding position's
    value is never read, so it should not widen the range the real ones are quantised in."""
    import onnx
    import onnxruntime as ort

    names = list(dict.fromkeys(tensors))
    model = onnx.load(str(fp32_path))
    outputs = {o.name for o in model.graph.output}
    for name in names:
        if name not in outputs:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    low = dict.fromkeys(names, 0.0)  # the range always holds 0, as DynamicQuantizeLinear's does
    high = dict.fromkeys(names, 0.0)
    seen = False
    for feed in feeds:
        seen = True
        mask = np.asarray(feed["attention_mask"]).astype(bool)
        for name, value in zip(names, session.run(names, dict(feed)), strict=True):
            real = value[mask] if value.ndim == 3 and value.shape[:2] == mask.shape else value
            if real.size:
                low[name] = min(low[name], float(real.min()))
                high[name] = max(high[name], float(real.max()))
    if not seen:
        raise ConfigError("no calibration texts for the int8 activation ranges")
    return {name: (low[name], high[name]) for name in names}


def fix_activation_ranges(
    fp32_path: str | Path, int8_path: str | Path, feeds: Iterable[Mapping[str, npt.NDArray[Any]]]
) -> int:
    """Rewrite ``int8_path`` (a dynamic quantisation of ``fp32_path``) so that every
    ``DynamicQuantizeLinear`` becomes a ``QuantizeLinear`` with a constant scale and zero
    point from `activation_ranges` over ``feeds``, computed as DynamicQuantizeLinear would
    from that range. Returns the number of activations fixed."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(int8_path))
    dynamic = [n for n in model.graph.node if n.op_type == "DynamicQuantizeLinear"]
    ranges = activation_ranges(fp32_path, (n.input[0] for n in dynamic), feeds)
    nodes = []
    for node in model.graph.node:
        if node.op_type != "DynamicQuantizeLinear":
            nodes.append(node)
            continue
        low, high = ranges[node.input[0]]
        scale = (high - low) / 255.0 or 1.0
        zero_point = int(np.clip(np.rint(-low / scale), 0, 255))
        quantized, scale_name, zero_name = node.output
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(np.array(scale, dtype=np.float32), scale_name),
                numpy_helper.from_array(np.array(zero_point, dtype=np.uint8), zero_name),
            ]
        )
        nodes.append(
            helper.make_node(
                "QuantizeLinear",
                [node.input[0], scale_name, zero_name],
                [quantized],
                name=node.name,
            )
        )
    del model.graph.node[:]
    model.graph.node.extend(_fuse_integer_matmuls(nodes, model.graph.initializer))
    onnx.save(model, str(int8_path))
    return len(dynamic)


def graph_links(nodes: Iterable[Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The node producing each tensor name, and the nodes reading each (ONNX nodes)."""
    producer: dict[str, Any] = {}
    consumers: dict[str, list[Any]] = {}
    for node in nodes:
        producer.update((name, node) for name in node.output)
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return producer, consumers


def sole_consumer(consumers: Mapping[str, list[Any]], name: str, op_type: str) -> Any:
    """The node reading tensor ``name`` when it is the only one and an ``op_type`` (else None)."""
    users = consumers.get(name, [])
    return users[0] if len(users) == 1 and users[0].op_type == op_type else None


def _fuse_integer_matmuls(nodes: list[Any], initializers: Iterable[Any]) -> list[Any]:
    """``MatMulInteger -> Cast -> Mul(a_scale * b_scale) [-> Add(bias)]`` as one
    ``MatMulIntegerToFloat`` (com.microsoft), where ``a_scale`` is a constant scalar and the
    bias a constant vector. onnxruntime fuses that pattern itself only behind a
    ``DynamicQuantizeLinear``; unfused, the int32 product makes three more passes."""
    from onnx import helper

    shapes = {i.name: list(i.dims) for i in initializers}
    producer, consumers = graph_links(nodes)

    dropped: set[int] = set()
    fused: dict[int, Any] = {}
    for node in nodes:
        if node.op_type != "MatMulInteger" or len(node.input) != 4:
            continue
        cast = sole_consumer(consumers, node.output[0], "Cast")
        mul = cast and sole_consumer(consumers, cast.output[0], "Mul")
        scales = mul and producer.get(mul.input[1])
        if not (mul and mul.input[0] == cast.output[0] and scales and scales.op_type == "Mul"):
            continue
        if len(consumers.get(scales.output[0], [])) != 1 or shapes.get(scales.input[0]) != []:
            continue
        add = sole_consumer(consumers, mul.output[0], "Add")
        bias = add and next((i for i in add.input if len(shapes.get(i, [])) == 1), None)
        inputs = [node.input[0], node.input[1], scales.input[0], scales.input[1]]
        inputs += [node.input[2], node.input[3]] + ([bias] if bias else [])
        output = add.output[0] if bias else mul.output[0]
        fused[id(node)] = helper.make_node(
            "MatMulIntegerToFloat", inputs, [output], name=node.name, domain="com.microsoft"
        )
        dropped.update(id(n) for n in (cast, mul, scales) + ((add,) if bias else ()))
    return [fused.get(id(n), n) for n in nodes if id(n) not in dropped]
