"""The inference network that is exported: the ticket's own model classes with BN folded and every
spikingjelly neuron replaced by a PlainNeuron, its update from the neuron table as plain tensor ops
(edgeticket/snn/neurons.py).

Two layouts (the `forward_seq` of the model classes runs unchanged in both):
- time-folded: one call runs all T steps; stateless layers see [T*B, ...], LIF is unrolled over T.
- streaming: one call runs one timestep; each LIF's membrane state is an explicit input and output.
Both count spikes per layer per timestep per sample ([T, B], or [B] per streaming call) for validation and
profiling.
"""

from __future__ import annotations

import copy
import types

import torch
from torch import nn
from torch.nn import functional as F

from spikingjelly.activation_based import layer as sj_layer

from ..device.runners import stream
from ..errors import EdgeTicketError
from ..snn.neurons import NeuronSpec, spec_of, step
from .fold import fold_batchnorm
from .graph_probe import bn_pairs, check_calls, image_fed, probe

LAYOUTS = ("time-folded", "streaming")
DROPOUTS = (nn.Dropout, nn.Dropout2d, sj_layer.Dropout)  # spikingjelly's Dropout (one mask over T) is its own class


class PlainNeuron(nn.Module):
    """A neuron of the table (snn/neurons.py) over a [T, B, ...] sequence with an optional initial state (else its
    resting value, NeuronSpec.v_init); records spike counts."""

    def __init__(self, spec: NeuronSpec, name: str):
        super().__init__()
        self.spec, self.name = spec, name
        self.v0: torch.Tensor | None = None  # streaming: the state fed in
        self.v_last: torch.Tensor | None = None  # streaming: the state after the step
        self.counts: torch.Tensor | None = None  # [T, B] spikes per sample per timestep
        self.shape: tuple | None = None  # neuron shape (C, H, W) or (F,)

    @property
    def tau(self) -> float | None:
        return self.spec.tau

    @property
    def v_threshold(self) -> float:
        return self.spec.v_threshold

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        v = self.v0 if self.v0 is not None else torch.full_like(x_seq[0], self.spec.v_init)
        spikes = []
        for t in range(x_seq.shape[0]):
            s, v = step(self.spec, x_seq[t], v)
            spikes.append(s)
        out = torch.stack(spikes)
        self.v_last = v
        self.shape = tuple(x_seq.shape[2:])
        self.counts = out.flatten(2).sum(2)
        return out


def to_deploy(model: nn.Module, input_shape: tuple[int, int, int], fold: bool = True) -> nn.Module:
    """A copy of a trained SpikingNet (the zoo's or a user's) with each neuron a PlainNeuron of its NeuronSpec (a
    neuron outside the table is one line naming it) and, with `fold`, each BatchNorm folded into the layer its
    dataflow follows; in eval mode, contiguous. The copy records which synaptic layers read the image
    (`image_layers`: {name: runs every timestep, else once per call}) and the neurons' execution order
    (`neuron_order`), found by one dry run (graph_probe), not by their names."""
    from spikingjelly.activation_based import neuron

    net = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    for name, mod in list(net.named_modules()):
        for cname, child in list(mod.named_children()):
            full = f"{name}.{cname}" if name else cname
            if isinstance(child, neuron.BaseNode):
                setattr(mod, cname, PlainNeuron(spec_of(child, full), full))
            elif isinstance(child, DROPOUTS):
                setattr(mod, cname, nn.Identity())  # the identity in eval
    for m in net.modules():
        if isinstance(m, nn.Linear):
            m.forward = types.MethodType(_linear_rows, m)
        if getattr(m, "step_mode", None) == "m" and not isinstance(m, neuron.BaseNode) and not any(m.children()):
            m.forward = types.MethodType(_seq_forward, m)
    graph = probe(net, tuple(input_shape))
    check_calls(net, graph)
    net.neuron_order = [c.name for c in graph.leaves() if isinstance(c.module, PlainNeuron)]
    _static_pools(net, graph)
    if fold:
        fold_batchnorm(net, bn_pairs(graph))
    net.image_layers = image_fed(graph)
    net.forward = net.forward_seq  # no spikingjelly state to reset any more
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _torch_forward(m: nn.Module):
    """The forward of the torch.nn class a spikingjelly layer extends (layer.Conv2d -> nn.Conv2d.forward)."""
    return next(c.forward for c in type(m).__mro__
                if c.__module__.startswith("torch.nn.modules") and c is not nn.Module)


def _seq_forward(self: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    """A multi-step spikingjelly layer as spikingjelly runs it ([T, B, ...] -> the layer on [T*B, ...] -> back), with
    a view instead of unflatten: spikingjelly's unflatten bakes the traced batch size into the ONNX graph."""
    y = _torch_forward(self)(self, x_seq.flatten(0, 1))
    return y.view(int(x_seq.shape[0]), -1, *[int(d) for d in y.shape[1:]])  # static T and C, H, W: ONNX's pooling
    # export needs the spatial size; the batch stays dynamic (-1)


def _static_pools(net: nn.Module, graph) -> None:
    """An AdaptiveAvgPool2d to a size other than 1x1 becomes the AvgPool2d it equals on its input size (kernel =
    stride = input / output): ONNX's exporter cannot export it where the input size is traced (a dynamic batch).
    An input size the output does not divide is one line naming the layer."""
    for c in graph.leaves():
        m = c.module
        if not isinstance(m, nn.AdaptiveAvgPool2d):
            continue
        out = m.output_size if isinstance(m.output_size, (tuple, list)) else (m.output_size, m.output_size)
        h, w = c.in_shape[-2:]
        out = tuple(d if o is None else o for o, d in zip(out, (h, w)))
        if out == (1, 1):
            continue  # GlobalAveragePool
        if h % out[0] or w % out[1]:
            raise EdgeTicketError(f"{c.name}: AdaptiveAvgPool2d to {out} on a {h}x{w} input: compile exports adaptive "
                                  "pooling where the output size divides the input size (or to 1x1)")
        k = (h // out[0], w // out[1])
        pool = sj_layer.AvgPool2d(k, k, step_mode=getattr(m, "step_mode", "s"))
        if getattr(m, "step_mode", None) == "m":
            pool.forward = types.MethodType(_seq_forward, pool)
        net.set_submodule(c.name, pool)


def _linear_rows(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """nn.Linear on rows: an input of more than 2 dims (a multi-step layer.Linear sees [T, B, F]) runs as [T*B, F]
    and is viewed back, so the export is a Gemm on the weight itself (a MatMul would constant-fold its transpose
    into a new initializer, and the prunable weight would vanish from the graph). Same sums, same order."""
    if x.dim() <= 2:
        return nn.Linear.forward(self, x)
    y = F.linear(x.reshape(-1, x.shape[-1]), self.weight, self.bias)
    return y.view(*x.shape[:-1], y.shape[-1])


def lif_layers(net: nn.Module) -> list[PlainNeuron]:
    """The neurons in execution order (to_deploy records it from the dry run; definition order before that)."""
    found = {m.name: m for m in net.modules() if isinstance(m, PlainNeuron)}
    order = getattr(net, "neuron_order", None) or list(found)
    return [found[n] for n in order]


class InputCounter:
    """Counts the nonzero inputs of each synaptic layer (conv/linear fed by spikes) per timestep and sample:
    with binary spikes this is the number of presynaptic events, exact through max-pooling. Used for SynOps."""

    def __init__(self, net: nn.Module, timesteps: int, batch: int, layers: list[str]):
        self.counts: dict[str, torch.Tensor] = {}
        mods = dict(net.named_modules())
        self.handles = [mods[n].register_forward_pre_hook(self._hook(n, timesteps, batch)) for n in layers]

    def _hook(self, name, T, B):
        def hook(mod, args):
            x = args[0].reshape(T * B, -1)  # [T*B, ...] or a multi-step layer's [T, B, ...]
            self.counts[name] = (x != 0).sum(1).to(torch.float32).view(T, B)
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def synaptic_layers(net: nn.Module) -> list[str]:
    """Module names of the conv/linear layers whose input is a spike train (all but those reading the image)."""
    return [n for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and n not in net.image_layers]


class TimeFolded(nn.Module):
    """x [B, C, H, W] -> (logits summed over T [B, K], spike counts of each LIF layer [T, B]...)."""

    def __init__(self, net: nn.Module, timesteps: int, count_inputs: bool = False):
        super().__init__()
        self.net, self.timesteps = net, int(timesteps)
        self.net.timesteps = self.timesteps
        self.count_inputs = count_inputs

    def forward(self, x: torch.Tensor):
        counter = InputCounter(self.net, self.timesteps, x.shape[0], synaptic_layers(self.net)) \
            if self.count_inputs else None
        try:
            logits = self.net.forward_seq(x)
        finally:
            if counter:
                counter.remove()
        extra = list(counter.counts.values()) if counter else []
        return (logits.sum(0), *[l.counts for l in lif_layers(self.net)], *extra)


class Streaming(nn.Module):
    """(x [B, C, H, W], v_1, ..., v_L) -> (logits of this step [B, K], v_1', ..., v_L', counts [B]...).
    The caller runs it T times starting from each neuron's resting value (initial_states) and sums the logits."""

    def __init__(self, net: nn.Module, count_inputs: bool = False):
        super().__init__()
        self.net = net
        self.net.timesteps = 1
        self.count_inputs = count_inputs

    def forward(self, x: torch.Tensor, *states: torch.Tensor):
        layers = lif_layers(self.net)
        for l, v in zip(layers, states):
            l.v0 = v
        counter = InputCounter(self.net, 1, x.shape[0], synaptic_layers(self.net)) if self.count_inputs else None
        try:
            logits = self.net.forward_seq(x)[0]
        finally:
            for l in layers:
                l.v0 = None
            if counter:
                counter.remove()
        extra = [c[0] for c in counter.counts.values()] if counter else []
        return (logits, *[l.v_last for l in layers], *[l.counts[0] for l in layers], *extra)


def state_shapes(net: nn.Module, input_shape: tuple[int, int, int]) -> list[tuple]:
    """Neuron shapes (per sample) of each LIF layer, found by one dry run at batch 1."""
    net.timesteps = 1
    with torch.no_grad():
        net.forward_seq(torch.zeros(1, *input_shape))
    return [l.shape for l in lif_layers(net)]


def v_init(net: nn.Module) -> list[float]:
    """Each neuron layer's first membrane value (its resting value), in graph order: what the runners start at."""
    return [l.spec.v_init for l in lif_layers(net)]


def initial_states(net: nn.Module, batch: int, input_shape: tuple) -> list[torch.Tensor]:
    """The streaming layout's first states: each neuron at its resting value (NeuronSpec.v_init)."""
    return [torch.full((batch, *s), l.spec.v_init) for l, s in zip(lif_layers(net), state_shapes(net, input_shape))]


@torch.no_grad()
def run_torch(net: nn.Module, x: torch.Tensor, timesteps: int, layout: str):
    """Reference execution in PyTorch of exactly the exported computation.
    Returns (logits summed over T [B, K], counts {layer: [T, B]})."""
    names = [l.name for l in lif_layers(net)]
    if layout == "time-folded":
        out = TimeFolded(net, timesteps)(x)
        return out[0], {n: c for n, c in zip(names, out[1:])}
    step, L = Streaming(net), len(names)

    def one(states):
        out = step(x, *states)
        return out[0], list(out[1:1 + L]), out[1 + L:]

    states = initial_states(net, x.shape[0], tuple(x.shape[1:]))
    total, counts = stream(one, states, timesteps, stack=torch.stack)
    return total, dict(zip(names, counts))


@torch.no_grad()
def layer_table(net: nn.Module, input_shape: tuple, timesteps: int) -> list[dict]:
    """Per conv/linear layer: input and output shape per sample, weight numel and nonzeros, dense MACs per call,
    whether its input is the image (direct encoding) or spikes, and how often it runs per call (spikes: every
    timestep; the image: once, or every timestep where the network repeats the image over T)."""
    rows, mods = [], dict(net.named_modules())
    syn = set(synaptic_layers(net))

    def hook(name):
        def h(mod, args, out):  # at T = 1, batch 1: every tensor holds one sample
            w, dims = mod.weight, (3 if isinstance(mod, nn.Conv2d) else 1)
            per_pos = int(w[0].numel()) if isinstance(mod, nn.Conv2d) else int(w.shape[1])
            out_positions = int(out.numel() // w.shape[0])
            once = name not in syn and not net.image_layers.get(name, False)
            rows.append({"name": name, "kind": "conv" if isinstance(mod, nn.Conv2d) else "linear",
                         "in_shape": list(args[0].shape[-dims:]), "out_shape": list(out.shape[-dims:]),
                         "numel": int(w.numel()), "nnz": int((w != 0).sum()),
                         "in_neurons": int(args[0].numel()), "out_positions": out_positions,
                         "input": "spikes" if name in syn else "image",
                         "runs_per_call": 1 if once else timesteps,
                         "macs_per_step_dense": int(w.numel()) * out_positions,
                         "fan_in": per_pos})
        return h

    handles = [mods[n].register_forward_hook(hook(n)) for n, m in mods.items() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        net.timesteps = 1
        net.forward_seq(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    for r in rows:
        r["macs_per_sample_dense"] = r["macs_per_step_dense"] * r["runs_per_call"]
        # synaptic events if every input neuron fired: each input reaches nnz * out_positions / in_neurons targets
        r["mean_fanout_nonzero"] = r["nnz"] * r["out_positions"] / max(r["in_neurons"], 1)
    return rows
