"""Export the deploy network to ONNX (torch's TorchScript-based exporter: plain ops, fixed opset) and
rewrite its prunable weights into the chosen storage (compile/packing.py)."""

from __future__ import annotations

import io
import warnings

import onnx
import torch

from ..formats import graph
from .deploy import Streaming, TimeFolded, lif_layers, state_shapes, synaptic_layers
from .packing import apply_storage

DEFAULT_OPSET = 17


def io_names(net, layout: str) -> tuple[list[str], list[str]]:
    return graph.io_names([l.name for l in lif_layers(net)], synaptic_layers(net), layout)


def export(net, layout: str, timesteps: int, input_shape: tuple[int, int, int], opset: int,
           prunable: list[str], storage: str, weight_format: str):
    """Returns (onnx.ModelProto, per-layer storage records, graph statistics before the weight decode)."""
    inputs, outputs = io_names(net, layout)
    x = torch.zeros(2, *input_shape)
    if layout == "time-folded":
        wrapper, args = TimeFolded(net, timesteps, count_inputs=True), (x,)
    else:
        shapes = state_shapes(net, input_shape)
        wrapper = Streaming(net, count_inputs=True)
        args = (x, *[torch.zeros(2, *s) for s in shapes])
    dynamic = {n: {0: "batch"} for n in inputs}
    for n in outputs:
        dynamic[n] = {1: "batch"} if (layout == "time-folded" and graph.is_count(n)) else {0: "batch"}
    buf = io.BytesIO()
    # torch's exporter merges equal initializers (two fully pruned layers of one shape are both all zeros), so a
    # layer's weight would vanish under another's name: then they are kept apart as graph inputs, dropped after
    shared = _equal_weights(net, prunable)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, args, buf, dynamo=False, opset_version=opset, input_names=inputs,
                          output_names=outputs, dynamic_axes=dynamic, do_constant_folding=True,
                          keep_initializers_as_inputs=shared)
    model = onnx.load_from_string(buf.getvalue())
    if shared:
        names = {i.name for i in model.graph.initializer}
        kept = [i for i in model.graph.input if i.name not in names]
        del model.graph.input[:]
        model.graph.input.extend(kept)
    ops: dict[str, int] = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    graph_stats = {"nodes": len(model.graph.node), "op_types": ops}
    layers = apply_storage(model, [f"net.{n}" for n in prunable], storage, weight_format)
    for l in layers:
        l.name = l.name[len("net."):]
    model.producer_name = "edgeticket"
    if storage != "sparse-initializer":  # ONNX's checker rejects sparse_initializer graphs in full mode
        onnx.checker.check_model(model, full_check=True)
    return model, layers, graph_stats


def _equal_weights(net, prunable) -> bool:
    """Whether two prunable weights are equal tensors (which the exporter would merge into one initializer)."""
    params = dict(net.named_parameters())
    seen: dict = {}
    for n in prunable:
        w = params.get(n)
        if w is None:
            continue
        key = (tuple(w.shape), w.dtype)
        if any(torch.equal(w, o) for o in seen.get(key, [])):
            return True
        seen.setdefault(key, []).append(w)
    return False
