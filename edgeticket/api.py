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
