"""Dataset registry: CLI name -> loader(data_dir) -> Dataset (in-memory tensors).

Every loader reads the dataset's standard files itself (no torchvision, no downloads) and raises a
one-line EdgeTicketError naming the expected files when they are missing or malformed.
"""

from __future__ import annotations

from ..errors import EdgeTicketError
from .augment import augment_batch
from .dataset import Dataset, batches, load
from .loaders import REGISTRY

__all__ = ["Dataset", "REGISTRY", "augment_batch", "batches", "get", "load"]


def get(name: str):
    if name not in REGISTRY:
        raise EdgeTicketError(f"unknown dataset '{name}'; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]
