"""What compile exports (issue 14, item 2): the layers and neurons a network may hold, checked over its modules
before any work, so anything else is one line naming the module's path and type (docs/models.md).

Leaves (modules without children) must be one of:
    Conv2d (zeros padding, dilation 1; spikingjelly's layer.Conv2d is one), Linear, BatchNorm1d/2d (folded),
    MaxPool2d (no indices, dilation 1), AvgPool2d (no divisor_override), AdaptiveAvgPool2d, Flatten,
    Dropout / Dropout2d (identity in eval), Identity (and an empty Sequential), and the neurons of the table
    (snn/neurons.py).
Modules with children (Sequential, the user's blocks) are walked, their own forward is what the export traces.
"""

from __future__ import annotations

from spikingjelly.activation_based import layer as sj_layer
from torch import nn

from ..errors import EdgeTicketError
from ..snn.neurons import spec_of

SUPPORTED = "Conv2d, Linear, BatchNorm1d/2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Dropout, Identity, " \
            "LIFNode, ParametricLIFNode, IFNode"


def pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def leaf_problem(m: nn.Module) -> str | None:
    """Why the leaf module `m` cannot be exported, or None."""
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros":
            return f"padding_mode '{m.padding_mode}' (only zeros)"
        if pair(m.dilation) != (1, 1):
            return f"dilation {m.dilation} (only 1)"
        if isinstance(m.padding, str) and m.padding != "valid":
            return f"padding '{m.padding}' (give the padding as numbers)"
        return None
    if isinstance(m, nn.MaxPool2d):
        if m.return_indices:
            return "return_indices=True"
        if pair(m.dilation) != (1, 1):
            return f"dilation {m.dilation} (only 1)"
        return None
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if not m.affine:
            return "affine=False (fold needs its weight and bias: use affine=True)"
        if not m.track_running_stats:
            return "track_running_stats=False (eval uses batch statistics, which cannot be folded)"
        return None
    if isinstance(m, nn.AvgPool2d):
        return None if m.divisor_override is None else f"divisor_override={m.divisor_override}"
    if isinstance(m, (nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout,
                      nn.Dropout2d, sj_layer.Dropout, nn.Identity, nn.Sequential, nn.ModuleList, nn.ModuleDict)):
        return None  # (an empty container is the identity: a ResNet's plain shortcut)
    return "not a layer compile exports"


def check_supported(net: nn.Module) -> None:
    """One line naming the first module (by path, in definition order) compile cannot export."""
    from .graph_probe import is_neuron, leaf_modules

    for path, m in leaf_modules(net):
        if is_neuron(m):
            spec_of(m, path)  # a neuron outside the table is one line naming it
            continue
        why = leaf_problem(m)
        if why is not None:
            t = type(m)
            raise EdgeTicketError(f"{path or 'the network'}: {t.__module__}.{t.__name__} cannot be exported ({why}); "
                                  f"compile supports {SUPPORTED}")
