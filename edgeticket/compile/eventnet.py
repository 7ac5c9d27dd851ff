"""Deploy network -> the event backend's layer program (formats/etsp.py writes it as an .etsp file).

Supported: the sequential spiking nets (tiny, vgg*): stem conv on the image + LIF, conv + LIF on spikes,
2x2 max-pooling, the classifier on the flattened spikes. ResNets (residual additions of spike trains) are
not: compile says so and keeps the dense backends for them.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from ..formats.etsp import CONV_IMAGE, CONV_SPIKES, LINEAR_SPIKES, MAXPOOL
from .deploy import PlainNeuron


class Unsupported(Exception):
    pass


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


def program(net: nn.Module, input_shape: tuple[int, int, int]) -> list[dict]:
    """The layer records of a deploy net (BN folded, PlainNeuron neurons)."""
    from ..models.vgg import SpikingVGG
    from ..models.base import ConvBNLIF

    if not isinstance(net, SpikingVGG):
        raise Unsupported(f"the event backend runs the sequential nets (tiny, vgg*), not {type(net).__name__}")
    if not isinstance(net.stem.lif, PlainNeuron):
        raise Unsupported("expected a deploy net (to_deploy)")
    layers = []
    rec, shape = _conv_layer(CONV_IMAGE, net.stem.conv, tuple(input_shape))
    layers.append(rec)
    for m in net.features:
        if isinstance(m, ConvBNLIF):
            if not isinstance(m.bn, nn.Identity):
                raise Unsupported("BatchNorm must be folded first")
            rec, shape = _conv_layer(CONV_SPIKES, m.conv, shape)
            layers.append(rec)
        elif isinstance(m, nn.MaxPool2d):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            s = m.stride if isinstance(m.stride, int) else m.stride[0]
            if m.padding not in (0, (0, 0)) or m.ceil_mode:
                raise Unsupported("max-pooling without padding, floor mode only")
            c, h, w = shape
            ho, wo = (h - k) // s + 1, (w - k) // s + 1
            layers.append({"kind": MAXPOOL, "cin": c, "hin": h, "win": w, "cout": c, "hout": ho, "wout": wo, "k": k,
                           "stride": s, "pad": 0, "lif": 0})
            shape = (c, ho, wo)
        else:
            raise Unsupported(f"layer {type(m).__name__} has no event kernel")
    fc = net.classifier
    c, h, w = shape
    W = fc.weight.detach().numpy().astype(np.float32)  # [K, C*H*W] in CHW order
    # the event lists are HWC indices: column j (HWC) is feature c*H*W + y*W + x
    hwc_to_chw = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
    layers.append({"kind": LINEAR_SPIKES, "cin": c * h * w, "hin": 1, "win": 1, "cout": fc.out_features, "hout": 1,
                   "wout": 1, "k": 1, "stride": 1, "pad": 0, "lif": 0,
                   "matrix": np.ascontiguousarray(W[:, hwc_to_chw].T),
                   "bias": fc.bias.detach().numpy() if fc.bias is not None else np.zeros(fc.out_features, np.float32)})
    return layers
