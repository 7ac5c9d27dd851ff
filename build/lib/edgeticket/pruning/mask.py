"""A Mask is a dict: state_dict name of a prunable weight -> bool tensor of the same shape (True = kept)."""

from __future__ import annotations

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
        return store.save_tensors(path, {n: v.to(torch.bool) for n, v in self.items()}, metadata)

    @classmethod
    def load(cls, path: Path) -> "Mask":
        return cls({n: v.to(torch.bool) for n, v in store.load_tensors(path, "mask").items()})
