"""Augmentation as tensor ops on a whole batch (no torchvision): random crop with zero padding + flip, then Cutout."""

from __future__ import annotations

import torch


def augment_batch(x: torch.Tensor, generator: torch.Generator, crop: bool, flip: bool,
                  padding: int = 4, cutout: int = 0, fill: torch.Tensor | None = None) -> torch.Tensor:
    """x: [B, C, H, W]. Random shifts within `padding` pixels (zero fill) and horizontal flips, then (cutout > 0)
    one square hole per image filled with `fill` (per channel; default 0), all drawn from `generator` so an epoch's
    augmentation is reproducible. Without cutout the generator is drawn from exactly as before."""
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
    if cutout > 0:
        x = cutout_batch(x, generator, cutout, fill)
    return x.contiguous()


def cutout_batch(x: torch.Tensor, generator: torch.Generator, length: int,
                 fill: torch.Tensor | None = None) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017) as the paper's code runs it: a centre (y, x) uniform over the image, the hole
    rows [y - length//2, y + length//2) and the same columns, clipped at the border (so length x length inside the
    image, less at its edges), one hole per image, every channel set to `fill` (per channel; default 0)."""
    B, C, H, W = x.shape
    cy = torch.randint(0, H, (B,), generator=generator)
    cx = torch.randint(0, W, (B,), generator=generator)
    half = length // 2
    rows, cols = torch.arange(H)[None, :], torch.arange(W)[None, :]
    in_rows = (rows >= (cy[:, None] - half)) & (rows < (cy[:, None] + half))  # [B, H]
    in_cols = (cols >= (cx[:, None] - half)) & (cols < (cx[:, None] + half))  # [B, W]
    hole = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # [B, 1, H, W]
    value = torch.zeros(C, dtype=x.dtype) if fill is None else fill.to(x.dtype)
    return torch.where(hole, value[None, :, None, None], x)
