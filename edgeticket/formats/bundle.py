"""Bundle folders (docs/bundle-format.md): reading and checking them needs numpy alone.

format_version 2: the event-driven backend is `backends.event` with its files under event/, the validation
samples are validation.npz (version 1 called them `sparse` and calib.npz): a version-1 bundle is re-compiled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import store
from ..errors import EdgeTicketError
from . import names

FORMAT_VERSION = 2


def read_manifest(bundle_dir: Path) -> dict:
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise EdgeTicketError(f"bundle folder not found: {bundle_dir}")
    m = store.read_json(bundle_dir / names.MANIFEST, "bundle manifest")
    if not isinstance(m, dict) or m.get("format_version") != FORMAT_VERSION:
        got = m.get("format_version") if isinstance(m, dict) else None
        raise EdgeTicketError(f"{bundle_dir / names.MANIFEST} has format_version {got!r}; this edgeticket "
                              f"reads version {FORMAT_VERSION}: re-compile the ticket with this edgeticket, or "
                              "install the edgeticket that wrote it")
    return m


def verify(bundle_dir: Path, manifest: dict) -> None:
    for name, digest in manifest.get("files", {}).items():
        store.verify_sha256(Path(bundle_dir) / name, digest, f"bundle file {name}",
                            fix="copy the whole bundle folder again, or re-compile it")


def load(bundle_dir: Path, verify_files: bool = True) -> dict:
    m = read_manifest(bundle_dir)
    if verify_files:
        verify(bundle_dir, m)
    return m


def synaptic_layers(manifest: dict) -> list[str]:
    """The conv/linear layers fed by spikes (their input events are counted), in graph order."""
    return [L["name"] for L in manifest["layers"] if L["input"] == "spikes"]


def validation_samples(bundle_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The inputs the bundle was validated on (normalised like the training data) and their labels."""
    with np.load(Path(bundle_dir) / names.VALIDATION_SAMPLES, allow_pickle=False) as z:
        return z["x"].astype(np.float32), z["y"].astype(np.int64)
