"""A search run: folder named by the settings' hash, run.json, the method's levels, control branches and
the summary (CSV + PNG + JSON). Rerunning the same command resumes: finished levels are loaded, a level
with a checkpoint continues from its last finished epoch."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from .. import store
from ..formats import names
from . import summary as run_summary
from ..errors import EdgeTicketError
from ..hparams import SearchConfig
from . import branches, early_bird, imp
from .context import Context, init_distributed, resolve_device
from ..formats.ticket import versions

METHODS = {"imp": imp.run, "eb": early_bird.run}


def probe_network(cfg: SearchConfig, ds) -> None:
    """A user's own network (--arch package.module:factory) is built and run on two training images before anything
    is written: a factory that fails, or a network of the wrong kind or output, is one line with nothing on disk."""
    from ..models import build, imported

    if not imported.is_spec(cfg.model.arch):
        return
    net = build(cfg.model, ds.num_classes, ds.in_channels, ds.image_size)
    with torch.no_grad():
        net.eval()(ds.x_train[:2])


def same_settings(recorded, cfg: SearchConfig) -> bool:
    """run.json's settings are `cfg`'s. A setting added to edgeticket after the run was started is missing from
    run.json and takes its default, which is the old behaviour (hparams.py's rule): such a run still resumes."""
    try:
        return SearchConfig.from_dict(recorded).to_dict() == cfg.to_dict()
    except (EdgeTicketError, TypeError, AttributeError):
        return False


def prepare_run_dir(cfg: SearchConfig, out: Path) -> Path:
    run_dir = Path(out) / cfg.hashname()
    rj = run_dir / names.RUN_JSON
    if rj.is_file():
        old = store.read_json(rj, "run.json")
        if not isinstance(old, dict) or not same_settings(old.get("hparams"), cfg):
            raise EdgeTicketError(f"{run_dir} holds a run with other settings (hash collision or an edited run.json); "
                                  "pass another --out")
    return run_dir


def run_search(cfg: SearchConfig, out: Path, device: str = "auto", quiet: bool = False) -> dict:
    from .. import data

    cfg.validate()
    if cfg.search.method not in METHODS:
        raise EdgeTicketError(f"unknown method '{cfg.search.method}'; valid: {', '.join(METHODS)}")
    dev = resolve_device(device)
    rank, world = init_distributed(dev)
    if cfg.training.batch_size < world:
        raise EdgeTicketError(f"--batch-size {cfg.training.batch_size} is smaller than the {world} processes")
    ds = data.load(cfg.data)
    probe_network(cfg, ds)
    run_dir = prepare_run_dir(cfg, out)
    ctx = Context(cfg, ds, dev, quiet=quiet, rank=rank, world=world)
    lock = store.FolderLock(run_dir, "search")
    refused = None
    if ctx.is_main:
        try:
            lock.__enter__()
        except EdgeTicketError as e:
            refused = str(e)
    refused = _shared(ctx, refused)  # every process stops when the main one is refused (none waits at a barrier)
    if refused is not None:
        raise EdgeTicketError(refused)
    try:
        if lock.stale:
            ctx.log(f"taking over the lock of a search that is gone ({lock.stale})")
        if ctx.is_main and run_dir.is_dir():
            store.remove_temp_files(run_dir)  # half-written files of a killed run: nobody else writes here now
        return _search(ctx, cfg, ds, dev, run_dir)
    finally:
        lock.__exit__(None, None, None)


def _shared(ctx: Context, value):
    """The main process's `value`, on every process of a torchrun group."""
    if ctx.world <= 1:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def _search(ctx: Context, cfg: SearchConfig, ds, dev: torch.device, run_dir: Path) -> dict:
    world = ctx.world
    if ctx.is_main and not (run_dir / names.RUN_JSON).is_file():
        store.write_json(run_dir / names.RUN_JSON, {
            "format_version": 1, "kind": "search-run", "name": run_dir.name, "hparams": cfg.to_dict(),
            "non_default": {k: v for k, v in cfg.non_default().items()}, "dataset": ds.describe(),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "versions": versions(),
            "world_size": world, "device": str(dev)})
    ctx.barrier()
    ctx.log(f"search {run_dir} ({cfg.search.method}{' + early-time' if cfg.search.early_time else ''}, "
            f"{cfg.model.arch} on {ds.name}: {len(ds.y_train)} train / {len(ds.y_test)} test, T={cfg.model.timesteps}, "
            f"device {dev}{f', {world} processes' if world > 1 else ''})")
    torch.use_deterministic_algorithms(dev.type == "cpu", warn_only=True)
    tickets = METHODS[cfg.search.method](ctx, run_dir)
    controls = branches.run(ctx, run_dir, tickets) if cfg.controls else []
    summary = run_summary.summarise(run_dir, [t.info for t in tickets], [c.info for c in controls])
    if ctx.is_main:
        run_summary.write_summary(run_dir, summary)
    ctx.barrier()
    return summary
