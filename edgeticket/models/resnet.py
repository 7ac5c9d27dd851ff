"""Spiking ResNets with direct encoding.

resnet19 is the paper's as the authors' code builds it (Kim et al. 2022, archs/cifarsvhn/resnet.py): conv3x3-64
stem (stride 1); 3 basic blocks of 128 (stride 2), 3 of 256 (stride 2), 2 of 512 (stride 2), so 16x16, 8x8, 4x4 maps
on a 32x32 input; global average pooling; fc 256 + LIF; fc classes; PyTorch's default initialisation (the authors'
kaiming loop is commented out). About 0.56 GMAC per timestep on 3x32x32.
resnet19-tdbn is the ResNet19 of tdBN (Zheng et al. 2021) that the paper cites: conv3x3-128 stem; 3 blocks of 128
(stride 1), 3 of 256 (stride 2), 2 of 512 (stride 2); kaiming fan_out init (about 2.29 GMAC per timestep).
resnet8 is a small one for CPU: 16-channel stem, one block each of 16/32/64.
A basic block: LIF(BN(conv(LIF(BN(conv(x))))) + shortcut(x)), shortcut = identity or conv1x1+BN.
"""

from __future__ import annotations

import torch
from torch import nn

from ..snn import make_lif
from .base import ConvBNLIF, SpikingNet, Stem, seq_apply


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, tau: float, v_threshold: float):
        super().__init__()
        self.conv1 = ConvBNLIF(cin, cout, tau, v_threshold, stride=stride)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.lif = make_lif(tau, v_threshold)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        T, B = x_seq.shape[:2]
        flat = x_seq.flatten(0, 1)
        y = self.bn2(self.conv2(self.conv1(x_seq).flatten(0, 1)))
        y = y + self.shortcut(flat)
        return self.lif(y.view(T, B, *y.shape[1:]))


class SpikingResNet(SpikingNet):
    def __init__(self, stem: int, stages: list[tuple[int, int, int]], hidden_fc: int | None, num_classes: int,
                 in_channels: int, image_size: int, timesteps: int, tau: float, v_threshold: float,
                 init: str = "kaiming"):
        """init: "kaiming" (kaiming_normal fan_out on every conv) or "default" (PyTorch's own init, the authors')."""
        if init not in ("kaiming", "default"):
            raise ValueError(f"init must be 'kaiming' or 'default', got {init!r}")
        super().__init__(timesteps)
        self.stem = Stem(in_channels, stem, tau, v_threshold)
        blocks: list[nn.Module] = []
        c, size = stem, image_size
        for width, n, stride in stages:
            for i in range(n):
                s = stride if (i == 0 and size >= 2) else 1
                blocks.append(BasicBlock(c, width, s, tau, v_threshold))
                c, size = width, (size + s - 1) // s
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        if hidden_fc:
            self.fc1 = nn.Linear(c, hidden_fc)
            self.fc1_lif = make_lif(tau, v_threshold)
            c = hidden_fc
        else:
            self.fc1 = None
        self.classifier = nn.Linear(c, num_classes)
        if init == "kaiming":
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_seq(self, x: torch.Tensor) -> torch.Tensor:
        s = self.layers(self.stem(x, self.timesteps))
        f = seq_apply(self.pool, s).flatten(2)
        if self.fc1 is not None:
            f = self.fc1_lif(seq_apply(self.fc1, f))
        return seq_apply(self.classifier, f)


def resnet19(num_classes: int, in_channels: int, image_size: int, timesteps: int = 5, tau: float = 4 / 3,
             v_threshold: float = 1.0) -> SpikingResNet:
    """ResNet19 of the paper as the authors build it: 64 stem, (128 x3, /2), (256 x3, /2), (512 x2, /2), fc 256,
    fc classes; PyTorch default init."""
    return SpikingResNet(64, [(128, 3, 2), (256, 3, 2), (512, 2, 2)], 256, num_classes, in_channels, image_size,
                         timesteps, tau, v_threshold, init="default")


def resnet19_tdbn(num_classes: int, in_channels: int, image_size: int, timesteps: int = 5, tau: float = 4 / 3,
                  v_threshold: float = 1.0) -> SpikingResNet:
    """ResNet19 of tdBN (Zheng et al. 2021): 128 stem, (128 x3), (256 x3, /2), (512 x2, /2), fc 256, fc classes;
    kaiming fan_out init."""
    return SpikingResNet(128, [(128, 3, 1), (256, 3, 2), (512, 2, 2)], 256, num_classes, in_channels, image_size,
                         timesteps, tau, v_threshold, init="kaiming")


def resnet8(num_classes: int, in_channels: int, image_size: int, timesteps: int = 5, tau: float = 4 / 3,
            v_threshold: float = 1.0) -> SpikingResNet:
    """Small spiking ResNet for CPU: 16 stem, (16), (32, /2), (64, /2), fc classes."""
    return SpikingResNet(16, [(16, 1, 1), (32, 1, 2), (64, 1, 2)], None, num_classes, in_channels, image_size,
                         timesteps, tau, v_threshold)
