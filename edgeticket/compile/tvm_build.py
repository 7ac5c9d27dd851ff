"""TVM backend: the bundle's ONNX graph -> Relax -> a library for the target's CPU (tvm/<target>.so).

ONNX import keeps the dynamic batch. The target comes from the target file's [tvm] table (a TVM tag such as
raspberry-pi/4b-aarch64, or an llvm table with mtriple/mcpu); libraries for another CPU are exported with
its cross compiler (Debian's g++-aarch64-linux-gnu for aarch64: `make cross-tools`). The host build of the
same module always runs in the Relax VM on the validation inputs and must match onnxruntime spike for spike;
a cross build itself is not run here (docs/tvm-notes.md).

Speed: the weight decode is folded before import, the convolutions run in NHWC with constant weights blocked
at build time, and every kernel gets a default CPU schedule (compile/tvm_schedule.py). The host target is the
llvm of this machine's CPU (its -mcpu), so the vector units are used.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from ..device.machine import machine_arch
from ..errors import EdgeTicketError, require_extra
from ..formats import names
from ..formats.graph import EVENTS
from .validate import compare

def _tvm():
    from ..device.runners.tvm_runner import set_threads

    set_threads()  # before TVM's thread pool exists (the host check runs the library in this process)
    require_extra("tvm", "the tvm backend")
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    return tvm, relax, from_onnx


def host_llvm(tvm) -> dict:
    """The llvm target of this machine's CPU (without -mcpu LLVM emits baseline x86-64/armv8 code)."""
    get = tvm.get_global_func("tvm.codegen.llvm.GetHostCPUName", True)
    cpu = get() if get is not None else ""
    return {"kind": "llvm", "mcpu": cpu} if cpu and cpu != "generic" else {"kind": "llvm"}


def _native(spec, tvm):
    if isinstance(spec, dict) and spec.get("kind") == "llvm" and set(spec) <= {"kind", "mcpu"} and \
            spec.get("mcpu", "native") == "native":
        return host_llvm(tvm)
    return spec


def tvm_target(target, tvm):
    """tvm.target.Target of a target file (host: `{kind = "llvm"}` means the llvm of this machine's CPU)."""
    spec, host = target.tvm_target, target.tvm_host
    if spec is None:
        raise EdgeTicketError(f"target {target.name} has no [tvm] target in {target.path}")
    if target.arch == machine_arch():
        spec, host = _native(spec, tvm), (_native(host, tvm) if host is not None else None)
    t = tvm.target.Target(spec, host=host) if host is not None else tvm.target.Target(spec)
    return t


def fold_weights(onnx_bytes: bytes) -> bytes:
    """The graph with its weight-decode subgraph (packed/fp16/int8 storage) evaluated once: onnxruntime's basic
    optimizations fold every node whose inputs are all constants. Relax cannot fold the decode itself (CumSum
    and ScatterElements stay runtime ops), so without this the TVM library would rebuild every weight tensor on
    every call, and the conv schedules could not re-lay the weights out at build time. The library therefore
    holds the decoded (dense fp32) weights, as onnxruntime's session does after loading."""
    import tempfile

    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgeticket-fold-") as d:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(Path(d) / "folded.onnx")
        ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])
        return (Path(d) / "folded.onnx").read_bytes()


def relax_module(onnx_bytes: bytes):
    """The bundle's graph in Relax, weights folded, convs in NHWC with blocked weights (tvm_schedule.to_nhwc)."""
    import onnx

    from .tvm_schedule import to_nhwc

    tvm, relax, from_onnx = _tvm()
    mod = from_onnx(onnx.load_from_string(fold_weights(onnx_bytes)), keep_params_in_input=False)
    mod = relax.transform.DecomposeOpsForInference()(mod)
    return to_nhwc(mod)


def build_module(mod, target):
    tvm, relax, _ = _tvm()
    from .tvm_schedule import pipeline

    return tvm.compile(mod, target=target, relax_pipeline=pipeline(target))


def cross_compiler(target) -> str | None:
    """The C++ compiler that links the target's library: None for this machine's CPU; a one-line error naming
    the install when the target's cross compiler is not here (checked before anything is built)."""
    if target.arch == machine_arch():
        return None
    cc = target.cross_compiler or ""
    if not shutil.which(cc):
        raise EdgeTicketError(f"cross compiler '{cc or '(none named)'}' for {target.name} not found: install Debian's "
                              "g++-aarch64-linux-gnu (make cross-tools) or name it in the target file's [tvm] table")
    return cc


def export(ex, path: Path, target):
    cc = cross_compiler(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    if cc is None:
        ex.export_library(str(path))
        return
    from tvm.support import cc as tvm_cc

    ex.export_library(str(path), fcompile=tvm_cc.cross_compiler(cc))


def build_tvm(tmp: Path, target, onnx_bytes: bytes, layout: str, x: np.ndarray, ort_runner, log=print):
    """Builds tvm/<target>.so into tmp; validates the host build against onnxruntime. Returns (record, files)."""
    tvm, relax, _ = _tvm()
    from ..device.runners.tvm_runner import TvmRunner

    cross_compiler(target)
    t0 = time.perf_counter()
    mod = relax_module(onnx_bytes)
    tt = tvm_target(target, tvm)
    ex = build_module(mod, tt)
    build_s = time.perf_counter() - t0
    rel = names.tvm_library(target.name)
    export(ex, Path(tmp) / rel, target)
    log(f"TVM: built {rel} for {tt.kind.name} {tt.attrs.get('mtriple', '') or 'host'} in {build_s:.1f} s")
    # validation: the same Relax module for this machine, in the VM, against onnxruntime
    if target.arch == machine_arch():
        host_lib = Path(tmp) / rel
    else:
        host_lib = Path(tmp) / names.TVM_DIR / ".host-check.so"
        build_module(mod, tvm.target.Target(host_llvm(tvm))).export_library(str(host_lib))
    lif = ort_runner.layers
    shapes = [list(s) for s in ort_runner.state_shapes] if layout == "streaming" else []
    tr = TvmRunner(host_lib, layout, ort_runner.timesteps, lif, ort_runner.synapses, shapes, v_init=ort_runner.v_init)
    ol, oc = ort_runner.run(x)
    tl, tc = tr.run(x)
    check = compare(ol, {k: v for k, v in oc.items() if not k.startswith(EVENTS)}, tl, tc)
    if host_lib.name == ".host-check.so":
        host_lib.unlink()
    if not (check["spikes_equal"] and check["logits_ok"]):
        mm = check["first_mismatch"] or {}
        raise EdgeTicketError(f"TVM build differs from onnxruntime (layer {mm.get('layer')}, timestep "
                              f"{mm.get('timestep')}; logits diff {check['logits_max_abs_diff']:.3g})")
    desc = tt.attrs.get("mcpu", "") or str(target.tvm_target)
    record = {"built": True, "library": rel, "library_bytes": (Path(tmp) / rel).stat().st_size, "arch": target.arch,
              "target": str(tt),
              "target_desc": f"{target.arch} {desc}".strip(), "build_s": round(build_s, 2),
              "tuned": False, "schedule": "edgeticket default CPU schedules", "conv_layout": "NHWC",
              "tvm_version": tvm.__version__,
              "validation": {"reference": "onnxruntime", "inputs": int(len(x)), "spikes_equal": True,
                             "logits_max_abs_diff": check["logits_max_abs_diff"], "host_build_checked": True}}
    return record, {rel: Path(tmp) / rel}
