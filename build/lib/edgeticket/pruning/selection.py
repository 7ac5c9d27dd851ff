"""Selection: turn scores into a new mask. Ties are broken by position (stable sort), so selection is
deterministic."""

from __future__ import annotations

import torch

from .mask import Mask
from .schedule import count_to_prune


def _prune_flat(scores: torch.Tensor, alive: torch.Tensor, n_prune: int) -> torch.Tensor:
    """Remove the n_prune lowest-score alive entries of a flat vector; returns the new flat alive mask."""
    new = alive.clone()
    if n_prune <= 0:
        return new
    alive_idx = alive.nonzero().squeeze(1)
    order = torch.sort(scores[alive_idx], stable=True).indices[:n_prune]
    new[alive_idx[order]] = False
    return new


def prune(mask: Mask, scores: dict[str, torch.Tensor], prune_rate: float, strategy: str = "global",
          frozen: tuple[str, ...] = ()) -> Mask:
    """Prune `prune_rate` of the remaining weights. Layers in `frozen` stay as they are (kept dense)."""
    names = [n for n in mask if n not in frozen]
    out = Mask({n: mask[n].clone() for n in mask})
    if strategy == "layerwise":
        for n in names:
            alive = mask[n].flatten()
            flat = _prune_flat(scores[n].flatten(), alive, count_to_prune(int(alive.sum()), prune_rate))
            out[n] = flat.view_as(mask[n])
        return out
    if strategy != "global":
        raise ValueError(f"unknown pruning strategy {strategy}")
    alive = torch.cat([mask[n].flatten() for n in names])
    flat_scores = torch.cat([scores[n].flatten() for n in names])
    flat = _prune_flat(flat_scores, alive, count_to_prune(int(alive.sum()), prune_rate))
    offset = 0
    for n in names:
        k = mask[n].numel()
        out[n] = flat[offset:offset + k].view_as(mask[n])
        offset += k
    return out


def mask_at_sparsity(scores: dict[str, torch.Tensor], sparsity: float, frozen: tuple[str, ...] = (),
                     strategy: str = "global") -> Mask:
    """The magnitude mask at a target sparsity (over the non-frozen layers), from dense: used by Early-Bird."""
    dense = Mask({n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()})
    return prune(dense, scores, sparsity, strategy, frozen)


def random_mask_like(mask: Mask, generator: torch.Generator) -> Mask:
    """Same per-layer sparsity, random positions (the random-mask control)."""
    out = Mask()
    for n, m in mask.items():
        k = int(m.sum())
        flat = torch.zeros(m.numel(), dtype=torch.bool)
        flat[torch.randperm(m.numel(), generator=generator)[:k]] = True
        out[n] = flat.view_as(m)
    return out


def bn_channel_mask(model: torch.nn.Module, prunable: list[str], sparsity: float,
                    frozen: tuple[str, ...] = ()) -> tuple[Mask, torch.Tensor]:
    """Original Early-Bird: rank BN scaling factors |gamma| globally, prune the lowest `sparsity` fraction of
    channels; the weight mask zeroes the output channels of the conv feeding each pruned BN.
    Returns (weight mask, flat channel mask used for the Hamming distance)."""
    sd = model.state_dict()
    pairs = []  # (conv weight name, bn weight name)
    modules = dict(model.named_modules())
    names = list(modules)
    for i, n in enumerate(names):
        if isinstance(modules[n], torch.nn.Conv2d) and f"{n}.weight" in prunable and f"{n}.weight" not in frozen:
            for m in names[i + 1:i + 3]:
                if isinstance(modules[m], torch.nn.BatchNorm2d) and modules[m].num_features == modules[n].out_channels:
                    pairs.append((f"{n}.weight", f"{m}.weight"))
                    break
    mask = Mask({n: torch.ones_like(sd[n], dtype=torch.bool) for n in prunable})
    if not pairs:
        return mask, torch.ones(0, dtype=torch.bool)
    gammas = torch.cat([sd[b].detach().abs().float() for _, b in pairs])
    keep = _prune_flat(gammas, torch.ones_like(gammas, dtype=torch.bool), int(round(sparsity * len(gammas))))
    offset = 0
    for conv, bn in pairs:
        c = sd[bn].numel()
        ch = keep[offset:offset + c]
        mask[conv] = ch.view(-1, *([1] * (sd[conv].dim() - 1))).expand_as(sd[conv]).clone()
        offset += c
    return mask, keep


def masks_at_sparsities(scores: dict[str, torch.Tensor], sparsities: list[float]) -> list[Mask]:
    """Global magnitude masks at several sparsities from one stable sort (same result as mask_at_sparsity for
    each, without re-sorting)."""
    names = list(scores)
    flat = torch.cat([scores[n].flatten() for n in names])
    order = torch.sort(flat, stable=True).indices
    out = []
    for s in sparsities:
        keep = torch.ones_like(flat, dtype=torch.bool)
        keep[order[:int(round(s * flat.numel()))]] = False
        m, offset = Mask(), 0
        for n in names:
            k = scores[n].numel()
            m[n] = keep[offset:offset + k].view_as(scores[n])
            offset += k
        out.append(m)
    return out
