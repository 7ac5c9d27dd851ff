"""The library surface; click commands only parse options and call these."""

from __future__ import annotations

from pathlib import Path

from .hparams import SearchConfig


def search(cfg: SearchConfig, out: str | Path = "runs", device: str = "auto", quiet: bool = False) -> dict:
    """Run (or resume) a lottery-ticket search; returns the run summary (also written to the run folder)."""
    from .search.runner import run_search

    return run_search(cfg, Path(out), device=device, quiet=quiet)


def load_run_config(run_dir: str | Path) -> SearchConfig:
    """The settings of an existing run folder (for `edgeticket search --resume RUN_DIR`)."""
    from . import paths, store

    return SearchConfig.from_dict(store.read_json(Path(run_dir) / paths.RUN_JSON, "run.json")["hparams"])


def load_ticket(ticket_dir: str | Path, verify: bool = True):
    """(model, mask, info) of a finished ticket folder; sha256s are checked."""
    from .search import ticket

    return ticket.load(Path(ticket_dir), verify=verify)


def compile_ticket(ticket_dir: str | Path, target: str, out: str | Path = "bundles", layout: str = "auto",
                   weights: str = "fp32", storage: str = "packed", batch: int = 1, calib_data: str | None = None,
                   calib_n: int = 64, opset: int | None = None, force: bool = False, log=print,
                   name: str | None = None, data_dir: str | None = None, backend: str = "auto") -> dict:
    """Compile a ticket folder (or a run folder: its final ticket) into a bundle for a target; returns the
    manifest (bundle_dir added). `name` overrides the bundle folder name (default <target>_<arch>_<id>)."""
    from .compile.build import CompileSettings
    from .compile.build import compile_ticket as build

    settings = CompileSettings(layout=layout, weights=weights, storage=storage, batch=batch, calib_n=calib_n,
                               opset=opset, backend=backend)
    return build(ticket_dir, target, out=out, settings=settings, calib_data=calib_data, force=force, log=log, name=name,
                 data_dir=data_dir)
