"""A Mask is a dict: state_dict name of a prunable weight -> bool tensor of the same shape (True = kept), in the
model's layer order. The order survives save/load (safetensors files list tensors sorted by name; the order is kept
in the file's metadata): "the first layer" and the random-mask control's draws depend on it, so a resumed search
that loads a finished level's mask must see the order the uninterrupted run saw."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .. import store


class Mask(dict):
    @classmethod
    def ones_like(cls, model: torch.nn.Module, names: list[str]) -> "Mask":
        sd = model.state_dict()
        return cls({n: torch.ones_like(sd[n], dtype=torch.bool) for n in names})

    def numel(self) -> int:
        return sum(v.numel() for v in self.values())

    def nnz(self) -> int:
        return int(sum(int(v.sum()) for v in self.values()))

    def sparsity(self) -> float:
        total = self.numel()
        return 1.0 - self.nnz() / total if total else 0.0

    def layer_sparsity(self) -> dict[str, float]:
        return {n: 1.0 - float(v.float().mean()) for n, v in self.items()}

    def hamming(self, other: "Mask") -> float:
        """Normalised Hamming distance (fraction of positions that differ)."""
        diff = sum(int((self[n] != other[n]).sum()) for n in self)
        return diff / self.numel()

    def save(self, path: Path, metadata: dict | None = None) -> Path:
        meta = dict(metadata or {}, **{ORDER_KEY: json.dumps(list(self))})
        return store.save_tensors(path, {n: v.to(torch.bool) for n, v in self.items()}, meta)

    @classmethod
    def load(cls, path: Path) -> "Mask":
        tensors = store.load_tensors(path, "mask")
        order = saved_order(path)
        names = order if order is not None and sorted(order) == sorted(tensors) else list(tensors)
        return cls({n: tensors[n].to(torch.bool) for n in names})


ORDER_KEY = "layer_order"  # safetensors metadata: the JSON list of the mask's names in the model's order


def saved_order(path: Path) -> list | None:
    """The layer order a mask file was saved with (None for files written before it was kept)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        raw = (f.metadata() or {}).get(ORDER_KEY)
    try:
        order = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return order if isinstance(order, list) and all(isinstance(n, str) for n in order) else None
