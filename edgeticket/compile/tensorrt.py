"""The TensorRT graph of a bundle (tensorrt/model.onnx) for targets whose runtime is TensorRT (Jetson).

model.onnx rebuilds its packed weights at load with BitShift, CumSum, ScatterElements and uint8/int32 tensors
(compile/packing.py): onnxruntime folds that away, but TensorRT's ONNX parser refuses BitShift in every version
and uint8 initializers before TensorRT 10. TensorRT keeps dense weights in its engine anyway, so the TensorRT
graph is model.onnx with each weight's decode subgraph replaced by the dense float32 tensor it computes
(evaluated by onnxruntime, the same arithmetic the bundle is validated with): only the network's own
operators remain. Compile checks it spike for spike against model.onnx before writing it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .metadata import mark_tensorrt

TENSORRT_PROVIDER = "TensorrtExecutionProvider"


def wanted(target) -> bool:
    """A target whose onnxruntime providers name TensorRT runs its graph through TensorRT's ONNX parser."""
    return TENSORRT_PROVIDER in target.providers


def _decode_parts(model: onnx.ModelProto, weights: list[str]) -> tuple[list, list]:
    """The nodes and initializers of the weights' decode subgraphs (packing names them <weight>__*)."""
    def ours(tensor: str) -> bool:
        return any(tensor == w or tensor.startswith(f"{w}__") for w in weights)

    nodes = [n for n in model.graph.node if n.output and all(ours(o) for o in n.output)]
    inits = [i for i in model.graph.initializer if ours(i.name) and i.name not in weights]
    return nodes, inits


def _evaluate(nodes: list, inits: list, weights: list[str], opset: int) -> dict[str, np.ndarray]:
    """Run the decode subgraphs alone (no graph inputs) in onnxruntime."""
    from ..device.runners.onnx_runner import make_session

    outs = [helper.make_tensor_value_info(w, onnx.TensorProto.FLOAT, None) for w in weights]
    g = helper.make_graph(nodes, "decode", [], outs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgeticket")
    sess = make_session(m.SerializeToString())
    return dict(zip(weights, sess.run(weights, {})))


def fold_weights(model_bytes: bytes) -> bytes:
    """model.onnx with every packed or sparse weight stored as a dense float32 initializer."""
    model = onnx.load_from_string(model_bytes)
    g = model.graph
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    dense = {}
    for sp in list(g.sparse_initializer):  # ONNX sparse_initializer: TensorRT's parser reads dense tensors only
        flat = np.zeros(int(np.prod(sp.dims)), np.float32)
        flat[numpy_helper.to_array(sp.indices).reshape(-1)] = numpy_helper.to_array(sp.values)  # linear COO indices
        dense[sp.values.name] = flat.reshape(tuple(sp.dims))
        g.sparse_initializer.remove(sp)
    produced = {o for n in g.node for o in n.output}
    consumed = {i for n in g.node for i in n.input}
    # a decoded weight: produced by a node, named like a module parameter, with <name>__* initializers behind it
    init_names = {i.name for i in g.initializer}
    weights = sorted(t for t in produced & consumed
                     if any(name.startswith(f"{t}__") for name in init_names) and "__" not in t)
    if weights:
        nodes, inits = _decode_parts(model, weights)
        dense.update(_evaluate(nodes, inits, weights, opset))
        gone_nodes, gone_inits = {id(n) for n in nodes}, {i.name for i in inits}
        keep = [n for n in g.node if id(n) not in gone_nodes]
        del g.node[:]
        g.node.extend(keep)
        keep_inits = [i for i in g.initializer if i.name not in gone_inits]
        del g.initializer[:]
        g.initializer.extend(keep_inits)
    g.initializer.extend(numpy_helper.from_array(np.ascontiguousarray(v, dtype=np.float32), k)
                         for k, v in sorted(dense.items()))
    mark_tensorrt(model)  # model.onnx's metadata_props, saying which graph this is
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def op_types(model_bytes: bytes) -> dict[str, int]:
    ops: dict[str, int] = {}
    for n in onnx.load_from_string(model_bytes).graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return ops


def check_equal(folded: bytes, reference, layout: str, timesteps: int, x: np.ndarray) -> dict:
    """Spikes per layer/timestep/sample and logits of the TensorRT graph (run here by onnxruntime) against the
    bundle's model.onnx runner `reference`."""
    from ..device.runners.onnx_runner import OnnxRunner, make_session

    runner = OnnxRunner(make_session(folded), layout, timesteps, v_init=reference.v_init)
    logits, counts = runner.run(x)
    ref_logits, ref_counts = reference.run(x)
    spikes_equal = all(np.array_equal(counts[k], ref_counts[k]) for k in ref_counts)
    return {"inputs": int(len(x)), "spikes_equal": bool(spikes_equal),
            "logits_max_abs_diff": float(np.abs(logits - ref_logits).max())}
