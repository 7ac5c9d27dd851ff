"""The ticket a compile starts from: a ticket folder (or a run folder: its final ticket) rebuilt as the trained
network with its mask and ticket.json (torch side of the ticket contract in formats/ticket.py)."""

from __future__ import annotations

from pathlib import Path

from .. import store
from ..errors import EdgeTicketError
from ..formats import names
from ..formats.ticket import read_info
from ..formats.ticket import verify as verify_ticket


def resolve_ticket_dir(path: str | Path, log=print) -> Path:
    """A ticket folder, or a run folder (then its final ticket: the highest finished level)."""
    p = Path(path)
    if (p / names.RUN_JSON).is_file() and not (p / names.TICKET_JSON).is_file():
        levels = sorted((d for d in p.glob("level_*") if names.is_finished(d)), key=lambda d: int(d.name.split("_")[1]))
        if not levels:
            raise EdgeTicketError(f"run folder {p} has no finished level yet; finish the search or pass a level folder")
        log(f"compiling the run's final ticket: {levels[-1]}")
        return levels[-1]
    return p


def load(ticket_dir: Path, verify: bool = True):
    """Rebuild the network of a ticket with its trained weights. Returns (model, mask, info).
    With verify, every file's sha256 must match ticket.json."""
    from ..hparams import SearchConfig
    from ..models import build
    from ..pruning import Mask

    ticket_dir = Path(ticket_dir)
    info = read_info(ticket_dir)
    if verify:
        verify_ticket(ticket_dir, info)
    cfg = SearchConfig.from_dict(info["hparams"])
    ds = info["dataset"]
    c, h, _ = ds["input_shape"]
    model = build(cfg.model, ds["num_classes"], c, h)
    model.timesteps = int(info["timesteps"]["trained"])
    weights = store.load_tensors(ticket_dir / names.TRAINED, "trained weights")
    missing = set(model.state_dict()) - set(weights)
    if missing:
        raise EdgeTicketError(f"{ticket_dir / names.TRAINED} lacks {len(missing)} tensors (e.g. {sorted(missing)[0]}); "
                              "it does not belong to this ticket")
    model.load_state_dict(weights)
    model.eval()
    return model, Mask.load(ticket_dir / names.MASK), info
