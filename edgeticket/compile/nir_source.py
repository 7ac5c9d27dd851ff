"""A NIR file as compile's input (a ticket from another framework): the graph rebuilt as a multi-step spikingjelly
network, its mask the zero weights (docs/models.md "NIR in").

Nodes: Input, Output, Conv2d, Affine, Linear, AvgPool2d, Flatten, LIF, IF, and edgeticket's max-pooling pair
(AvgPool2d + memoryless LIF tagged `edgeticket: maxpool`). A node with several inputs sums them (NIR's rule). Neuron
parameters must be one value per node. Where a neuron's metadata holds edgeticket's exact neuron (a file edgeticket
wrote), that neuron is rebuilt; otherwise NIR's continuous-time parameters are read with the Euler step dt:
LIF tau_step = tau / dt (> 1), r = 1 (decay_input) or r = tau_step (no input decay), v_leak = v_reset;
IF threshold and v_reset divided by dt * r. Anything else is one line naming the node.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import store
from ..errors import EdgeTicketError

SUPPORTED = "Input, Output, Conv2d, Affine, Linear, AvgPool2d, Flatten, LIF, IF"


def _one(node_name: str, field: str, v) -> float:
    a = np.asarray(v, dtype=np.float64).ravel()
    if a.size == 0 or not np.all(a == a[0]):
        raise EdgeTicketError(f"NIR node {node_name}: {field} differs between neurons; compile takes one value per "
                              "layer")
    return float(a[0])


def _meta(node) -> dict:
    m = getattr(node, "metadata", None) or {}
    e = m.get("edgeticket")
    return e if isinstance(e, dict) else {}


def _neuron(name: str, node, dt: float) -> nn.Module:
    import nir
    from spikingjelly.activation_based import neuron, surrogate

    exact = _meta(node)
    common = dict(surrogate_function=surrogate.ATan(), detach_reset=True, step_mode="m")
    if exact.get("kind") == "if":
        return neuron.IFNode(v_threshold=exact["v_threshold"], v_reset=exact["v_reset"], **common)
    if exact.get("kind") in ("lif", "plif"):
        tau = exact["tau"] if exact["kind"] == "lif" else 1.0 / exact["k"]
        return neuron.LIFNode(tau=tau, decay_input=bool(exact["decay_input"]), v_threshold=exact["v_threshold"],
                              v_reset=exact["v_reset"], **common)
    if isinstance(node, nir.IF):
        r = _one(name, "r", node.r)
        reset = node.v_reset if node.v_reset is not None else np.zeros(1)
        return neuron.IFNode(v_threshold=_one(name, "v_threshold", node.v_threshold) / (dt * r),
                             v_reset=_one(name, "v_reset", reset) / (dt * r), **common)
    tau = _one(name, "tau", node.tau) / dt
    if not tau > 1.0:
        raise EdgeTicketError(f"NIR node {name}: LIF tau / dt = {tau:g}; a discrete-time LIF needs tau > dt (pass the "
                              "--dt the file was written for)")
    r = _one(name, "r", node.r)
    if not (np.isclose(r, 1.0) or np.isclose(r, tau)):
        raise EdgeTicketError(f"NIR node {name}: LIF with r = {r:g} (tau/dt = {tau:g}): compile takes r = 1 (input "
                              "decays with the membrane) or r = tau/dt (it does not)")
    reset = node.v_reset if node.v_reset is not None else node.v_leak
    if _one(name, "v_leak", node.v_leak) != _one(name, "v_reset", reset):
        raise EdgeTicketError(f"NIR node {name}: LIF with v_leak != v_reset; spikingjelly's LIF leaks toward its reset "
                              "value")
    return neuron.LIFNode(tau=tau, decay_input=bool(np.isclose(r, 1.0)), v_threshold=_one(name, "v_threshold",
                          node.v_threshold), v_reset=_one(name, "v_reset", reset), **common)


def _layer(name: str, node, dt: float) -> nn.Module | None:
    import nir
    from spikingjelly.activation_based import layer

    t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32))  # noqa: E731
    pair = lambda v: tuple(int(x) for x in np.broadcast_to(np.asarray(v), (2,)))  # noqa: E731
    if isinstance(node, (nir.Input, nir.Output)):
        return None
    if isinstance(node, nir.Conv2d):
        w = t(node.weight)
        m = layer.Conv2d(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]), stride=pair(node.stride),
                         padding=pair(node.padding), dilation=pair(node.dilation), groups=int(node.groups), bias=True,
                         step_mode="m")
        m.weight.data.copy_(w)
        m.bias.data.copy_(t(node.bias) if node.bias is not None else torch.zeros(w.shape[0]))
        return m
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = t(node.weight)
        m = layer.Linear(w.shape[1], w.shape[0], bias=isinstance(node, nir.Affine), step_mode="m")
        m.weight.data.copy_(w)
        if isinstance(node, nir.Affine):
            m.bias.data.copy_(t(node.bias))
        return m
    if isinstance(node, nir.AvgPool2d):
        k, s, p = pair(node.kernel_size), pair(node.stride), pair(node.padding)
        if (node.metadata or {}).get("edgeticket") == "maxpool":
            return layer.MaxPool2d(k, s, p, step_mode="m")
        return layer.AvgPool2d(k, s, p, step_mode="m")
    if isinstance(node, nir.Flatten):
        return layer.Flatten(start_dim=int(node.start_dim) + 1, end_dim=int(node.end_dim), step_mode="m")
    if isinstance(node, (nir.LIF, nir.IF)):
        if (node.metadata or {}).get("edgeticket") == "maxpool":
            return nn.Identity()  # its AvgPool2d became the MaxPool2d
        return _neuron(name, node, dt)
    raise EdgeTicketError(f"NIR node {name}: {type(node).__name__} is not supported; compile takes {SUPPORTED}")


class NirNet(nn.Module):
    """A NIR graph run in topological order on [T, B, ...] tensors; a node with several inputs sums them."""

    def __init__(self, graph, dt: float):
        super().__init__()
        self.order = _topological(graph)
        self.inputs = {n: [s for s, d in graph.edges if d == n] for n in self.order}
        self.keys = {n: n.replace(".", "_") for n in self.order}
        self.layers = nn.ModuleDict()
        for n in self.order:
            m = _layer(n, graph.nodes[n], dt)
            if m is not None:
                self.layers[self.keys[n]] = m
        self.source = next(n for n in self.order if not self.inputs[n])

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        vals = {self.source: x_seq}
        for n in self.order:
            if n == self.source:
                continue
            srcs = self.inputs[n]
            v = vals[srcs[0]]
            for s in srcs[1:]:
                v = v + vals[s]
            key = self.keys[n]
            vals[n] = self.layers[key](v) if key in self.layers else v
        return vals[self.order[-1]]


def _topological(graph) -> list[str]:
    incoming = {n: {s for s, d in graph.edges if d == n} for n in graph.nodes}
    order, done = [], set()
    while len(order) < len(graph.nodes):
        ready = [n for n in graph.nodes if n not in done and incoming[n] <= done]
        if not ready:
            raise EdgeTicketError("the NIR graph has a cycle (a recurrent connection); compile takes feed-forward "
                                  "graphs")
        for n in ready:
            order.append(n)
            done.add(n)
    outputs = [n for n in order if not any(s == n for s, _ in graph.edges)]
    if len(outputs) != 1:
        raise EdgeTicketError(f"the NIR graph has {len(outputs)} outputs ({', '.join(outputs)}); compile takes one")
    order.remove(outputs[0])
    return order + outputs


def load(path: Path, timesteps: int, dt: float):
    """(model, mask, info, sha256 of the file) of a NIR file, as compile's ticket source."""
    import nir

    from ..models.imported import ImportedNet
    from ..pruning import Mask

    path = Path(path)
    try:
        graph = nir.read(str(path))
    except Exception as e:  # noqa: BLE001 - whatever h5py or nir raise on a bad file is one line here
        raise EdgeTicketError(f"{path} is not a readable NIR file ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    inputs = [n for n in graph.nodes.values() if isinstance(n, nir.Input)]
    outputs = [n for n in graph.nodes.values() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise EdgeTicketError(f"{path}: compile takes a NIR graph with one Input and one Output node")
    shape = [int(d) for d in np.asarray(next(iter(inputs[0].input_type.values()))).ravel()]
    classes = int(np.prod(np.asarray(next(iter(outputs[0].output_type.values())))))
    if len(shape) != 3:
        raise EdgeTicketError(f"{path}: its Input is {shape}; compile takes images (C, H, W)")
    sha = store.sha256_file(path)
    model = ImportedNet(NirNet(graph, dt), timesteps, f"nir:{path.name}").eval()
    prunable = model.prunable()
    sd = model.state_dict()
    mask = Mask({n: sd[n] != 0 for n in prunable})
    zeros = sum(int((~mask[n]).sum()) for n in prunable) / max(1, sum(mask[n].numel() for n in prunable))
    info = {"arch": f"nir:{path.name}", "run": None, "level": None, "branch": None,
            "timesteps": {"deploy": timesteps, "trained": timesteps},
            "dataset": {"name": "nir", "input_shape": shape, "num_classes": classes, "mean": [0.0] * shape[0],
                        "std": [1.0] * shape[0]},
            "sparsity": {"global": zeros}, "accuracy": {"final": None, "best": None},
            "hparams": {"model": {"arch": f"nir:{path.name}"}, "data": {}}}
    return model, mask, info, sha
