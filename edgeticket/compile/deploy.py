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

import torch
from torch import nn

from ..device.runners import stream
from ..snn.neurons import NeuronSpec, spec_of, step
from .fold import fold_batchnorm

LAYOUTS = ("time-folded", "streaming")


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


def to_deploy(model: nn.Module) -> nn.Module:
    """A copy of a trained SpikingNet with BN folded and each neuron a PlainNeuron of its NeuronSpec (a neuron
    outside the table is one line naming it), in eval mode, contiguous."""
    from spikingjelly.activation_based import neuron

    net = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    fold_batchnorm(net)
    for name, mod in list(net.named_modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, neuron.BaseNode):
                full = f"{name}.{cname}" if name else cname
                setattr(mod, cname, PlainNeuron(spec_of(child, full), full))
    net.forward = net.forward_seq  # no spikingjelly state to reset any more
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def lif_layers(net: nn.Module) -> list[PlainNeuron]:
    return [m for m in net.modules() if isinstance(m, PlainNeuron)]


class InputCounter:
    """Counts the nonzero inputs of each synaptic layer (conv/linear fed by spikes) per timestep and sample:
    with binary spikes this is the number of presynaptic events, exact through max-pooling. Used for SynOps."""

    def __init__(self, net: nn.Module, timesteps: int, layers: list[str]):
        self.counts: dict[str, torch.Tensor] = {}
        mods = dict(net.named_modules())
        self.handles = [mods[n].register_forward_pre_hook(self._hook(n, timesteps)) for n in layers]

    def _hook(self, name, T):
        def hook(mod, args):
            x = args[0]
            self.counts[name] = (x != 0).flatten(1).sum(1).to(torch.float32).view(T, -1)
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def synaptic_layers(net: nn.Module) -> list[str]:
    """Module names of the conv/linear layers whose input is a spike train (all but the stem)."""
    return [n for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and n != "stem.conv"]


class TimeFolded(nn.Module):
    """x [B, C, H, W] -> (logits summed over T [B, K], spike counts of each LIF layer [T, B]...)."""

    def __init__(self, net: nn.Module, timesteps: int, count_inputs: bool = False):
        super().__init__()
        self.net, self.timesteps = net, int(timesteps)
        self.net.timesteps = self.timesteps
        self.count_inputs = count_inputs

    def forward(self, x: torch.Tensor):
        counter = InputCounter(self.net, self.timesteps, synaptic_layers(self.net)) if self.count_inputs else None
        try:
            logits = self.net.forward_seq(x)
        finally:
            if counter:
                counter.remove()
        extra = list(counter.counts.values()) if counter else []
        return (logits.sum(0), *[l.counts for l in lif_layers(self.net)], *extra)


class Streaming(nn.Module):
    """(x [B, C, H, W], v_1, ..., v_L) -> (logits of this step [B, K], v_1', ..., v_L', counts [B]...).
    The caller runs it T times starting from zero states and sums the logits."""

    def __init__(self, net: nn.Module, count_inputs: bool = False):
        super().__init__()
        self.net = net
        self.net.timesteps = 1
        self.count_inputs = count_inputs

    def forward(self, x: torch.Tensor, *states: torch.Tensor):
        layers = lif_layers(self.net)
        for l, v in zip(layers, states):
            l.v0 = v
        counter = InputCounter(self.net, 1, synaptic_layers(self.net)) if self.count_inputs else None
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

    states = [torch.zeros(x.shape[0], *s) for s in state_shapes(net, tuple(x.shape[1:]))]
    total, counts = stream(one, states, timesteps, stack=torch.stack)
    return total, dict(zip(names, counts))


@torch.no_grad()
def layer_table(net: nn.Module, input_shape: tuple, timesteps: int) -> list[dict]:
    """Per conv/linear layer: input and output shape per sample, weight numel and nonzeros, dense MACs per call
    and whether its input is the image (once per call: direct encoding) or spikes (every timestep)."""
    rows, mods = [], dict(net.named_modules())
    syn = set(synaptic_layers(net))

    def hook(name):
        def h(mod, args, out):
            w = mod.weight
            per_pos = int(w[0].numel()) if isinstance(mod, nn.Conv2d) else int(w.shape[1])
            out_positions = int(out[0].numel() // w.shape[0])
            rows.append({"name": name, "kind": "conv" if isinstance(mod, nn.Conv2d) else "linear",
                         "in_shape": list(args[0].shape[1:]), "out_shape": list(out.shape[1:]),
                         "numel": int(w.numel()), "nnz": int((w != 0).sum()),
                         "in_neurons": int(args[0][0].numel()), "out_positions": out_positions,
                         "input": "spikes" if name in syn else "image",
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
        steps = 1 if r["input"] == "image" else timesteps
        r["macs_per_sample_dense"] = r["macs_per_step_dense"] * steps
        # synaptic events if every input neuron fired: each input reaches nnz * out_positions / in_neurons targets
        r["mean_fanout_nonzero"] = r["nnz"] * r["out_positions"] / max(r["in_neurons"], 1)
    return rows
