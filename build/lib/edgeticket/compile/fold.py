"""Fold BatchNorm into the preceding convolution (inference form), keeping the mask: folded weights of pruned
positions stay exactly zero (0 * scale = 0)."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=True)
    out.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    b = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    out.bias.copy_((b - bn.running_mean) * scale + bn.bias)
    return out.to(memory_format=torch.contiguous_format)


def fold_batchnorm(model: nn.Module) -> list[tuple[str, str]]:
    """In place: every (conv, bn) pair known to the model zoo becomes (folded conv, Identity).
    Pairs are attributes (conv, bn), (conv2, bn2) or consecutive entries of an nn.Sequential.
    Returns the folded pairs (by module name)."""
    folded = []
    for name, mod in list(model.named_modules()):
        prefix = f"{name}." if name else ""
        for c, b in (("conv", "bn"), ("conv2", "bn2")):
            conv, bn = getattr(mod, c, None), getattr(mod, b, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(mod, c, fold_conv_bn(conv, bn))
                setattr(mod, b, nn.Identity())
                folded.append((prefix + c, prefix + b))
        if isinstance(mod, nn.Sequential):
            for i in range(len(mod) - 1):
                if isinstance(mod[i], nn.Conv2d) and isinstance(mod[i + 1], nn.BatchNorm2d):
                    mod[i] = fold_conv_bn(mod[i], mod[i + 1])
                    mod[i + 1] = nn.Identity()
                    folded.append((f"{prefix}{i}", f"{prefix}{i + 1}"))
    remaining = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if remaining:
        raise ValueError(f"BatchNorm layers without a preceding conv to fold into: {remaining}")
    return folded
