"""The ticket folder contract (docs/ticket-format.md): mask, rewind and trained weights as safetensors,
ticket.json with settings, sparsity, timesteps, accuracy, cost, sha256s and versions."""

from __future__ import annotations

import platform
from pathlib import Path

from .. import paths, store
from ..errors import EdgeTicketError

FORMAT_VERSION = 1


def versions() -> dict:
    import numpy
    import torch

    import edgeticket

    try:
        from importlib.metadata import version

        sj = version("spikingjelly")
    except Exception:  # noqa: BLE001
        sj = "unknown"
    return {"edgeticket": edgeticket.__version__, "torch": torch.__version__, "spikingjelly": sj,
            "numpy": numpy.__version__, "python": platform.python_version()}


def file_hashes(ticket_dir: Path) -> dict:
    return {name: store.sha256_file(Path(ticket_dir) / name) for name in (paths.MASK, paths.REWIND, paths.TRAINED)}


def write(ticket_dir: Path, info: dict) -> dict:
    """Write ticket.json last: its presence marks the level finished."""
    info = dict(info)
    info["format_version"] = FORMAT_VERSION
    info["files"] = file_hashes(ticket_dir)
    info["mask_sha256"] = info["files"][paths.MASK]
    info["versions"] = versions()
    store.write_json(Path(ticket_dir) / paths.TICKET_JSON, info)
    return info


def read_info(ticket_dir: Path) -> dict:
    ticket_dir = Path(ticket_dir)
    if not ticket_dir.is_dir():
        raise EdgeTicketError(f"ticket folder not found: {ticket_dir}")
    info = store.read_json(ticket_dir / paths.TICKET_JSON, "ticket.json")
    if info.get("format_version") != FORMAT_VERSION:
        raise EdgeTicketError(f"{ticket_dir / paths.TICKET_JSON} has format_version {info.get('format_version')!r}; "
                              f"this edgeticket reads version {FORMAT_VERSION}: upgrade edgeticket or re-run the search")
    return info


def load(ticket_dir: Path, verify: bool = True):
    """Rebuild the network of a ticket with its trained weights. Returns (model, mask, info).
    With verify, every file's sha256 must match ticket.json."""
    from ..hparams import SearchConfig
    from ..models import build
    from ..pruning import Mask

    ticket_dir = Path(ticket_dir)
    info = read_info(ticket_dir)
    if verify:
        for name, digest in info["files"].items():
            store.verify_sha256(ticket_dir / name, digest, f"ticket file {name}")
    cfg = SearchConfig.from_dict(info["hparams"])
    ds = info["dataset"]
    c, h, _ = ds["input_shape"]
    model = build(cfg.model, ds["num_classes"], c, h)
    model.timesteps = int(info["timesteps"]["trained"])
    weights = store.load_tensors(ticket_dir / paths.TRAINED, "trained weights")
    missing = set(model.state_dict()) - set(weights)
    if missing:
        raise EdgeTicketError(f"{ticket_dir / paths.TRAINED} lacks {len(missing)} tensors (e.g. {sorted(missing)[0]}); "
                              "it does not belong to this ticket")
    model.load_state_dict(weights)
    model.eval()
    return model, Mask.load(ticket_dir / paths.MASK), info
