"""Importance scores: magnitude of the weight (the paper's criterion)."""

from __future__ import annotations

import torch


def magnitude(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {n: w.detach().abs().float() for n, w in weights.items()}
