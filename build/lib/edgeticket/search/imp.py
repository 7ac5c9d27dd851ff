"""Iterative Magnitude Pruning with late rewinding (Frankle et al.; the paper's main search).

Level 0 trains the dense net. Level k prunes `prune_rate` of the weights that survived level k-1 (global or
layer-wise magnitude of level k-1's trained weights), rewinds the survivors (and BN/bias) to their values at
`rewind_epoch`, and retrains epochs [rewind_epoch, epochs). With Early-Time, levels 0..rounds-1 run at the
chosen T' and the last level (the final ticket) is retrained at the full T.
"""

from __future__ import annotations

from pathlib import Path

from ..formats import names as files
from ..pruning import prune
from ..pruning.scoring import magnitude
from .context import Context
from .dense import rewind_weights, search_timesteps, train_dense
from .level import LevelResult, run_level


def frozen_layers(ctx: Context, names: list[str]) -> tuple[str, ...]:
    p = ctx.cfg.pruning
    out = []
    if p.keep_first_dense:
        out.append(names[0])
    if p.keep_last_dense:
        out.append(names[-1])
    return tuple(out)


def run(ctx: Context, run_dir: Path) -> list[LevelResult]:
    cfg = ctx.cfg
    T, R = cfg.model.timesteps, cfg.search.rounds
    results = [train_dense(ctx, run_dir)]
    t_search = search_timesteps(ctx, run_dir)
    rewind = rewind_weights(run_dir)
    frozen = frozen_layers(ctx, list(results[0].mask))
    for level in range(1, R + 1):
        prev = results[-1]
        d = files.level_dir(run_dir, level)
        mask = prune(prev.mask, magnitude({n: prev.trained[n] for n in prev.mask}), cfg.pruning.prune_rate,
                     cfg.pruning.strategy, frozen)
        t_level = T if level == R else t_search
        results.append(run_level(ctx, run_dir, d, level=level, branch="ticket", mask=mask, start_weights=rewind,
                                 start_epoch=cfg.search.rewind_epoch, timesteps=lambda e, x, t=t_level: t,
                                 search_timesteps=t_search))
    return results
