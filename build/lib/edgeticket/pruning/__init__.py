"""Magnitude pruning: Mask (name -> bool tensor), scoring, selection (global / layerwise), schedules, and
the machinery that keeps pruned weights at exactly zero during training."""

from .apply import MaskedTraining, apply_mask
from .mask import Mask
from .schedule import sparsity_after_rounds
from .selection import prune, random_mask_like, bn_channel_mask, mask_at_sparsity

__all__ = ["Mask", "MaskedTraining", "apply_mask", "bn_channel_mask", "mask_at_sparsity", "prune",
           "random_mask_like", "sparsity_after_rounds"]
