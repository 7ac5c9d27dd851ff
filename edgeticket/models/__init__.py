"""Model registry: CLI name -> builder(num_classes, in_channels, image_size, model_hparams)."""

from __future__ import annotations

from ..errors import EdgeTicketError
from .base import SpikingNet
from .resnet import resnet8, resnet19, resnet19_tdbn
from .vgg import tiny, vgg5, vgg9, vgg11, vgg16

REGISTRY = {
    "tiny": tiny,
    "vgg5": vgg5,
    "vgg9": vgg9,
    "vgg11": vgg11,
    "vgg16": vgg16,
    "resnet8": resnet8,
    "resnet19": resnet19,
    "resnet19-tdbn": resnet19_tdbn,
}


def get(name: str):
    """The builder of a zoo network, or of a user's own (`package.module:factory`, models/imported.py)."""
    from . import imported

    if imported.is_spec(name):
        imported.resolve(name)  # found now, before anything is written
        return imported.builder(name)
    if name not in REGISTRY:
        raise EdgeTicketError(f"unknown architecture '{name}'; valid: {', '.join(REGISTRY)}, or your own network as "
                              "package.module:factory (docs/models.md)")
    return REGISTRY[name]


def build(model_hp, num_classes: int, in_channels: int, image_size: int) -> SpikingNet:
    return get(model_hp.arch)(num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                              timesteps=model_hp.timesteps, tau=model_hp.tau, v_threshold=model_hp.v_threshold)


__all__ = ["REGISTRY", "SpikingNet", "build", "get"]
