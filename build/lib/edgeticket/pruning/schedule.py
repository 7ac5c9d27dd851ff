"""Per-round pruning schedule: p of the remaining weights each round."""

from __future__ import annotations


def sparsity_after_rounds(prune_rate: float, rounds: int) -> float:
    """1 - (1 - p)^k: 25.0, 43.75, 57.8, 68.4, ... for p = 0.25."""
    return 1.0 - (1.0 - prune_rate) ** rounds


def count_to_prune(remaining: int, prune_rate: float) -> int:
    return int(round(prune_rate * remaining))
