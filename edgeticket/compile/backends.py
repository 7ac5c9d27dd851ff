"""The backends a bundle can carry beside its ONNX graph (always there: it is the reference the others are
validated against, and what onnxruntime / TensorRT run):

- `onnxruntime`: model.onnx (dense kernels; weights densified at load).
- `event`: event/model.etsp (compressed weights, re-encoded by the kernels at load, never densified) +
  event/libetevent-<arch>.so (the event-driven kernels, built for the target's CPU). Spike-exact against
  onnxruntime or not built.
- `tvm`: tvm/<target>.so, a Relax VM library built by TVM for the target (edgeticket.compile.tvm_build).

`--backend` takes a comma list of these, `both` (onnxruntime,tvm), `all`, or `auto` (all three, each where it
applies: event for LIF networks of convs, pools, linear layers and residual blocks (compile/eventnet.py), tvm
where apache-tvm is installed and the target's compiler is there). The manifest's `backends` says what was built,
what was skipped and why, the event backend's memory, and the default: measured on this machine for `--target
host`, the cost model's pick for another target. The names are the device's (device/runners).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..device.machine import machine_arch
from ..device.native import build as build_native
from ..device.native import emulated_check
from ..device.profile.predict import predict_event
from ..device.runners import BACKENDS, RENAMED
from ..device.runners.event_runner import EventRunner
from ..errors import EdgeTicketError
from ..formats import names as files
from ..formats.etsp import POOLS, write_etsp
from ..formats.graph import EVENTS, graph_name
from .deploy import lif_layers, synaptic_layers, v_init
from .eventnet import Unsupported, program
from .validate import compare



def parse(spec: str) -> tuple[list[str], bool]:
    """(backends, explicit). `auto` builds what applies and skips the rest with a note."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return list(BACKENDS), False
    if spec == "both":
        return ["onnxruntime", "tvm"], True
    if spec == "all":
        return list(BACKENDS), True
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    renamed = [n for n in wanted if n in RENAMED]
    if renamed:
        raise EdgeTicketError(f"backend '{renamed[0]}' is now called '{RENAMED[renamed[0]]}': use --backend "
                              f"{RENAMED[renamed[0]]}")
    bad = [n for n in wanted if n not in BACKENDS]
    if bad or not wanted:
        raise EdgeTicketError(f"unknown backend '{','.join(bad) or spec}'; valid: auto, both, all, or a comma list of "
                              f"{', '.join(BACKENDS)}")
    if "onnxruntime" not in wanted:
        wanted.insert(0, "onnxruntime")  # the ONNX graph is always in the bundle: the reference of the others
    return wanted, True


def build_event(deploy, info: dict, target, x: np.ndarray, ort_logits: np.ndarray, ort_counts: dict, layout: str,
                 workdir: Path, storage: dict, log=print) -> tuple[dict, dict]:
    """Writes event/model.etsp and the target's kernel library into workdir; checks the host build
    spike-for-spike against onnxruntime on the validation inputs (and the cross build under qemu-user when the
    target is another CPU and the emulator is there). Returns (manifest record, {bundle path: file})."""
    shape = tuple(info["dataset"]["input_shape"])
    T = int(info["timesteps"]["deploy"])
    prog = program(deploy, shape)  # raises Unsupported
    workdir = Path(workdir)
    (workdir / files.EVENT_DIR).mkdir(parents=True, exist_ok=True)
    net_path = workdir / files.EVENT_NET
    lif0 = lif_layers(deploy)[0]
    nbytes = write_etsp(net_path, shape, T, float(lif0.tau), float(lif0.v_threshold),
                        int(info["dataset"]["num_classes"]), prog)
    lifs = [graph_name(l.name) for l in lif_layers(deploy)]
    syns = [graph_name(s) for s in synaptic_layers(deploy)]

    host = EventRunner(net_path, layout, T, lifs, syns, v_init=v_init(deploy))
    logits, counts = host.run(x)
    check = compare(ort_logits, {k: v for k, v in ort_counts.items() if not k.startswith(EVENTS)}, logits, counts)
    events_equal = all(np.array_equal(ort_counts[k], counts[k]) for k in ort_counts if k.startswith(EVENTS))
    check["events_equal"] = bool(events_equal)
    check["reference"] = "onnxruntime (the bundle's model.onnx)"
    if not (check["spikes_equal"] and events_equal and check["logits_ok"]):
        mm = check["first_mismatch"] or {}
        raise EdgeTicketError(f"event backend differs from onnxruntime (layer {mm.get('layer')}, timestep "
                              f"{mm.get('timestep')}, sample {mm.get('sample')}; logits diff "
                              f"{check['logits_max_abs_diff']:.3g})")

    written = {files.EVENT_NET: net_path}
    arch = target.arch
    cc = target.native_cc or ("cc" if arch == machine_arch() else None)
    record = {"built": True, "net_file": files.EVENT_NET, "net_bytes": nbytes,
              "validation": {k: check[k] for k in ("spikes_equal", "events_equal", "logits_max_abs_diff",
                                                     "logits_scale", "logits_ok", "total_spikes", "reference")}
              | {"inputs": int(len(x)), "host_arch": machine_arch()}}
    lib_name = files.event_library(arch)
    record["library"] = None
    if cc is None:
        record["library_note"] = (f"target file {target.path} names no [native] cc for {arch}: the device builds the "
                                  "kernels from the package source on first use")
    elif shutil.which(cc) is None:
        record["library_note"] = (f"{cc} not found here (make cross-tools installs it): the device builds the "
                                  "kernels from the package source on first use")
        log(f"note: the {arch} event kernels were not cross-built: {record['library_note']}")
    else:
        build_native(workdir / lib_name, cc, list(target.native_cflags))
        written[lib_name] = workdir / lib_name
        record["library"] = {"file": lib_name, "arch": arch, "cc": cc, "cflags": list(target.native_cflags)}
        if arch != machine_arch():
            record["emulated_check"] = _emulated(arch, cc, list(target.native_cflags), net_path, x[:8], T, info,
                                                 lifs, syns, logits[:8], counts, log)
    # memory: the kernels' re-encoded weights are the resident form; scratch per sample run at once (the kernels'
    # own count: the double currents of the largest map, the event lists of all T steps of two maps, a byte map);
    # the float membrane states
    neurons = [r["cout"] * r["hout"] * r["wout"] for r in prog]
    scratch = int(host.L.lib.et_scratch_bytes(host.net, T))
    state = sum(n * 4 for r, n in zip(prog, neurons) if r["lif"])
    bias_bytes = sum(4 * r["cout"] for r in prog if r["kind"] not in POOLS)
    packed = storage["stored_bytes"] + bias_bytes
    record["memory"] = {"weights_resident_bytes": host.resident_bytes, "scratch_bytes_per_sample": scratch,
                        "state_bytes_per_sample": state, "packed_onnx_weight_bytes": packed,
                        "resident_over_packed": round(host.resident_bytes / packed, 4)}
    # the cost model's inputs: events per layer from the validation run
    record["events_per_sample"] = {k: float(v.sum() / v.shape[1]) for k, v in counts.items()
                                   if k.startswith(EVENTS)}
    return record, written


def _emulated(arch, cc, cflags, net_path, x, T, info, lifs, syns, host_logits, host_counts, log) -> dict:
    try:
        with tempfile.TemporaryDirectory() as d:
            lg, sp, ev = emulated_check(arch, cc, cflags, net_path, x, T, int(info["dataset"]["num_classes"]),
                                        len(lifs), len(syns), Path(d))
    except EdgeTicketError as e:
        log(f"note: the {arch} event kernels were not run under emulation ({e})")
        return {"ran": False, "reason": str(e)}
    B = len(x)
    same = all(np.array_equal(sp[i], host_counts[n][:, :B]) for i, n in enumerate(lifs)) and \
        all(np.array_equal(ev[i], host_counts[EVENTS + n][:, :B]) for i, n in enumerate(syns))
    diff = float(np.abs(lg - host_logits).max())
    if not same:
        raise EdgeTicketError(f"the {arch} build of the event kernels gives other spike counts than the host build "
                              "under qemu-user: report this with the bundle")
    return {"ran": True, "emulator": f"qemu-{arch}", "inputs": B, "spikes_equal_to_host": True,
            "logits_max_abs_diff_to_host": diff}


def choose_default(manifest: dict, target, record: dict | None, log=print) -> dict:
    """The cost model's pick between the dense graph (onnxruntime) and the event backend for this target."""
    from ..device.profile.predict import predict_latency

    dense = predict_latency(manifest, manifest["settings"]["batch"], target, record)
    out = {"default": "onnxruntime", "pick": "cost model", "predicted_latency_s": {"onnxruntime": dense["latency_s"]}}
    ev = manifest["backends"].get("event", {})
    if ev.get("built"):
        p = predict_event(manifest, manifest["settings"]["batch"], record)
        out["predicted_latency_s"]["event"] = p["latency_s"]
        out["event_workload"] = p["workload"]
        if p["latency_s"] < dense["latency_s"]:
            out["default"] = "event"
        ratio = p["latency_s"] / dense["latency_s"]
        out["reason"] = (f"predicted event/dense latency {ratio:.2f}x at batch {manifest['settings']['batch']}: "
                         f"{p['workload']['synops_per_sample']:.3g} synaptic ops per sample (spike rates of the "
                         f"validation inputs x nonzero fan-out) vs {dense['workload']['conv_flops'] / 2:.3g} dense MACs")
    else:
        out["reason"] = "only the dense graph was built"
    return out


def built_backends(manifest: dict) -> list[str]:
    return [b for b in BACKENDS if b == "onnxruntime" or (manifest["backends"].get(b) or {}).get("built")]


def pick_by_measurement(bundle_dir: Path, manifest: dict, x: np.ndarray, rounds: int = 3, calls: int = 4,
                        pause_s: float = 0.05) -> dict:
    """On the machine the bundle is for: the built backends timed on the validation inputs at the bundle's batch
    (several of them: the event backend's time follows each input's spikes) and the fastest made the default. Alternating blocks of calls with a pause between them (onnxruntime's and
    TVM's workers spin after a call and would steal the cores from the next backend); median per backend. The
    cost model guesses where it cannot measure (another target); here it would pick wrong where its constants are
    off."""
    import time

    from ..device.runners import open_runner

    batch = int(manifest["settings"]["batch"])
    x = np.ascontiguousarray(x, dtype=np.float32)
    inputs = [x[k:k + batch] for k in range(0, len(x) - batch + 1, batch)][:calls]  # the event backend's time
    runners = {b: open_runner(bundle_dir, manifest, backend=b) for b in built_backends(manifest)}  # varies with them
    times: dict[str, list[float]] = {b: [] for b in runners}
    for _ in range(rounds):
        for b, r in runners.items():
            time.sleep(pause_s)
            r.run(inputs[0], with_counts=False)  # warm: first-call allocations, the workers woken
            for xi in inputs:
                t0 = time.perf_counter()
                r.run(xi, with_counts=False)
                times[b].append(time.perf_counter() - t0)
    med = {b: float(np.median(v)) for b, v in times.items()}
    best = min(med, key=med.get)
    others = ", ".join(f"{b} {1e3 * t:.3g} ms" for b, t in med.items())
    return {"default": best, "measured_latency_s": med, "pick": "measured",
            "reason": f"measured on this machine at batch {batch} (median of {rounds * len(inputs)} calls on "
                      f"{len(inputs)} validation inputs, in alternating blocks): {others}"}
