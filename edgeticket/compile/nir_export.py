"""A ticket as a NIR graph (Neuromorphic Intermediate Representation, nir 1.0): masked weights with BatchNorm folded,
neurons in NIR's continuous-time conventions, read off the deploy net's dataflow (graph_probe). docs/models.md
"NIR" gives the mapping; in short, with the Euler step dt (NIR: tau dv/dt = (v_leak - v) + r I):

- LIF, decay_input (h = v + (x - (v - v_reset)) / tau): NIR LIF tau_nir = tau * dt, r = 1, v_leak = v_reset;
  decay_input=False (h = v - (v - v_reset) / tau + x): r = tau. PLIF: the same with tau = 1 / k (k in metadata).
- IF (h = v + x): NIR IF with r = 1, its state dt * v (threshold and v_reset times dt).
- hard reset to v_reset: NIR's v_reset; a soft reset has no NIR form and is refused.
- MaxPool2d on spikes (NIR has none): AvgPool2d(k, s) then a memoryless LIF (tau = dt, r = 1, v_leak 0: v = its
  input each step; threshold 0.5 / k^2, reset 0), equal for 0/1 inputs (the max of spikes is 1 exactly when their
  mean is at least 1 / k^2), both tagged `edgeticket: maxpool` in their metadata.
- AdaptiveAvgPool2d to 1x1: AvgPool2d over the whole map. Flatten: start_dim 0 (NIR shapes have no batch).
- residual additions: fan-in edges (a NIR node sums its inputs). Other arithmetic between layers is refused.
Every node's metadata keeps the exact edgeticket neuron (kind, tau or k, threshold, reset, decay_input, dt).
NIR fires on v > threshold where spikingjelly fires on v >= threshold: the two differ only on exact ties.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from torch import nn

from .. import store
from ..errors import EdgeTicketError
from .deploy import PlainNeuron, to_deploy
from .eventnet import VIEW_OPS
from .graph_probe import probe
from .supported import pair

DEFAULT_DT = 1e-4  # what snnTorch's import_from_nir assumes (nir_source reads files with the same default)
ADDS = ("add", "__add__", "__iadd__", "__radd__")


def neuron_node(spec, shape, dt: float, name: str):
    import nir

    meta = {"edgeticket": {k: v for k, v in asdict(spec).items() if v is not None} | {"dt": dt}}  # HDF5: no None
    full = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
    if spec.v_reset is None:
        raise EdgeTicketError(f"{name}: a soft reset (v_reset=None) has no NIR form (NIR neurons reset to v_reset); "
                              "export a hard-reset network")
    if spec.kind == "if":  # v_nir = dt * v: dt * r * x with r = 1 (snnTorch's importer takes r = 1 only)
        return nir.IF(r=full(1.0), v_threshold=full(spec.v_threshold * dt), v_reset=full(spec.v_reset * dt),
                      metadata=meta)
    tau = spec.tau if spec.kind == "lif" else 1.0 / spec.k
    r = 1.0 if spec.decay_input else tau
    return nir.LIF(tau=full(tau * dt), r=full(r), v_leak=full(spec.v_reset), v_threshold=full(spec.v_threshold),
                   v_reset=full(spec.v_reset), metadata=meta)


def layer_nodes(c, dt: float) -> list:
    """The NIR node(s) of one leaf call (a chain: a MaxPool becomes AvgPool + a memoryless LIF)."""
    import nir

    m, ins, outs = c.module, c.in_shape, c.out_shape
    w = lambda t: t.detach().numpy().astype(np.float32)  # noqa: E731
    if isinstance(m, nn.Conv2d):
        bias = w(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
        return [nir.Conv2d(input_shape=tuple(ins[-2:]), weight=w(m.weight), stride=pair(m.stride),
                           padding=pair(m.padding), dilation=pair(m.dilation), groups=m.groups, bias=bias)]
    if isinstance(m, nn.Linear):
        if m.bias is None:
            return [nir.Linear(weight=w(m.weight))]
        return [nir.Affine(weight=w(m.weight), bias=w(m.bias))]
    if isinstance(m, PlainNeuron):
        return [neuron_node(m.spec, tuple(outs[-len(m.shape):]), dt, c.name)]
    if isinstance(m, nn.MaxPool2d):
        k, s = pair(m.kernel_size), pair(m.stride if m.stride is not None else m.kernel_size)
        tag = {"edgeticket": "maxpool", "kernel_size": list(k), "stride": list(s)}
        shape = tuple(outs[-3:])
        return [nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(s), padding=np.array(pair(m.padding)),
                              metadata=tag),
                nir.LIF(tau=np.full(shape, dt, np.float32), r=np.ones(shape, np.float32),
                        v_leak=np.zeros(shape, np.float32), v_threshold=np.full(shape, 0.5 / (k[0] * k[1]), np.float32),
                        v_reset=np.zeros(shape, np.float32), metadata=tag)]
    if isinstance(m, nn.AvgPool2d):
        k, s = pair(m.kernel_size), pair(m.stride if m.stride is not None else m.kernel_size)
        return [nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(s), padding=np.array(pair(m.padding)))]
    if isinstance(m, nn.AdaptiveAvgPool2d):  # to 1x1 (other sizes became AvgPool2d in to_deploy)
        h, wd = ins[-2:]
        return [nir.AvgPool2d(kernel_size=np.array((h, wd)), stride=np.array((h, wd)), padding=np.array((0, 0)))]
    if isinstance(m, nn.Flatten):
        return [nir.Flatten(input_type={"input": np.array(ins[-3:])}, start_dim=0, end_dim=-1)]
    if isinstance(m, nn.Identity):
        return []
    raise EdgeTicketError(f"{c.name}: {type(m).__name__} has no NIR export")


def is_spiking(node) -> bool:
    import nir

    return isinstance(node, (nir.LIF, nir.IF))


def per_sample_out(c) -> tuple:
    m, out = c.module, c.out_shape
    if isinstance(m, nn.Linear):
        return (out[-1],)
    if isinstance(m, nn.Flatten):
        return (int(np.prod(c.in_shape[-3:])),)
    if isinstance(m, PlainNeuron):
        return tuple(out[-len(m.shape):])
    return tuple(out[-3:])


def to_nir(model: nn.Module, input_shape: tuple[int, int, int], dt: float = DEFAULT_DT):
    """The NIR graph of a ticket's model (BN folded, masked weights as they are)."""
    import nir

    net = to_deploy(model, tuple(input_shape))
    graph = probe(net, tuple(input_shape), timesteps=1)
    nodes = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    edges: list[tuple[str, str]] = []
    made_by: dict[int, list[str]] = {graph.source: ["input"]}  # tensor id -> the NIR nodes whose sum it is
    shape_of = {"input": tuple(input_shape)}  # NIR node -> its output shape (no batch)
    last = ["input"]
    for c in graph.calls:
        srcs = [n for t in c.inputs for n in made_by.get(t, [])]
        if c.module is None:
            if c.name in VIEW_OPS:
                made = list(dict.fromkeys(srcs))
            elif c.name in ADDS and len(c.inputs) == 2 and len(srcs) == 2 and srcs[0] != srcs[1] and \
                    all(t in made_by for t in c.inputs):
                made = srcs  # a NIR node sums its inputs: the add of two layers' outputs is the fan-in
            else:
                raise EdgeTicketError(f"the tensor operation {c.name} after {last[0]} has no NIR form (NIR sums a "
                                      "node's inputs: residual additions export, other arithmetic does not)")
        else:
            if c.name in nodes:
                raise EdgeTicketError(f"{c.name} runs more than once in forward: NIR export needs one module per use")
            if isinstance(c.module, nn.MaxPool2d) and not all(is_spiking(nodes[s]) for s in srcs):
                raise EdgeTicketError(f"{c.name}: MaxPool2d on real values (not spikes) has no NIR form (NIR has no "
                                      "max-pooling; edgeticket writes it as AvgPool + threshold, exact on spikes only)")
            chain = layer_nodes(c, dt)
            made = list(dict.fromkeys(srcs))
            if isinstance(c.module, nn.Linear) and any(len(shape_of[s]) > 1 for s in made):  # a view flattened it
                nodes[f"{c.name}.flatten"] = nir.Flatten(input_type={"input": np.array(shape_of[made[0]])},
                                                         start_dim=0, end_dim=-1)
                edges += [(s, f"{c.name}.flatten") for s in made]
                made = [f"{c.name}.flatten"]
            for i, node in enumerate(chain):
                key = c.name if i == 0 else f"{c.name}.threshold"
                nodes[key] = node
                edges += [(s, key) for s in made]
                made = [key]
                shape_of[key] = per_sample_out(c)
            if chain:
                last = made
        for t in c.outputs:
            made_by[t] = made
    out = made_by.get(graph.calls[-1].outputs[0], last) if graph.calls else last
    logits = graph.leaves()[-1].out_shape[-1]
    nodes["output"] = nir.Output(output_type={"output": np.array([logits])})
    edges += [(s, "output") for s in out]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def export_nir(model: nn.Module, input_shape: tuple[int, int, int], path: Path, dt: float = DEFAULT_DT) -> dict:
    import nir

    g = to_nir(model, input_shape, dt)
    store.atomic_write(Path(path), lambda p: nir.write(str(p), g))  # a killed export leaves the old file whole
    return {"file": str(path), "nodes": len(g.nodes), "edges": len(g.edges), "dt": dt}
