"""Deploy network -> the event backend's layer program (formats/etsp.py writes it as an .etsp file).

The program is read off the network's dataflow (graph_probe), so the zoo and a user's network are treated alike.
The kernels run a chain of: a conv reading the image + LIF, convs reading spikes + LIF, max-pooling, and a final
linear layer on the flattened spikes; every neuron one hard-reset (to 0) LIF with decay_input and the same tau and
threshold. Anything else (residual additions, other neurons, average pooling, hidden linear layers) is refused
with the layers it concerns (`Unsupported.layers`), which the manifest records; the dense backends stay.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from ..formats.etsp import CONV_IMAGE, CONV_SPIKES, LINEAR_SPIKES, MAXPOOL
from .deploy import PlainNeuron
from .graph_probe import image_fed, probe
from .supported import pair

# tensor operations between layers that move no values (the event lists do not change)
VIEW_OPS = {"view", "reshape", "flatten", "unflatten", "unsqueeze", "squeeze", "expand", "repeat", "contiguous",
            "size", "dim"}  # expand/repeat: the image or a map repeated over T (not a slice: no __getitem__)
TRANSPARENT = (nn.Identity, nn.Flatten, nn.Dropout, nn.Dropout2d)


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
             "stride": s, "pad": p, "lif": 1, "matrix": _conv_matrix(conv), "bias": bias},
            (conv.out_channels, ho, wo))


def _lif_problem(spec, first) -> str | None:
    if spec.kind != "lif" or spec.v_reset != 0.0 or not spec.decay_input:
        return "the event kernels run hard-reset (to 0) LIF neurons with decay_input only"
    if (spec.tau, spec.v_threshold) != (first.tau, first.v_threshold):
        return f"tau/v_threshold differ from the first neuron's ({first.tau}, {first.v_threshold}): one per network"
    return None


def _problems(graph, steps) -> list[dict]:
    out = []
    for i, c in enumerate(graph.calls):
        if c.module is None and c.name not in VIEW_OPS:
            before = next((p.name for p in reversed(graph.calls[:i]) if p.module is not None), "the input")
            out.append({"layer": f"after {before}", "type": f"tensor op {c.name}",
                        "reason": "no event kernel (residual additions and other arithmetic between layers)"})
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


def _linear_layer(fc: nn.Linear, shape) -> dict:
    c, h, w = shape
    W = fc.weight.detach().numpy().astype(np.float32)  # [K, C*H*W] in CHW order
    # the event lists are HWC indices: column j (HWC) is feature c*H*W + y*W + x
    hwc_to_chw = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
    return {"kind": LINEAR_SPIKES, "cin": c * h * w, "hin": 1, "win": 1, "cout": fc.out_features, "hout": 1,
            "wout": 1, "k": 1, "stride": 1, "pad": 0, "lif": 0, "matrix": np.ascontiguousarray(W[:, hwc_to_chw].T),
            "bias": fc.bias.detach().numpy() if fc.bias is not None else np.zeros(fc.out_features, np.float32)}


def program(net: nn.Module, input_shape: tuple[int, int, int]) -> list[dict]:
    """The layer records of a deploy net (BN folded, PlainNeuron neurons), or Unsupported naming its layers."""
    graph = probe(net, tuple(input_shape))
    steps = [c for c in graph.leaves() if not isinstance(c.module, TRANSPARENT)]
    if any(isinstance(c.module, nn.modules.batchnorm._BatchNorm) for c in steps):
        raise Unsupported("BatchNorm must be folded first")
    problems = _problems(graph, steps)
    image = image_fed(graph)
    layers, shape, i = [], tuple(input_shape), 0
    while i < len(steps) and not problems:
        c, nxt = steps[i], steps[i + 1] if i + 1 < len(steps) else None
        fires = nxt is not None and isinstance(nxt.module, PlainNeuron)
        try:
            if isinstance(c.module, nn.Conv2d) and fires and (c.name in image) == (not layers):
                rec, shape = _conv_layer(CONV_IMAGE if c.name in image else CONV_SPIKES, c.module, shape)
                i += 2
            elif isinstance(c.module, nn.MaxPool2d) and layers:
                rec, shape = _pool_layer(c.module, shape)
                i += 1
            else:
                rec = None
        except Unsupported as e:
            problems.append({"layer": c.name, "type": type(c.module).__name__, "reason": str(e)})
            break
        if rec is not None:
            if tuple(shape) != tuple(c.out_shape[-3:]):  # the kernels' shape arithmetic must be the layer's
                problems.append({"layer": c.name, "type": type(c.module).__name__,
                                 "reason": f"output {list(c.out_shape[-3:])}, the kernels would compute {list(shape)}"})
                break
        elif isinstance(c.module, nn.Linear) and nxt is None and layers and c.in_shape[-1] == int(np.prod(shape)):
            rec = _linear_layer(c.module, shape)
            i += 1
        else:
            where = "the first layer" if not layers else "after the first"
            problems.append({"layer": c.name, "type": type(c.module).__name__,
                             "reason": f"no event kernel for it here ({where}: conv + LIF, max-pool, a final linear)"})
            break
        layers.append(rec)
    if problems:
        p = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise Unsupported(f"{p['layer']} ({p['type']}): {p['reason']}{more}", problems)
    return layers
