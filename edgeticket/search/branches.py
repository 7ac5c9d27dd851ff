"""Control branches that test the lottery-ticket claim at a level (OpenLTH's branches):

- random-reinit: the ticket's mask on freshly initialised weights (a different seed);
- random-mask: the ticket's per-layer sparsity at random positions, on the weights the ticket started from (the
  rewind weights; the initialisation for an Early-Bird ticket under --eb-rewind init).
Both are trained exactly like the ticket (same epochs from the ticket's start epoch, i.e. the rewind epoch
it used, same T).
"""

from __future__ import annotations

from pathlib import Path

from ..formats import names
from ..data.dataset import epoch_generator
from ..pruning import random_mask_like
from .context import Context
from .dense import rewind_weights
from .level import BRANCH_CODES, LevelResult, new_model, run_level


def run(ctx: Context, run_dir: Path, tickets: list[LevelResult]) -> list[LevelResult]:
    cfg = ctx.cfg
    out = []
    rewind = None
    for t in tickets:
        level = t.info["level"]
        if level == 0 or t.info.get("branch") != "ticket":
            continue
        t_level = int(t.info["timesteps"]["trained"])
        start_epoch = int(t.info.get("epochs", {}).get("start", cfg.search.rewind_epoch))
        for branch in cfg.controls:
            if branch == "random-reinit":
                mask = t.mask
                start = {n: v.cpu() for n, v in new_model(ctx, cfg.training.seed + 1_000_003 * (level + 1))
                         .state_dict().items()}
            else:
                mask = random_mask_like(t.mask, epoch_generator(cfg.training.seed, level, BRANCH_CODES[branch]))
                if (t.info.get("rewind") or {}).get("weights") == "initialisation":  # --eb-rewind init
                    start = {n: v.cpu() for n, v in new_model(ctx, cfg.training.seed).state_dict().items()}
                else:
                    rewind = rewind if rewind is not None else rewind_weights(run_dir)
                    start = rewind
            out.append(run_level(ctx, run_dir, names.branch_dir(run_dir, level, branch), level=level, branch=branch,
                                 mask=mask, start_weights=start, start_epoch=start_epoch,
                                 timesteps=lambda e, x, tt=t_level: tt,
                                 search_timesteps=int(t.info["timesteps"]["search"])))
    return out
