"""Bundle folders (docs/bundle-format.md): reading and checking them needs numpy + onnxruntime only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import store
from .errors import EdgeTicketError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL = "model.onnx"
CALIB = "calib.npz"


def read_manifest(bundle_dir: Path) -> dict:
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise EdgeTicketError(f"bundle folder not found: {bundle_dir}")
    m = store.read_json(bundle_dir / MANIFEST, "bundle manifest")
    if m.get("format_version") != FORMAT_VERSION:
        raise EdgeTicketError(f"{bundle_dir / MANIFEST} has format_version {m.get('format_version')!r}; this edgeticket "
                              f"reads version {FORMAT_VERSION}: re-compile the ticket or upgrade edgeticket")
    return m


def verify(bundle_dir: Path, manifest: dict) -> None:
    for name, digest in manifest.get("files", {}).items():
        store.verify_sha256(Path(bundle_dir) / name, digest, f"bundle file {name}")


def load(bundle_dir: Path, verify_files: bool = True) -> dict:
    m = read_manifest(bundle_dir)
    if verify_files:
        verify(bundle_dir, m)
    return m


def calibration_inputs(bundle_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    z = np.load(Path(bundle_dir) / CALIB, allow_pickle=False)
    return z["x"].astype(np.float32), z["y"].astype(np.int64)


def runner(bundle_dir: Path, manifest: dict, providers=None, threads=None):
    from .runtime import OnnxRunner, make_session

    sess = make_session(Path(bundle_dir) / MODEL, providers=providers, threads=threads)
    return OnnxRunner(sess, manifest["layout"], manifest["timesteps"])
