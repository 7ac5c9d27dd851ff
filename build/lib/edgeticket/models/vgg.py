"""Spiking VGGs (VGG-BN layout) with direct encoding.

Pooling is MaxPool: the max of spikes is a spike, so every layer after the stem sees binary input (what
event-driven execution needs). A pooling step that would shrink the map below 1x1 is dropped, so the same
architecture runs on 8x8 digits, 28x28 MNIST, 32x32 CIFAR and 64x64 Tiny-ImageNet; the classifier takes
the flattened last map (512 features for VGG16 on 32x32, as in the paper).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import ConvBNLIF, SpikingNet, Stem, seq_apply

CONFIGS = {
    "tiny": [8, "M", 16, "M"],
    "vgg5": [32, "M", 64, 64, "M", 128, "M"],
    "vgg9": [32, 32, "M", 64, 64, "M", 128, 128, "M", 256, 256, "M"],
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class SpikingVGG(SpikingNet):
    def __init__(self, cfg: list, num_classes: int, in_channels: int, image_size: int, timesteps: int,
                 tau: float, v_threshold: float):
        super().__init__(timesteps)
        first = cfg[0]
        self.stem = Stem(in_channels, first, tau, v_threshold)
        layers: list[nn.Module] = []
        c, size = first, image_size
        for item in cfg[1:]:
            if item == "M":
                if size >= 2:
                    layers.append(nn.MaxPool2d(2))
                    size //= 2
            else:
                layers.append(ConvBNLIF(c, item, tau, v_threshold))
                c = item
        self.features = nn.Sequential(*layers)
        self.feature_shape = (c, size, size)
        self.classifier = nn.Linear(c * size * size, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_seq(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x, self.timesteps)
        for layer in self.features:
            s = layer(s) if isinstance(layer, ConvBNLIF) else seq_apply(layer, s)
        return seq_apply(self.classifier, s.flatten(2))


def _builder(name: str):
    def build(num_classes: int, in_channels: int, image_size: int, timesteps: int = 5, tau: float = 4 / 3,
              v_threshold: float = 1.0) -> SpikingVGG:
        return SpikingVGG(CONFIGS[name], num_classes, in_channels, image_size, timesteps, tau, v_threshold)

    build.__name__ = name
    build.__doc__ = f"Spiking {name}: {CONFIGS[name]} + Linear."
    return build


tiny = _builder("tiny")
vgg5 = _builder("vgg5")
vgg9 = _builder("vgg9")
vgg11 = _builder("vgg11")
vgg16 = _builder("vgg16")
