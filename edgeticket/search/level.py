"""Train one ticket folder (a level, or a control branch of a level) and write its artifacts.

Every search method is a sequence of calls to `run_level`; a folder that already has ticket.json is
loaded, never retrained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from .. import store
from ..errors import EdgeTicketError
from ..formats import names
from ..models import build
from ..pruning import Mask, apply_mask
from ..pruning.mask import saved_order
from ..formats import ticket
from . import summary as run_summary
from .context import Context
from .train import Callback, clear_checkpoint, train

BRANCH_CODES = {"ticket": 0, "random-reinit": 1, "random-mask": 2}


@dataclass
class LevelResult:
    dir: Path
    info: dict
    mask: Mask
    trained: dict  # state_dict of the trained weights


def new_model(ctx: Context, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    ds = ctx.data
    return build(ctx.cfg.model, ds.num_classes, ds.in_channels, ds.image_size).to(ctx.device)


def load_finished(ticket_dir: Path) -> LevelResult:
    """A finished level, reused only after every file matches the sha256 ticket.json recorded: a level whose files
    changed since is refused (naming the file), never silently carried into the levels after it."""
    info = ticket.read_info(ticket_dir)
    try:
        ticket.verify(ticket_dir, info)
    except EdgeTicketError as e:
        raise EdgeTicketError(f"{e}. The search reuses this finished level: restore the file, or delete {ticket_dir} "
                              "and the levels after it to train them again") from None
    return LevelResult(Path(ticket_dir), info, Mask.load(ticket_dir / names.MASK),
                       store.load_tensors(ticket_dir / names.TRAINED, "trained weights"))


def check_resumed_mask(ticket_dir: Path, mask: Mask) -> None:
    """An unfinished level being resumed trained its checkpoint with the mask it saved: the mask this run computes
    for it must be the same."""
    saved = Mask.load(ticket_dir / names.MASK)
    same_order = list(saved) == list(mask) or saved_order(ticket_dir / names.MASK) is None  # older files: no order
    if not same_order or set(saved) != set(mask) or not all(torch.equal(saved[n], mask[n].cpu()) for n in mask):
        raise EdgeTicketError(f"{ticket_dir / names.MASK} differs from the mask this search computes for the level "
                              f"(the file was altered, or the earlier levels changed): delete {ticket_dir} to train "
                              "the level again")


def run_level(ctx: Context, run_dir: Path, ticket_dir: Path, *, level: int, branch: str, mask: Mask,
              start_weights: dict, start_epoch: int, timesteps: Callable[[int, dict], int], search_timesteps: int,
              save_start_as_rewind: bool = True, after_epoch: Optional[Callback] = None,
              info_extra: Optional[Callable[[dict], dict]] = None, lr_scale: float = 1.0) -> LevelResult:
    """Train from `start_weights` (masked here) for epochs [start_epoch, epochs) and write the folder. Masks live
    on the CPU (the next level prunes from the CPU copy of the trained weights), whatever device trains."""
    mask = Mask({n: m.cpu() for n, m in mask.items()})
    if names.is_finished(ticket_dir):
        ctx.log(f"{ticket_dir.relative_to(run_dir)}: finished, skipped")
        return load_finished(ticket_dir)
    ticket_dir.mkdir(parents=True, exist_ok=True)
    model = new_model(ctx, ctx.cfg.training.seed)
    model.load_state_dict(start_weights)
    apply_mask(model, mask)
    if ctx.is_main:
        if (ticket_dir / names.MASK).is_file():
            check_resumed_mask(ticket_dir, mask)
        else:
            mask.save(ticket_dir / names.MASK)
        if save_start_as_rewind and not (ticket_dir / names.REWIND).is_file():
            store.save_tensors(ticket_dir / names.REWIND, model.state_dict())
    ctx.barrier()
    label = f"level {level}" + ("" if branch == "ticket" else f" [{branch}]")
    ctx.log(f"{label}: sparsity {100 * mask.sparsity():.2f}%, training epochs {start_epoch + 1}..{ctx.cfg.training.epochs}")
    t0 = time.time()
    res = train(ctx, model, ticket_dir, mask, start_epoch, timesteps, run_key=(level, BRANCH_CODES[branch]),
                label=label, after_epoch=after_epoch, lr_scale=lr_scale)
    trained = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    info = {
        "kind": "ticket",
        "run": run_dir.name,
        "level": level,
        "branch": branch,
        "hparams": ctx.cfg.to_dict(),
        "arch": ctx.cfg.model.arch,
        "dataset": ctx.data.describe(),
        "sparsity": {"global": mask.sparsity(), "layers": mask.layer_sparsity()},
        "nnz": mask.nnz(),
        "numel": mask.numel(),
        "timesteps": {"search": search_timesteps, "trained": res.history[-1]["timesteps"] if res.history
                      else ctx.cfg.model.timesteps, "deploy": ctx.cfg.model.timesteps},
        "accuracy": {"final": res.final_acc, "best": res.best_acc, "metric": ticket.ACCURACY_METRIC},
        "cost": dict(res.cost),
        "epochs": {"start": start_epoch, "stopped": res.stopped_epoch, "total": ctx.cfg.training.epochs},
        "history": res.history,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "session_wall_s": time.time() - t0,
    }
    # a network trained at T' (intermediate Early-Time levels) is deployed at the T it was trained with
    info["timesteps"]["deploy"] = info["timesteps"]["trained"]
    if info_extra is not None:
        info.update(info_extra(res.extra))
    if branch == "ticket":  # the search's cost so far, both metrics (the final level's is the run's)
        earlier = [ticket.read_info(names.level_dir(run_dir, k)) for k in range(level)]
        info["search_cost"] = run_summary.search_cost(earlier + [info])
    if ctx.is_main:
        store.save_tensors(ticket_dir / names.TRAINED, trained)
        info = ticket.write(ticket_dir, info)
        clear_checkpoint(ticket_dir)
    ctx.barrier()
    return LevelResult(ticket_dir, info, mask, trained)
