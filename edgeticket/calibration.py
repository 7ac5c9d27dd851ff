"""Calibration records (calibration/<target>.json): measured device figures appended by
`edgeticket profile --calibrate`, read by compile and predict. Needs no torch."""

from __future__ import annotations

import os
from pathlib import Path

from . import store
from .errors import EdgeTicketError

FORMAT_VERSION = 1


def calibration_dir() -> Path:
    env = os.environ.get("EDGETICKET_CALIBRATION")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "calibration"


def records(target: str, directory: Path | None = None) -> list[dict]:
    p = (directory or calibration_dir()) / f"{target}.json"
    if not p.is_file():
        return []
    doc = store.read_json(p, "calibration file")
    if doc.get("format_version") != FORMAT_VERSION or not isinstance(doc.get("records"), list):
        raise EdgeTicketError(f"{p}: not a calibration file of format_version {FORMAT_VERSION}; fix or remove it")
    return doc["records"]


def newest_record(target: str, directory: Path | None = None) -> dict | None:
    recs = records(target, directory)
    return max(recs, key=lambda r: r.get("date", "")) if recs else None


def append_record(target: str, record: dict, directory: Path | None = None) -> Path:
    d = directory or calibration_dir()
    p = d / f"{target}.json"
    recs = records(target, d)
    recs.append(record)
    return store.write_json(p, {"format_version": FORMAT_VERSION, "target": target, "records": recs})

