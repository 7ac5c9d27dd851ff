"""Augmentation as tensor ops on a whole batch (no torchvision): random crop with zero padding + flip."""

from __future__ import annotations

import torch


def augment_batch(x: torch.Tensor, generator: torch.Generator, crop: bool, flip: bool,
                  padding: int = 4) -> torch.Tensor:
    """x: [B, C, H, W]. Random shifts within `padding` pixels (zero fill) and horizontal flips,
    drawn from `generator` so an epoch's augmentation is reproducible."""
    B, C, H, W = x.shape
    if crop:
        pad = min(padding, H // 4) if H < 16 else padding
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (B,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (B,), generator=generator)
        rows = (dy[:, None] + torch.arange(H)[None, :])  # [B, H]
        cols = (dx[:, None] + torch.arange(W)[None, :])  # [B, W]
        idx_b = torch.arange(B)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[idx_b, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        f = torch.rand(B, generator=generator) < 0.5
        x = torch.where(f[:, None, None, None], x.flip(3), x)
    return x.contiguous()
