"""Early-Bird tickets (You et al. 2020), in the unstructured form the SNN-LTH paper uses.

During dense training, after every epoch compute the global magnitude mask at the target sparsity; keep a
FIFO of the last `eb_window` masks; once the FIFO is full and the largest normalised Hamming distance
between the newest mask and the older ones is below `eb_eps`, stop: that mask is the ticket. It is then
rewound to `rewind_epoch` and retrained for epochs [rewind_epoch, epochs) (at the full T, also under
Early-Time). The `bn-channel` variant ranks BN scaling factors instead (the original EB paper, structured
channels, eps 0.1). If the masks never settle, the mask after the last epoch is used and ticket.json says so.

EB may stop before `rewind_epoch` (the paper's regime: EB stops around epochs 5-16, rewind epoch 20). Then the
ticket is rewound to the weights after the stop epoch, min(rewind_epoch, stop epoch), and retrained for
epochs [stop epoch, epochs); dense training is not continued to the rewind epoch (that would cost the epochs EB
saves, and the weights would be trained past the mask's epoch). The authors' code never meets the case: it
rewinds EB tickets to the initialisation and retrains all epochs (train_snn_earlybird.py), with 2x the learning
rate in the search phase: `--eb-rewind init --eb-lr-scale 2`. Level 0's `early_bird.rewind_epoch` and the
ticket's `rewind` record in ticket.json give the rewind point used.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..formats import names as files
from ..pruning import bn_channel_mask, mask_at_sparsity
from ..pruning.scoring import magnitude
from .context import Context
from .dense import rewind_epoch, rewind_record, rewind_weights, search_timesteps, train_dense
from .imp import frozen_layers
from .level import LevelResult, new_model, run_level
from .train import EpochState


def ticket_mask(ctx: Context, model: torch.nn.Module, names: list[str], frozen: tuple[str, ...]):
    """(weight mask, flat vector compared in the FIFO) at the target sparsity."""
    s = ctx.cfg.eb_target_sparsity
    if ctx.cfg.search.eb_variant == "bn-channel":
        return bn_channel_mask(model, names, s, frozen)
    sd = model.state_dict()
    mask = mask_at_sparsity(magnitude({n: sd[n] for n in names}), s, frozen, ctx.cfg.pruning.strategy)
    return mask, torch.cat([mask[n].flatten() for n in names])


def run(ctx: Context, run_dir: Path) -> list[LevelResult]:
    cfg = ctx.cfg
    sh = cfg.search
    probe = new_model(ctx, cfg.training.seed)
    names = probe.prunable()
    frozen = frozen_layers(ctx, names)

    def eb_epoch(model, es: EpochState) -> None:
        _, flat = ticket_mask(ctx, model, names, frozen)
        fifo = list(es.extra.get("eb_fifo", [])) + [flat.cpu()]
        fifo = fifo[-sh.eb_window:]
        es.extra["eb_fifo"] = fifo
        dist = max(float((fifo[-1] != old).float().mean()) for old in fifo[:-1]) if len(fifo) > 1 else 1.0
        es.extra.setdefault("eb_distances", []).append(dist)
        if len(fifo) == sh.eb_window and dist < sh.eb_eps:
            es.extra["eb_converged_epoch"] = es.epoch + 1
            es.stop = True
            ctx.log(f"Early-Bird: mask settled after epoch {es.epoch + 1} (max Hamming {dist:.4f} < {sh.eb_eps})")

    def eb_info(extra: dict) -> dict:
        return {"early_bird": {"variant": sh.eb_variant, "target_sparsity": cfg.eb_target_sparsity,
                               "eps": sh.eb_eps, "window": sh.eb_window,
                               "converged": "eb_converged_epoch" in extra,
                               "stop_epoch": extra.get("eb_converged_epoch"),
                               "rewind_epoch": extra.get("rewind_epoch", sh.rewind_epoch),
                               "distances": extra.get("eb_distances", [])}}

    init = {n: v.detach().cpu().clone() for n, v in probe.state_dict().items()}
    dense = train_dense(ctx, run_dir, extra_callback=eb_epoch, info_extra=eb_info, lr_scale=sh.eb_lr_scale)
    # the ticket is the mask of the weights at the stop epoch: recomputed from level 0's trained weights
    probe.load_state_dict(dense.trained)
    mask, _ = ticket_mask(ctx, probe, names, frozen)
    t_search = search_timesteps(ctx, run_dir)
    if sh.eb_rewind == "init":  # the authors' code: the initialisation, all epochs
        start, k, record = init, 0, {"rewind": {"epoch": 0, "requested_epoch": 0, "weights": "initialisation",
                                                "rule": "--eb-rewind init: the ticket restarts from the "
                                                        "initialisation and trains all epochs (the authors' code)"}}
    else:
        k = rewind_epoch(ctx, run_dir)  # min(rewind_epoch, stop epoch): the epoch the rewind file holds
        start, record = rewind_weights(run_dir), rewind_record(ctx, run_dir, k)
    ticket = run_level(ctx, run_dir, files.level_dir(run_dir, 1), level=1, branch="ticket", mask=mask,
                       start_weights=start, start_epoch=k, timesteps=lambda e, x: cfg.model.timesteps,
                       search_timesteps=t_search, info_extra=lambda extra: record)
    return [dense, ticket]
