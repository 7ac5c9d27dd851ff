"""Fold BatchNorm into the Conv2d/Linear before it (inference form), in place, keeping the mask: folded weights of
pruned positions stay exactly zero (0 * scale = 0). The pairs come from the network's dataflow
(graph_probe.bn_pairs), not from layer names, so the zoo and a user's network fold alike; the layer keeps its
class (a spikingjelly layer.Conv2d stays one, with its step mode) and the BatchNorm becomes an Identity."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def fold_into(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> None:
    """layer.weight *= scale per output channel; layer.bias = (bias - mean) * scale + beta."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    b = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
    bias = (b - bn.running_mean) * scale + bn.bias
    weight = layer.weight * scale.view(-1, *([1] * (layer.weight.dim() - 1)))
    layer.weight = nn.Parameter(weight.contiguous(), requires_grad=False)
    layer.bias = nn.Parameter(bias, requires_grad=False)


def fold_batchnorm(model: nn.Module, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """In place: each (layer, bn) pair becomes (folded layer, Identity). Returns the pairs."""
    for layer_path, bn_path in pairs:
        fold_into(model.get_submodule(layer_path), model.get_submodule(bn_path))
        model.set_submodule(bn_path, nn.Identity())
    return pairs
