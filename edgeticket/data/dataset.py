"""In-memory dataset: normalised float tensors, fixed subsets, reproducible epoch batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import torch

from ..errors import EdgeTicketError
from .augment import augment_batch

# --normalize authors: the per-channel MEAN/STD of the paper's code (utils.py data_transforms), by dataset.
AUTHORS_NORMALIZATION = {
    "cifar10": ([0.4913, 0.4821, 0.4465], [0.2023, 0.1994, 0.2010]),
    "cifar100": ([0.5071, 0.4867, 0.4408], [0.2673, 0.2564, 0.2762]),
    "svhn": ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
    "fashion-mnist": ([0.5], [0.5]),
    "tiny-imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
}


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
    cutout: int = 0  # side of the Cutout hole in pixels (0: off)
    resize: int = 0  # the images were resized to resize x resize at load (0: not resized)

    @property
    def black(self) -> torch.Tensor:
        """A black pixel (value 0 before normalisation) per channel, normalised: what Cutout fills its hole with."""
        return torch.tensor([-m / s for m, s in zip(self.mean, self.std)], dtype=torch.float32)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[2])

    def describe(self) -> dict:
        return {"name": self.name, "train": len(self.y_train), "test": len(self.y_test),
                "num_classes": self.num_classes, "input_shape": list(self.x_train.shape[1:]),
                "mean": self.mean, "std": self.std, "augment": {"crop": self.crop, "flip": self.flip,
                                                                **({"cutout": self.cutout} if self.cutout else {})},
                **({"resize": self.resize} if self.resize else {})}


def _subset(x: np.ndarray, y: np.ndarray, n: Optional[int], what: str) -> tuple[np.ndarray, np.ndarray]:
    """A fixed subset (seed 0, independent of the training seed), so different seeds see the same data."""
    if n is None or n >= len(y):
        return x, y
    if n < 1:
        raise EdgeTicketError(f"--{what}-subset must be >= 1")
    idx = np.sort(np.random.RandomState(0).permutation(len(y))[:n])
    return x[idx], y[idx]


def load(data_hp) -> Dataset:
    from . import raw as load_raw

    raw = load_raw(data_hp.dataset, data_hp.data_dir)
    size = data_hp.resize
    x_train, x_test = (resize(raw.x_train, size), resize(raw.x_test, size)) if size else (raw.x_train, raw.x_test)
    xtr, ytr = _subset(x_train, raw.y_train, data_hp.train_subset, "train")
    xte, yte = _subset(x_test, raw.y_test, data_hp.test_subset, "test")
    if data_hp.normalize == "authors":
        if data_hp.dataset not in AUTHORS_NORMALIZATION:
            raise EdgeTicketError(f"--normalize authors has no constants for dataset '{data_hp.dataset}' (the authors' "
                                  f"code has {', '.join(AUTHORS_NORMALIZATION)}); use --normalize dataset")
        mean, std = (np.array(v, np.float32) for v in AUTHORS_NORMALIZATION[data_hp.dataset])
        if len(mean) != x_train.shape[1]:
            raise EdgeTicketError(f"--normalize authors: dataset '{data_hp.dataset}' has {x_train.shape[1]} channel(s) "
                                  f"but the authors' constants {len(mean)}; use --normalize dataset")
    else:
        # per-channel statistics of the full training set (the usual normalisation constants)
        mean = x_train.mean(axis=(0, 2, 3)).astype(np.float32)
        std = (x_train.std(axis=(0, 2, 3)) + 1e-8).astype(np.float32)
    norm = lambda a: torch.from_numpy(((a - mean[None, :, None, None]) / std[None, :, None, None]).astype(np.float32))
    aug = data_hp.augment
    if aug == "auto":
        crop, flip = raw.cifar_like, raw.cifar_like and raw.flip
    else:
        crop, flip = aug in ("crop", "crop-flip"), aug == "crop-flip"
    return Dataset(data_hp.dataset, norm(xtr), torch.from_numpy(ytr.copy()), norm(xte), torch.from_numpy(yte.copy()),
                   raw.num_classes, mean.tolist(), std.tolist(), crop, flip, data_hp.cutout, size)


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """Images [N, C, H, W] in [0, 1] -> [N, C, size, size], bilinear (half-pixel centres, as torchvision's Resize on
    a square image; antialiased when shrinking). Deterministic: done once at load, for train and test alike."""
    if x.shape[2] == size and x.shape[3] == size:
        return x
    out = np.empty((len(x), x.shape[1], size, size), np.float32)
    shrink = size < max(x.shape[2], x.shape[3])
    for i in range(0, len(x), 4096):  # in chunks: the float copy of a whole training set can be large
        t = torch.from_numpy(np.ascontiguousarray(x[i:i + 4096], dtype=np.float32))
        out[i:i + 4096] = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                                                          antialias=shrink).numpy()
    return out


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
        if train and (ds.crop or ds.flip or ds.cutout):
            xb = augment_batch(xb, generator, ds.crop, ds.flip, cutout=ds.cutout, fill=ds.black)
        yield xb, y[idx]
