"""Early-Time tickets: a timestep policy, not a search method. After `et_check_epoch` epochs at the full T,
compare the network's output distribution at T with each candidate T' on one training batch (its size,
augmentation and BatchNorm mode are settings: docs/method.md gives edgeticket's and the authors' values):
KL(softmax(mean_t logits at T) || softmax(mean_t logits at T')), normalise the KLs by their max, and search
at the smallest T' whose normalised KL is below the threshold. The final ticket is retrained at T."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.dataset import epoch_generator


@torch.no_grad()
def kl_scores(model: torch.nn.Module, x: torch.Tensor, full_t: int, candidates: list[int],
              bn_train: bool = False, direction: str = "code") -> dict[int, float]:
    """KL(p_T || q_T') per candidate T' on the batch `x`, p and q the softmax of the logits averaged over t: the
    authors' code's direction (nn.KLDivLoss(log q, p)); direction "paper": KL(q_T' || p_T), Eq. 1 as printed. The
    code's 'mean' reduction and x1e4 scale are constant factors that the max-normalisation removes. bn_train:
    BatchNorm in train mode, as in the authors' check (batch statistics; each forward pass also updates the
    running statistics)."""
    was_training, old_t = model.training, model.timesteps
    model.train(bn_train)
    model.timesteps = full_t
    log_p = F.log_softmax(model(x).mean(0), dim=1)
    out = {}
    for c in candidates:
        model.timesteps = c
        log_q = F.log_softmax(model(x).mean(0), dim=1)
        a, b = (log_p, log_q) if direction == "code" else (log_q, log_p)
        out[c] = float((a.exp() * (a - b)).sum(1).mean())
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


def check_batch(ctx) -> torch.Tensor:
    """The KL check's one batch of training images: `et_check_batch` of them, drawn by a generator of their own
    (the same whether the run was resumed or not), augmented like training batches with `et_check_augment`."""
    from ..data import batches

    sh = ctx.cfg.search
    gen = epoch_generator(ctx.cfg.training.seed, 99991)
    if sh.et_check_augment:
        xb, _ = next(iter(batches(ctx.data, sh.et_check_batch, gen, train=True)))
        return xb
    order = torch.randperm(len(ctx.data.y_train), generator=gen)[:sh.et_check_batch]
    return ctx.data.x_train[order]


def check(model: torch.nn.Module, ctx) -> dict:
    """Run the KL check (settings: et_check_batch / _augment / _bn) and return the decision record."""
    cfg, sh = ctx.cfg, ctx.cfg.search
    x = check_batch(ctx).to(ctx.device)
    full_t = cfg.model.timesteps
    kls = kl_scores(model, x, full_t, cfg.et_candidates, bn_train=sh.et_check_bn == "train", direction=sh.et_kl)
    chosen, norm, why = choose(kls, sh.et_threshold, full_t)
    return {"full_timesteps": full_t, "candidates": cfg.et_candidates, "threshold": sh.et_threshold,
            "check_epoch": sh.et_check_epoch, "kl": {str(k): v for k, v in kls.items()},
            "normalised_kl": {str(k): v for k, v in norm.items()}, "chosen": chosen, "reason": why,
            "batch": int(len(x)), "augmented": sh.et_check_augment, "bn": sh.et_check_bn, "kl_direction": sh.et_kl}
