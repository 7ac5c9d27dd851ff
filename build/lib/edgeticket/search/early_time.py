"""Early-Time tickets: a timestep policy, not a search method. After `et_check_epoch` epochs at the full T,
compare the network's output distribution at T with each candidate T' on one training batch:
KL(softmax(mean_t logits at T) || softmax(mean_t logits at T')), normalise the KLs by their max, and search
at the smallest T' whose normalised KL is below the threshold. The final ticket is retrained at T."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.dataset import epoch_generator


@torch.no_grad()
def kl_scores(model: torch.nn.Module, x: torch.Tensor, full_t: int, candidates: list[int]) -> dict[int, float]:
    was_training, old_t = model.training, model.timesteps
    model.eval()
    model.timesteps = full_t
    log_p = F.log_softmax(model(x).mean(0), dim=1)
    out = {}
    for c in candidates:
        model.timesteps = c
        log_q = F.log_softmax(model(x).mean(0), dim=1)
        out[c] = float((log_p.exp() * (log_p - log_q)).sum(1).mean())
    model.timesteps = old_t
    model.train(was_training)
    return out


def choose(kls: dict[int, float], threshold: float, full_t: int) -> tuple[int, dict[int, float], str]:
    """Smallest candidate whose max-normalised KL < threshold; the full T when none qualifies."""
    top = max(kls.values()) if kls else 0.0
    norm = {c: (k / top if top > 0 else 0.0) for c, k in kls.items()}
    ok = sorted(c for c, v in norm.items() if v < threshold)
    if ok:
        return ok[0], norm, f"smallest T' with normalised KL < {threshold}"
    return full_t, norm, f"no candidate had normalised KL < {threshold}: searching at the full T"


def check(model: torch.nn.Module, ctx, batch_size: int = 128) -> dict:
    """Run the KL check on a fixed training batch (no augmentation) and return the decision record."""
    cfg = ctx.cfg
    gen = epoch_generator(cfg.training.seed, 99991)
    order = torch.randperm(len(ctx.data.y_train), generator=gen)[:batch_size]
    x = ctx.data.x_train[order].to(ctx.device)
    full_t = cfg.model.timesteps
    kls = kl_scores(model, x, full_t, cfg.et_candidates)
    chosen, norm, why = choose(kls, cfg.search.et_threshold, full_t)
    return {"full_timesteps": full_t, "candidates": cfg.et_candidates, "threshold": cfg.search.et_threshold,
            "check_epoch": cfg.search.et_check_epoch, "kl": {str(k): v for k, v in kls.items()},
            "normalised_kl": {str(k): v for k, v in norm.items()}, "chosen": chosen, "reason": why,
            "batch": int(len(order))}

