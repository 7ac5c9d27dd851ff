"""The ticket folder contract (docs/ticket-format.md): mask, rewind and trained weights as safetensors,
ticket.json with settings, sparsity, timesteps, accuracy, cost, sha256s and versions. Reading and writing
ticket.json is torch-free; rebuilding the network is compile.ticket_source's."""

from __future__ import annotations

import platform
from pathlib import Path

from .. import store
from ..errors import EdgeTicketError
from . import names

FORMAT_VERSION = 1
SEARCH_PACKAGES = ("torch", "spikingjelly", "numpy")


def versions(packages=SEARCH_PACKAGES) -> dict:
    """The installed versions of edgeticket, Python and `packages` (from the package metadata: nothing is
    imported, so this is torch-free; a package that is not installed reads "not installed")."""
    from importlib.metadata import PackageNotFoundError, version

    import edgeticket

    out = {"edgeticket": edgeticket.__version__, "python": platform.python_version()}
    for p in packages:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "not installed"
    return out


def file_hashes(ticket_dir: Path) -> dict:
    return {name: store.sha256_file(Path(ticket_dir) / name) for name in (names.MASK, names.REWIND, names.TRAINED)}


def write(ticket_dir: Path, info: dict) -> dict:
    """Write ticket.json last: its presence marks the level finished."""
    info = dict(info)
    info["format_version"] = FORMAT_VERSION
    info["files"] = file_hashes(ticket_dir)
    info["mask_sha256"] = info["files"][names.MASK]
    info["versions"] = versions()
    store.write_json(Path(ticket_dir) / names.TICKET_JSON, info)
    return info


def read_info(ticket_dir: Path) -> dict:
    ticket_dir = Path(ticket_dir)
    if not ticket_dir.is_dir():
        raise EdgeTicketError(f"ticket folder not found: {ticket_dir}")
    info = store.read_json(ticket_dir / names.TICKET_JSON, "ticket.json")
    if info.get("format_version") != FORMAT_VERSION:
        raise EdgeTicketError(f"{ticket_dir / names.TICKET_JSON} has format_version {info.get('format_version')!r}; "
                              f"this edgeticket reads version {FORMAT_VERSION}: upgrade edgeticket or re-run the search")
    return info
