"""int8 quantisation of an exported transformer, with chosen parts left in fp32.

ONNX Runtime's dynamic quantisation turns every MatMul/Gemm/Attention node into an int8
one, with one scale per activation tensor. Some of them cost more accuracy than they save
time: in the multilingual e5-small encoder, the feed-forward output projections of the
lowest six layers, whose input (the GELU output) is heavy-tailed (benchmarks/RESULTS.md).
this module finds each node's encoder layer and role from the module names the torch
dynamo exporter records (``pkg.torch.onnx.name_scopes``: ``layer.3.attention`` ...), so
that a caller can keep them in fp32 by name rather than by position.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
) -> list[str]:
    """Write the dynamic int8 quantisation of ``fp32_path`` to ``int8_path``, leaving in fp32
    the nodes of the lowest ``fp32_layers`` encoder layers whose role (the layer's
    sub-module: ``attention``, ``attention_output``, ``intermediate``, ``output``) is in
    ``fp32_roles`` (any role when empty). Returns the names of the nodes left in fp32."""
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
            nodes_to_exclude=keep,
        )
    finally:
        root.setLevel(level)
    return keep
