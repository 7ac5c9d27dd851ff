"""The dataflow of a network, read off one dry run: which leaf modules run, in what order, which tensors each one
reads and writes, and the free tensor operations between them (additions, views, repeats of the user's forward).

Module hooks see the leaves (modules without children, and neurons, whose surrogate child is part of them); a
TorchFunctionMode sees every tensor operation outside them. Tensors are told apart by identity (all are kept alive
for the run), so this works on any forward, also one that unpacks `x.shape` (which torch.fx cannot trace).

Compile reads from it, for the zoo and a user's network alike (no layer names assumed):
- bn_pairs: each BatchNorm and the Conv2d/Linear it folds into (the layer whose output only that BN reads);
- image_fed: the Conv2d/Linear layers whose input comes from the image without passing a neuron (direct
  encoding: real-valued input, not spikes), and how many times per call each one runs (once when the network
  computes it on the static image, T times when it repeats the image over time first).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import EdgeTicketError

SYNAPTIC = (nn.Conv2d, nn.Linear)
BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)


def is_neuron(m: nn.Module) -> bool:
    from spikingjelly.activation_based import neuron

    from .deploy import PlainNeuron

    return isinstance(m, (neuron.BaseNode, PlainNeuron))


@dataclass
class Call:
    """One leaf module's call (module set) or one free tensor operation (module None, name = the op's name)."""
    name: str
    module: nn.Module | None
    inputs: list[int]
    outputs: list[int]
    in_shape: tuple = ()
    out_shape: tuple = ()


@dataclass
class Graph:
    source: int
    calls: list[Call] = field(default_factory=list)

    def producer(self, tid: int) -> Call | None:
        return next((c for c in reversed(self.calls) if tid in c.outputs), None)

    def consumers(self, tid: int) -> list[Call]:
        return [c for c in self.calls if tid in c.inputs]

    def leaves(self) -> list[Call]:
        return [c for c in self.calls if c.module is not None]


def _tensors(obj, out: list) -> list:
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _tensors(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _tensors(o, out)
    return out


class _Recorder(TorchFunctionMode):
    def __init__(self, graph: Graph, keep: list):
        super().__init__()
        self.graph, self.keep, self.inside = graph, keep, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.inside == 0:
            ins, outs = _tensors((args, kwargs), []), _tensors(out, [])
            if ins and outs:
                self.keep.extend(ins + outs)
                self.graph.calls.append(Call(getattr(func, "__name__", str(func)), None, [id(t) for t in ins],
                                             [id(t) for t in outs]))
        return out


def leaf_modules(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """(path, module) of the leaves: modules without children, and neurons (their surrogate is part of them)."""
    leaves, neurons = [], []
    for path, m in net.named_modules():
        if any(path.startswith(f"{n}.") for n in neurons):
            continue
        if is_neuron(m):
            neurons.append(path)
            leaves.append((path, m))
        elif not any(True for _ in m.children()):
            leaves.append((path, m))
    return leaves


@torch.no_grad()
def probe(net: nn.Module, input_shape: tuple, timesteps: int = 2) -> Graph:
    """The dataflow of `net.forward_seq` on one zero image at `timesteps` (restored afterwards)."""
    x = torch.zeros(1, *input_shape)
    graph, keep = Graph(id(x)), [x]
    rec = _Recorder(graph, keep)

    def pre(mod, args):
        rec.inside += 1

    def post(name):
        def hook(mod, args, out):
            rec.inside -= 1
            ins, outs = _tensors(args, []), _tensors(out, [])
            keep.extend(ins + outs)
            graph.calls.append(Call(name, mod, [id(t) for t in ins], [id(t) for t in outs],
                                    tuple(ins[0].shape) if ins else (), tuple(outs[0].shape) if outs else ()))
        return hook

    handles = []
    for name, m in leaf_modules(net):
        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post(name))]
    had, saved = hasattr(net, "timesteps"), getattr(net, "timesteps", None)
    try:
        net.timesteps = timesteps
        with rec:
            net.forward_seq(x)
    finally:
        for h in handles:
            h.remove()
        if had:
            net.timesteps = saved
        else:
            del net.timesteps
    return graph


def check_calls(net: nn.Module, graph: Graph) -> None:
    """Each leaf with weights, and each neuron, runs exactly once per pass over the timesteps: one never called (it
    would leave an output of the bundle empty) or one called twice (the bundle counts one layer per module) is one
    line. Stateless layers (pooling, flatten) may be shared or unused."""
    counts = {}
    for c in graph.leaves():
        counts[c.name] = counts.get(c.name, 0) + 1
    for path, m in leaf_modules(net):
        if not is_neuron(m) and not any(True for _ in m.parameters(recurse=False)):
            continue
        n = counts.get(path, 0)
        if n != 1:
            t = type(m)
            what = "never runs in forward: remove it" if n == 0 else \
                f"runs {n} times in forward: compile needs one module per use (make a second {t.__name__})"
            raise EdgeTicketError(f"{path}: {t.__module__}.{t.__name__} {what}")


def bn_pairs(graph: Graph) -> list[tuple[str, str]]:
    """(layer, bn) for every BatchNorm: the Conv2d/Linear whose output that BN alone reads. Any other BatchNorm is
    one line naming it (compile folds BN into the layer before it)."""
    pairs, calls = [], {}
    for c in graph.leaves():
        calls[c.name] = calls.get(c.name, 0) + 1
    for c in graph.leaves():
        if not isinstance(c.module, BATCHNORM):
            continue
        src = graph.producer(c.inputs[0]) if c.inputs else None
        ok = (src is not None and isinstance(src.module, SYNAPTIC) and calls[src.name] == 1 and calls[c.name] == 1
              and len(graph.consumers(c.inputs[0])) == 1
              and (isinstance(c.module, nn.BatchNorm2d) == isinstance(src.module, nn.Conv2d)))
        if not ok:
            t = type(c.module)
            raise EdgeTicketError(f"{c.name}: {t.__module__}.{t.__name__} does not directly follow a Conv2d "
                                  "(BatchNorm2d) or Linear (BatchNorm1d) whose output only it reads; compile folds "
                                  "each BatchNorm into the layer before it")
        pairs.append((src.name, c.name))
    return pairs


def image_fed(graph: Graph) -> dict[str, bool]:
    """{name: runs every timestep} of the Conv2d/Linear layers that read the image without a neuron in between
    (direct encoding). In the probe (batch 1, T > 1) a layer that sees one row runs once per call (the network
    computes it on the static image), one that sees T rows runs every timestep (the network repeats the image)."""
    tainted, fed = {graph.source}, {}
    for c in graph.calls:
        if c.module is not None and is_neuron(c.module):
            continue
        if any(t in tainted for t in c.inputs):
            tainted.update(c.outputs)
            if isinstance(c.module, SYNAPTIC):
                per_sample = 3 if isinstance(c.module, nn.Conv2d) else 1
                rows = 1
                for d in c.in_shape[:-per_sample]:
                    rows *= d
                fed[c.name] = rows > 1
    return fed
