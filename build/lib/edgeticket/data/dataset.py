"""In-memory dataset: normalised float tensors, fixed subsets, reproducible epoch batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import torch

from ..errors import EdgeTicketError
from .augment import augment_batch


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor  # [N, C, H, W] float32, normalised
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    mean: list[float]
    std: list[float]
    crop: bool
    flip: bool

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[2])

    def describe(self) -> dict:
        return {"name": self.name, "train": len(self.y_train), "test": len(self.y_test),
                "num_classes": self.num_classes, "input_shape": list(self.x_train.shape[1:]),
                "mean": self.mean, "std": self.std, "augment": {"crop": self.crop, "flip": self.flip}}


def _subset(x: np.ndarray, y: np.ndarray, n: Optional[int], what: str) -> tuple[np.ndarray, np.ndarray]:
    """A fixed subset (seed 0, independent of the training seed), so different seeds see the same data."""
    if n is None or n >= len(y):
        return x, y
    if n < 1:
        raise EdgeTicketError(f"--{what}-subset must be >= 1")
    idx = np.sort(np.random.RandomState(0).permutation(len(y))[:n])
    return x[idx], y[idx]


def load(data_hp) -> Dataset:
    from . import get

    raw = get(data_hp.dataset)(data_hp.data_dir)
    xtr, ytr = _subset(raw.x_train, raw.y_train, data_hp.train_subset, "train")
    xte, yte = _subset(raw.x_test, raw.y_test, data_hp.test_subset, "test")
    # per-channel statistics of the full training set (the usual normalisation constants)
    mean = raw.x_train.mean(axis=(0, 2, 3)).astype(np.float32)
    std = (raw.x_train.std(axis=(0, 2, 3)) + 1e-8).astype(np.float32)
    norm = lambda a: torch.from_numpy(((a - mean[None, :, None, None]) / std[None, :, None, None]).astype(np.float32))
    aug = data_hp.augment
    if aug == "auto":
        crop, flip = raw.cifar_like, raw.cifar_like and raw.flip
    else:
        crop, flip = aug in ("crop", "crop-flip"), aug == "crop-flip"
    return Dataset(data_hp.dataset, norm(xtr), torch.from_numpy(ytr), norm(xte), torch.from_numpy(yte),
                   raw.num_classes, mean.tolist(), std.tolist(), crop, flip)


def epoch_generator(seed: int, *keys: int) -> torch.Generator:
    """A generator that depends only on (seed, keys): an epoch's order and augmentation are the same
    whether the run was interrupted or not."""
    g = torch.Generator()
    h = seed
    for k in keys:
        h = (h * 1_000_003 + int(k) + 1) % (2**62)
    g.manual_seed(h)
    return g


def batches(ds: Dataset, batch_size: int, generator: Optional[torch.Generator] = None, train: bool = True,
            rank: int = 0, world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled, augmented training batches (train=True) or ordered test batches. Under DDP each rank
    takes its share of every global batch."""
    x, y = (ds.x_train, ds.y_train) if train else (ds.x_test, ds.y_test)
    n = len(y)
    order = torch.randperm(n, generator=generator) if train else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if world > 1:
            idx = idx[rank::world]
            if len(idx) == 0:
                continue
        xb = x[idx]
        if train and (ds.crop or ds.flip):
            xb = augment_batch(xb, generator, ds.crop, ds.flip)
        yield xb, y[idx]
