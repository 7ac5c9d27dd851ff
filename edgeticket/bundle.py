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


BACKENDS = ("onnxruntime", "sparse", "tvm")


def available_backends(manifest: dict) -> list[str]:
    """Backends this bundle carries that can run on this machine."""
    from .native import machine_arch

    out = ["onnxruntime"]
    b = manifest.get("backends", {})
    if b.get("sparse", {}).get("built"):
        out.append("sparse")
    tv = b.get("tvm", {})
    if tv.get("built") and tv.get("arch") == machine_arch():
        out.append("tvm")
    return out


def runner(bundle_dir: Path, manifest: dict, providers=None, threads=None, backend: str = "onnxruntime"):
    """A runner with .run(x) -> (logits summed over T, counts) for one of the bundle's backends."""
    bundle_dir = Path(bundle_dir)
    if backend not in BACKENDS:
        raise EdgeTicketError(f"unknown backend '{backend}'; valid: {', '.join(BACKENDS)}")
    if backend != "onnxruntime" and backend not in available_backends(manifest):
        raise EdgeTicketError(f"bundle {bundle_dir} has no {backend} backend for this machine "
                              f"(it has: {', '.join(available_backends(manifest))}); re-compile with --backend {backend}")
    syn = [L["name"].replace(".", "_") for L in manifest["layers"] if L["input"] == "spikes"]
    if backend == "sparse":
        from .eventrun import SparseRunner
        from .native import machine_arch

        sp = manifest["backends"]["sparse"]
        lib = sp.get("library") or {}
        path = bundle_dir / lib["file"] if lib.get("arch") == machine_arch() else None  # None: build from source
        return SparseRunner(bundle_dir / sp["net_file"], manifest["layout"], manifest["timesteps"],
                            manifest["lif"]["layers"], syn, library=path, threads=threads)
    if backend == "tvm":
        from .tvm_runtime import TvmRunner

        tv = manifest["backends"]["tvm"]
        return TvmRunner(bundle_dir / tv["library"], manifest["layout"], manifest["timesteps"],
                         manifest["lif"]["layers"], syn, manifest["lif"]["state_shapes"], manifest["num_classes"],
                         threads=threads)
    from .runtime import OnnxRunner, make_session

    sess = make_session(bundle_dir / MODEL, providers=providers, threads=threads)
    return OnnxRunner(sess, manifest["layout"], manifest["timesteps"])
