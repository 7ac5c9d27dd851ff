"""Every artifact file name, in one place (open_lth foundations/paths.py style)."""

from __future__ import annotations

from pathlib import Path

RUN_JSON = "run.json"
ET_JSON = "early_time.json"
SUMMARY_CSV = "summary.csv"
SUMMARY_PNG = "summary.png"
SUMMARY_JSON = "summary.json"

MASK = "mask.safetensors"
REWIND = "rewind.safetensors"
TRAINED = "trained.safetensors"
TICKET_JSON = "ticket.json"
CHECKPOINT = "checkpoint.pt"


def level_dir(run_dir: Path, level: int) -> Path:
    return Path(run_dir) / f"level_{level}"


def branch_dir(run_dir: Path, level: int, branch: str) -> Path:
    """A control branch (random-reinit / random-mask) of a level lives inside the level's folder."""
    return level_dir(run_dir, level) / f"branch_{branch}"


def is_finished(ticket_dir: Path) -> bool:
    """A ticket folder with ticket.json is finished and never redone."""
    return (Path(ticket_dir) / TICKET_JSON).is_file()
