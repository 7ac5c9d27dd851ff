"""The backends a bundle can be run with on the device, behind one Runner protocol (base.py):

- `onnxruntime`: model.onnx, always in a bundle (the reference the others are validated against).
- `event`: event/model.etsp run by the native event-driven kernels (event/libetevent-<arch>.so, or built here
  from the package's C source when the bundle's build is for another CPU).
- `tvm`: tvm/<target>.so, a TVM library for the target's CPU (needs the [tvm] extra).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ...errors import PIP, EdgeTicketError, missing_extra
from ..machine import machine_arch
from .base import Runner, stream

BACKENDS = ("onnxruntime", "event", "tvm")
RENAMED = {"sparse": "event"}  # the event backend's name before bundle format 2
_CLASSES = {"onnxruntime": ("onnx_runner", "OnnxRunner"), "event": ("event_runner", "EventRunner"),
            "tvm": ("tvm_runner", "TvmRunner")}

__all__ = ["BACKENDS", "Runner", "available", "check_backend", "open_runner", "runner_class", "stream",
           "unavailable_reason"]


def check_backend(name: str) -> str:
    """The backend name, or a one-line error listing the valid ones."""
    if name in RENAMED:
        raise EdgeTicketError(f"backend '{name}' is now called '{RENAMED[name]}': use --backend {RENAMED[name]}")
    if name not in BACKENDS:
        raise EdgeTicketError(f"unknown backend '{name}'; valid: {', '.join(BACKENDS)}")
    return name


def runner_class(name: str) -> type:
    module, cls = _CLASSES[check_backend(name)]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def unavailable_reason(manifest: dict, name: str) -> str | None:
    """Why this bundle cannot run with backend `name` on this machine (one line naming the fix), or None."""
    check_backend(name)
    if name == "onnxruntime":
        return None
    rec = manifest.get("backends", {}).get(name) or {}
    if not rec.get("built"):
        why = f" ({rec['reason']})" if rec.get("reason") else ""
        return f"the bundle carries no {name} backend{why}: re-compile it with --backend {name}"
    if name == "tvm":
        if rec.get("arch") != machine_arch():
            return (f"the bundle's TVM library is built for {rec.get('arch')} (target "
                    f"{manifest['target']['name']}), this machine is {machine_arch()}: compile the ticket for a "
                    f"target of this machine (edgeticket targets lists them; `--target host` on this one)")
        if missing_extra("tvm"):
            return f"the tvm backend needs the TVM runtime, which is not installed: {PIP['tvm']}"
    return None


def available(manifest: dict) -> list[str]:
    """The backends this bundle carries that can run on this machine."""
    return [b for b in BACKENDS if unavailable_reason(manifest, b) is None]


def open_runner(bundle_dir: Path, manifest: dict, backend: str = "onnxruntime", threads: int | None = None) -> Runner:
    reason = unavailable_reason(manifest, backend)
    if reason:
        raise EdgeTicketError(f"{bundle_dir}: {reason}")
    return runner_class(backend).open(Path(bundle_dir), manifest, threads=threads)
