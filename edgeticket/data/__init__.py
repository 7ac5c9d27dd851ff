"""Dataset registry: CLI name -> loader(data_dir) -> Dataset (in-memory tensors).

Every loader reads the dataset's standard files itself (no torchvision, no downloads) and raises a
one-line EdgeTicketError naming the expected files when they are missing or malformed.
"""

from __future__ import annotations

from ..errors import EdgeTicketError
from .augment import augment_batch
from .dataset import Dataset, batches, load
from .loaders import REGISTRY

__all__ = ["Dataset", "REGISTRY", "augment_batch", "batches", "get", "load", "raw"]


def get(name: str):
    if name not in REGISTRY:
        raise EdgeTicketError(f"unknown dataset '{name}'; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


_LAST: dict = {}  # the last raw dataset loaded in this process: an experiment's check, then its searches


def raw(name: str, data_dir):
    """get(name)(data_dir), kept for the next call with the same files: an experiment checks every dataset before
    its first search (experiment.check_plan) and its searches then reuse that load. The key holds the files' sizes
    and modification times, so a file replaced in between is read again."""
    loader = get(name)
    key = (name, loader, _fingerprint(data_dir))
    if key not in _LAST:
        _LAST.clear()
        _LAST[key] = loader(data_dir)
    return _LAST[key]


def _fingerprint(data_dir) -> tuple:
    """(path, [(name, size, mtime_ns)] of the path and the entries up to two levels below it)."""
    import os

    if data_dir is None:
        return (None,)
    root = os.path.abspath(os.path.expanduser(str(data_dir)))
    out = []
    try:
        st = os.stat(root)
        out.append(("", st.st_size, st.st_mtime_ns))
        if os.path.isdir(root):
            for top in os.scandir(root):
                out.append((top.name, top.stat().st_size, top.stat().st_mtime_ns))
                if top.is_dir():
                    out += [(f"{top.name}/{e.name}", e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(top)]
    except OSError:
        pass  # the loader names the missing file
    return (root, tuple(sorted(out)))
