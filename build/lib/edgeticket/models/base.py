"""Shared pieces of the spiking networks: direct-encoding stem, multi-step conv block, prunable layers.

Tensors between blocks are [T, B, C, H, W] spike trains. Stateless layers (conv, BN, pooling, linear) run
once on the time-folded [T*B, ...] tensor; LIF runs over T. Direct encoding: the stem conv+BN sees the
static image once and its output is fed to the first LIF at every timestep.
"""

from __future__ import annotations

import torch
from torch import nn

from ..snn import make_lif, reset_states


def seq_apply(module: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    """Run a stateless module on [T, B, ...] by folding T into the batch."""
    T, B = x_seq.shape[:2]
    y = module(x_seq.flatten(0, 1))
    return y.view(T, B, *y.shape[1:])


class ConvBNLIF(nn.Module):
    """conv3x3 -> BN -> LIF on a [T, B, C, H, W] spike train."""

    def __init__(self, cin: int, cout: int, tau: float, v_threshold: float, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.lif = make_lif(tau, v_threshold)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        T, B = x_seq.shape[:2]
        y = self.bn(self.conv(x_seq.flatten(0, 1)))
        return self.lif(y.view(T, B, *y.shape[1:]))


class Stem(nn.Module):
    """Direct encoding: conv3x3 + BN on the static image once, repeated over T, then LIF."""

    def __init__(self, cin: int, cout: int, tau: float, v_threshold: float):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.lif = make_lif(tau, v_threshold)

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return self.lif(y.unsqueeze(0).expand(timesteps, *y.shape))


class SpikingNet(nn.Module):
    """Base class: forward(x [B, C, H, W]) -> logits per timestep [T, B, classes].

    `timesteps` is a plain attribute so the Early-Time policy can change it between epochs.
    """

    def __init__(self, timesteps: int):
        super().__init__()
        self.timesteps = int(timesteps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reset_states(self)  # every call is a fresh T-step simulation
        return self.forward_seq(x)

    def forward_seq(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def prunable(self) -> list[str]:
        """state_dict names of the prunable weights (conv and linear), in forward order."""
        return [f"{n}.weight" for n, m in self.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    def lif_modules(self) -> list[tuple[str, nn.Module]]:
        from spikingjelly.activation_based import neuron

        return [(n, m) for n, m in self.named_modules() if isinstance(m, neuron.BaseNode)]
