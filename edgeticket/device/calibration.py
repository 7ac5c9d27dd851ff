"""Calibration records: measured device figures appended by `edgeticket profile --calibrate`, read by compile,
predict and check. One JSON file per target (formats/names.calibration_file) holding a list of records.

Where they live: records are written to the user's calibration folder, never into the install tree:
`--calibration-dir`, else $EDGETICKET_CALIBRATION, else $XDG_DATA_HOME/edgeticket/calibration (default
~/.local/share/edgeticket/calibration). The records shipped with the package (edgeticket/calibration/) are read
beneath the user's as defaults: the newest record of a target wins wherever it lies."""

from __future__ import annotations

import math
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


# what predict divides by (> 0) and adds (>= 0): a record without them cannot predict anything
RATES = ("conv_gflops", "gemm_gflops", "gbytes_per_s")
OVERHEADS = ("node_overhead_s", "call_overhead_s")


def _numbers(obj, path: str = ""):
    """(dotted key, number) of every number in a record, nested dicts and lists included (bools are no numbers)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def record_problem(rec: dict) -> str | None:
    """Why a calibration record cannot be used (None: it can): a rate missing or <= 0, any number NaN or
    infinite, a timing (key ending _s, or 'seconds') or a byte count (key ending _bytes) below 0."""
    for k in RATES + OVERHEADS:
        if not isinstance(rec.get(k), (int, float)) or isinstance(rec.get(k), bool):
            return f"'{k}' is missing or not a number"
    for key, v in _numbers(rec):
        leaf = key.rsplit(".", 1)[-1]
        if not math.isfinite(v):
            return f"'{key}' is {v}, not a finite number"
        if (leaf in RATES or leaf.endswith("gflops") or leaf.endswith("per_s")) and v <= 0:
            return f"the rate '{key}' is {v}, not > 0"
        if (leaf.endswith("_s") or leaf == "seconds" or leaf.endswith("_bytes")) and v < 0:
            return f"'{key}' is {v}, a negative {'byte count' if leaf.endswith('_bytes') else 'timing'}"
    return None


def _read(p: Path) -> list:
    if not p.is_file():
        return []
    doc = store.read_json(p, "calibration file")
    if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION or \
            not isinstance(doc.get("records"), list) or not all(isinstance(r, dict) for r in doc["records"]):
        raise EdgeTicketError(f"{p}: not a calibration file of format_version {FORMAT_VERSION}; fix or remove it")
    for i, r in enumerate(doc["records"]):
        why = record_problem(r)
        if why:
            raise EdgeTicketError(f"{p}: calibration record {i} (date {r.get('date', '?')}) is unusable: {why}; "
                                  "remove that record (or the file) and measure again with `edgeticket profile "
                                  "BUNDLE --calibrate`")
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
    why = record_problem(record)
    if why:
        raise EdgeTicketError(f"the calibration measurement of {target} is unusable ({why}); nothing was written "
                              f"to {p}: measure again with `edgeticket profile BUNDLE --calibrate`")
    recs = _read(p)
    recs.append(record)
    try:
        return store.write_json(p, {"format_version": FORMAT_VERSION, "target": target, "records": recs})
    except OSError as e:
        raise EdgeTicketError(f"cannot write the calibration record to {p} ({e.strerror}): give a writable folder "
                              "with --calibration-dir (or $EDGETICKET_CALIBRATION)") from None
