"""Keep pruned weights at exactly zero through training.

Two mechanisms, both needed: gradients of pruned positions are masked (hooks), and the mask is re-applied
after every optimizer step, because weight decay and momentum would otherwise regrow pruned weights.
"""

from __future__ import annotations

import torch

from .mask import Mask


@torch.no_grad()
def apply_mask(model: torch.nn.Module, mask: Mask) -> None:
    params = dict(model.named_parameters())
    for n, m in mask.items():
        params[n].mul_(m.to(device=params[n].device, dtype=params[n].dtype))


class MaskedTraining:
    """Attach to a model for the duration of a training run: `after_step()` after each optimizer.step()."""

    def __init__(self, model: torch.nn.Module, mask: Mask):
        self.model, self.mask = model, mask
        params = dict(model.named_parameters())
        self._float = {n: m.to(device=params[n].device, dtype=params[n].dtype) for n, m in mask.items()}
        self._hooks = [params[n].register_hook(lambda g, m=self._float[n]: g * m) for n in mask]
        apply_mask(model, self._float)

    @torch.no_grad()
    def after_step(self) -> None:
        params = dict(self.model.named_parameters())
        for n, m in self._float.items():
            params[n].mul_(m)

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []
