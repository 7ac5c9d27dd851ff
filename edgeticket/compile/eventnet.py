"""Deploy network -> the event backend's layer program (formats/etsp.py writes it as an .etsp file).

The program is read off the network's dataflow (graph_probe), so the zoo and a user's network are treated alike:
each value between layers is the image, a layer's currents, its spikes or real values (a global average pool's),
and each layer is a record that reads an earlier one (`src`). The kernels run: a conv reading the image + LIF,
convs reading spikes (+ LIF), max-pooling, global average pooling, linear layers on spikes or on pooled values
(+ LIF), and residual additions before a LIF (`join`: a shortcut conv's currents or an earlier layer's spikes); the
last layer is the classifier. Every neuron is one hard-reset (to 0) LIF with decay_input and the same tau and
threshold. Anything else (other neurons, additions of spikes after a LIF as in SEW ResNets, average pooling over a
window, other arithmetic between layers) is refused with the layers it concerns (`Unsupported.layers`), which the
manifest records; the dense backends stay.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from ..formats.etsp import CONV_IMAGE, CONV_SPIKES, GLOBAL_AVGPOOL, LINEAR_REAL, LINEAR_SPIKES, MAXPOOL
from .deploy import PlainNeuron, synaptic_layers
from .graph_probe import image_fed, probe
from .supported import pair

# tensor operations between layers that move no values (the event lists do not change)
VIEW_OPS = {"view", "reshape", "flatten", "unflatten", "unsqueeze", "squeeze", "expand", "repeat", "contiguous",
            "size", "dim"}  # expand/repeat: the image or a map repeated over T (not a slice: no __getitem__)
TRANSPARENT = (nn.Identity, nn.Flatten, nn.Dropout, nn.Dropout2d, nn.Sequential)  # an empty Sequential: identity
ADD_OPS = {"add", "__add__", "__radd__", "__iadd__", "add_"}


class Unsupported(Exception):
    """Why the event backend cannot run a network; `layers`: [{layer, type, reason}] of what it lacks."""

    def __init__(self, reason: str, layers: list[dict] | None = None):
        super().__init__(reason)
        self.layers = layers or []


def _conv_matrix(conv: nn.Conv2d) -> np.ndarray:
    w = conv.weight.detach().numpy().astype(np.float32)
    co = w.shape[0]
    return np.ascontiguousarray(w.reshape(co, -1).T)  # [cin * k * k, cout], column (c * k + ky) * k + kx


def _conv_layer(kind, conv: nn.Conv2d, shape):
    c, h, w = shape
    if conv.groups != 1 or conv.dilation != (1, 1) or conv.kernel_size[0] != conv.kernel_size[1] \
            or conv.stride[0] != conv.stride[1] or conv.padding[0] != conv.padding[1]:
        raise Unsupported("only square, ungrouped, undilated convolutions")
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    bias = conv.bias.detach().numpy() if conv.bias is not None else np.zeros(conv.out_channels, np.float32)
    return ({"kind": kind, "cin": c, "hin": h, "win": w, "cout": conv.out_channels, "hout": ho, "wout": wo, "k": k,
             "stride": s, "pad": p, "lif": 0, "matrix": _conv_matrix(conv), "bias": bias},
            (conv.out_channels, ho, wo))


def _lif_problem(spec, first) -> str | None:
    if spec.kind != "lif" or spec.v_reset != 0.0 or not spec.decay_input:
        return "the event kernels run hard-reset (to 0) LIF neurons with decay_input only"
    if (spec.tau, spec.v_threshold) != (first.tau, first.v_threshold):
        return f"tau/v_threshold differ from the first neuron's ({first.tau}, {first.v_threshold}): one per network"
    return None


def _neuron_problems(steps) -> list[dict]:
    out = []
    neurons = [c for c in steps if isinstance(c.module, PlainNeuron)]
    for c in neurons:
        why = _lif_problem(c.module.spec, neurons[0].module.spec)
        if why:
            out.append({"layer": c.name, "type": c.module.spec.kind, "reason": why})
    return out


def _pool_layer(m: nn.MaxPool2d, shape) -> tuple[dict, tuple]:
    (k, k2), (s, s2) = pair(m.kernel_size), pair(m.stride if m.stride is not None else m.kernel_size)
    if pair(m.padding) != (0, 0) or m.ceil_mode or k != k2 or s != s2:
        raise Unsupported("max-pooling without padding, floor mode, square only")
    c, h, w = shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    return ({"kind": MAXPOOL, "cin": c, "hin": h, "win": w, "cout": c, "hout": ho, "wout": wo, "k": k,
             "stride": s, "pad": 0, "lif": 0}, (c, ho, wo))


def _linear_layer(fc: nn.Linear, shape, real: bool) -> dict:
    c, h, w = shape
    W = fc.weight.detach().numpy().astype(np.float32)  # [K, C*H*W] in CHW order
    # spike lists index a map in HWC order: column j (HWC) is feature c*H*W + y*W + x
    hwc_to_chw = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
    return {"kind": LINEAR_REAL if real else LINEAR_SPIKES, "cin": c * h * w, "hin": 1, "win": 1,
            "cout": fc.out_features, "hout": 1, "wout": 1, "k": 1, "stride": 1, "pad": 0, "lif": 0,
            "matrix": np.ascontiguousarray(W[:, hwc_to_chw].T),
            "bias": fc.bias.detach().numpy() if fc.bias is not None else np.zeros(fc.out_features, np.float32)}


def _global_pool(m: nn.Module, shape) -> dict | None:
    """The record of a pooling over the whole map (AdaptiveAvgPool2d to 1x1), else None."""
    c, h, w = shape
    if isinstance(m, nn.AdaptiveAvgPool2d) and pair(m.output_size) == (1, 1):
        return {"kind": GLOBAL_AVGPOOL, "cin": c, "hin": h, "win": w, "cout": c, "hout": 1, "wout": 1, "k": 1,
                "stride": 1, "pad": 0, "lif": 0}
    return None


class _Walk:
    """The values of a dry run's tensors, layer by layer: id -> (what, record index, (C, H, W)); what is image,
    current (a conv/linear output before its LIF), spikes or real."""

    def __init__(self, graph, input_shape, image):
        self.val = {graph.source: ("image", None, tuple(input_shape))}
        self.layers, self.problems, self.image = [], [], image

    def fail(self, c, reason):
        what = type(c.module).__name__ if c.module is not None else f"tensor op {c.name}"
        self.problems.append({"layer": c.name if c.module is not None else f"after {self._last()}", "type": what,
                              "reason": reason})

    def _last(self):
        return self.layers[-1]["name"] if self.layers else "the input"

    def emit(self, c, rec, what, shape) -> None:
        rec["name"] = c.name
        self.layers.append(rec)
        for o in c.outputs:
            self.val[o] = (what, len(self.layers) - 1, tuple(shape))

    def step(self, c) -> None:
        known = [self.val[t] for t in c.inputs if t in self.val]
        if not known:
            return
        v = known[0]
        m = c.module
        if m is None:
            if c.name in VIEW_OPS:
                self.val.update({o: v for o in c.outputs})
            elif c.name in ADD_OPS and len(known) == 2:
                self.add(c, *known)
            else:
                self.fail(c, "no event kernel for it (arithmetic between layers other than a residual addition "
                             "before a LIF)")
        elif isinstance(m, TRANSPARENT) and not any(True for _ in m.children()):
            self.val.update({o: v for o in c.outputs})
        elif isinstance(m, nn.Conv2d):
            image = v[0] == "image"
            if not (image and not self.layers and c.name in self.image) and v[0] != "spikes":
                return self.fail(c, "a conv reads the image (the first layer) or spikes")
            rec, shape = _conv_layer(CONV_IMAGE if image else CONV_SPIKES, m, v[2])
            rec["src"] = v[1]
            self.check_shape(c, shape)
            self.emit(c, rec, "current", shape)
        elif isinstance(m, PlainNeuron):
            if v[0] != "current" or self.layers[v[1]]["lif"] or any(r.get("join") == v[1] for r in self.layers):
                return self.fail(c, "a neuron reads a conv or linear layer's output (plus a residual)")
            self.layers[v[1]]["lif"], self.layers[v[1]]["neuron"] = 1, c.name
            self.val.update({o: ("spikes", v[1], v[2]) for o in c.outputs})
        elif isinstance(m, nn.MaxPool2d):
            if v[0] != "spikes":
                return self.fail(c, "max-pooling reads spikes")
            rec, shape = _pool_layer(m, v[2])
            rec["src"] = v[1]
            self.check_shape(c, shape)
            self.emit(c, rec, "spikes", shape)
        elif _global_pool(m, v[2]) is not None and v[0] == "spikes":
            rec = dict(_global_pool(m, v[2]), src=v[1])
            self.emit(c, rec, "real", (v[2][0], 1, 1))
        elif isinstance(m, nn.Linear) and v[0] in ("spikes", "real") and c.in_shape[-1] == int(np.prod(v[2])):
            rec = dict(_linear_layer(m, v[2], real=v[0] == "real"), src=v[1])
            self.emit(c, rec, "current", (m.out_features, 1, 1))
        else:
            self.fail(c, "no event kernel for it here (conv + LIF, max-pool, global average pool, linear, "
                         "residual additions before a LIF)")

    def add(self, c, a, b) -> None:
        """A residual addition before a LIF: currents + currents (a shortcut conv: the earlier record is joined
        into the later one) or currents + spikes (an identity shortcut)."""
        if a[0] != "current":
            a, b = b, a
        if a[0] != "current" or b[0] not in ("current", "spikes") or a[2] != b[2]:
            return self.fail(c, "an addition of a layer's spikes after its LIF (SEW ResNet) or of other values: "
                                "the event kernels add a residual to a layer's currents before its LIF")
        main, joined = (max(a[1], b[1]), min(a[1], b[1])) if b[0] == "current" else (a[1], b[1])
        if self.layers[main].get("join") is not None or (b[0] == "current" and self.layers[joined]["lif"]):
            return self.fail(c, "more than one residual into one layer")
        self.layers[main]["join"] = joined
        self.val.update({o: ("current", main, a[2]) for o in c.outputs})

    def check_shape(self, c, shape) -> None:
        if tuple(shape) != tuple(c.out_shape[-3:]):  # the kernels' shape arithmetic must be the layer's
            self.fail(c, f"output {list(c.out_shape[-3:])}, the kernels would compute {list(shape)}")


def program(net: nn.Module, input_shape: tuple[int, int, int]) -> list[dict]:
    """The layer records of a deploy net (BN folded, PlainNeuron neurons), or Unsupported naming its layers."""
    graph = probe(net, tuple(input_shape))
    steps = [c for c in graph.leaves() if not isinstance(c.module, TRANSPARENT)]
    if any(isinstance(c.module, nn.modules.batchnorm._BatchNorm) for c in steps):
        raise Unsupported("BatchNorm must be folded first")
    walk = _Walk(graph, input_shape, image_fed(graph))
    walk.problems += _neuron_problems(steps)
    for c in graph.calls:
        if walk.problems:
            break
        try:
            walk.step(c)
        except Unsupported as e:
            walk.fail(c, str(e))
    layers = walk.layers
    if not walk.problems:
        _check_program(net, steps, layers, walk)
    if walk.problems:
        p = walk.problems[0]
        more = f" (and {len(walk.problems) - 1} more)" if len(walk.problems) > 1 else ""
        raise Unsupported(f"{p['layer']} ({p['type']}): {p['reason']}{more}", walk.problems)
    return layers


def _check_program(net, steps, layers, walk) -> None:
    """The whole network is the program: the last record is the classifier, every other layer without LIF is a
    shortcut joined into a later one, and the kernels' order of LIF and synaptic layers is the bundle's."""
    joined = {r.get("join") for r in layers}
    last = layers[-1] if layers else None
    if last is None or last["kind"] not in (LINEAR_SPIKES, LINEAR_REAL) or last["lif"] \
            or last["name"] != steps[-1].name:
        walk.problems.append({"layer": steps[-1].name if steps else "the network", "type": "output",
                              "reason": "the network must end with a linear classifier (no LIF) on spikes or pooled "
                                        "values"})
        return
    for i, r in enumerate(layers[:-1]):
        if r["kind"] in (CONV_SPIKES, LINEAR_SPIKES, LINEAR_REAL) and not r["lif"] and i not in joined:
            walk.problems.append({"layer": r["name"], "type": "output", "reason": "its currents reach no neuron"})
    neurons = [c.name for c in steps if isinstance(c.module, PlainNeuron)]
    if [r["neuron"] for r in layers if r["lif"]] != neurons:
        walk.problems.append({"layer": "the network", "type": "order", "reason": "its neurons fire in another "
                              "order than their layers run: the kernels keep one order"})
    syn = [r["name"] for r in layers if r["kind"] in (CONV_SPIKES, LINEAR_SPIKES, LINEAR_REAL)]
    if syn != synaptic_layers(net):
        walk.problems.append({"layer": "the network", "type": "order", "reason": "its synaptic layers run in "
                              "another order than they are defined: the kernels keep one order"})
