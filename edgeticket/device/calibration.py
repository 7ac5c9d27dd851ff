"""Calibration records: measured device figures appended by `edgeticket profile --calibrate`, read by compile,
predict and check. One JSON file per target (formats/names.calibration_file) holding a list of records.

Where they live: records are written to the user's calibration folder, never into the install tree:
`--calibration-dir`, else $EDGETICKET_CALIBRATION, else $XDG_DATA_HOME/edgeticket/calibration (default
~/.local/share/edgeticket/calibration). The records shipped with the package (edgeticket/calibration/) are read
beneath the user's as defaults: the newest record of a target wins wherever it lies."""

from __future__ import annotations

import os
from pathlib import Path

from .. import store
from ..errors import EdgeTicketError
from ..formats.names import calibration_file

FORMAT_VERSION = 1
PACKAGED = Path(__file__).resolve().parent.parent / "calibration"


def user_dir(directory: str | Path | None = None) -> Path:
    """The folder records are written to (and read first from)."""
    if directory:
        return Path(directory)
    env = os.environ.get("EDGETICKET_CALIBRATION")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "edgeticket" / "calibration"


def _read(p: Path) -> list:
    if not p.is_file():
        return []
    doc = store.read_json(p, "calibration file")
    if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION or \
            not isinstance(doc.get("records"), list) or not all(isinstance(r, dict) for r in doc["records"]):
        raise EdgeTicketError(f"{p}: not a calibration file of format_version {FORMAT_VERSION}; fix or remove it")
    return doc["records"]


def records(target: str, directory: str | Path | None = None) -> list[dict]:
    """The user's records of `target`, then the packaged ones."""
    user = user_dir(directory)
    out = _read(calibration_file(user, target))
    if user.resolve() != PACKAGED:
        out += _read(calibration_file(PACKAGED, target))
    return out


def newest_record(target: str, directory: str | Path | None = None) -> dict | None:
    recs = records(target, directory)
    return max(recs, key=lambda r: r.get("date", "")) if recs else None


def check_writable(directory: str | Path | None = None) -> Path:
    """The user's calibration folder, checked (before a long measurement) to be writable or creatable."""
    d = user_dir(directory)
    nearest = d.absolute()
    while not nearest.exists():
        nearest = nearest.parent
    if not nearest.is_dir() or not os.access(nearest, os.W_OK):
        raise EdgeTicketError(f"cannot write calibration records to {d}: give a writable folder with "
                              "--calibration-dir (or $EDGETICKET_CALIBRATION)")
    return d


def append_record(target: str, record: dict, directory: str | Path | None = None) -> Path:
    """Add a record to the user's file of `target` (the packaged records are not copied into it)."""
    p = calibration_file(user_dir(directory), target)
    recs = _read(p)
    recs.append(record)
    try:
        return store.write_json(p, {"format_version": FORMAT_VERSION, "target": target, "records": recs})
    except OSError as e:
        raise EdgeTicketError(f"cannot write the calibration record to {p} ({e.strerror}): give a writable folder "
                              "with --calibration-dir (or $EDGETICKET_CALIBRATION)") from None
