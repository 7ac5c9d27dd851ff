"""Latency and memory prediction for a bundle on a target without the device.

latency = conv FLOPs / conv GFLOP/s + conv executions x fixed cost per conv (fitted: small maps are dominated by it)
        + gemm FLOPs / gemm GFLOP/s + LIF elementwise bytes / memory bandwidth
        + executed graph nodes x per-node overhead + calls x per-call overhead
onnxruntime runs the dense kernels, so FLOPs are the dense ones. With a calibration record of the target the
rates and overheads are the measured ones; without, the target file's datasheet roofline (peak GFLOP/s and
bandwidth, no overheads) gives an optimistic lower bound, and the result says so.
"""

from __future__ import annotations

import numpy as np

LIF_BYTES_PER_NEURON_STEP = 64  # ~8 elementwise ops (sub, div, add, ge, cast, sub, mul, count) x 8 bytes moved


def calls_of(manifest: dict) -> int:
    return int(manifest["timesteps"]) if manifest["layout"] == "streaming" else 1


def workload(manifest: dict, batch: int) -> dict:
    T = int(manifest["timesteps"])
    conv = sum(2 * L["macs_per_sample_dense"] for L in manifest["layers"] if L["kind"] == "conv") * batch
    gemm = sum(2 * L["macs_per_sample_dense"] for L in manifest["layers"] if L["kind"] == "linear") * batch
    neurons = sum(int(np.prod(s)) for s in manifest["lif"]["state_shapes"])
    graph = manifest["graph"]
    executed = graph["nodes"] - graph["op_types"].get("Constant", 0)
    calls = T if manifest["layout"] == "streaming" else 1
    convs = sum(1 for L in manifest["layers"] if L["kind"] == "conv") * calls_of(manifest)
    return {"conv_flops": conv, "conv_executions": convs, "gemm_flops": gemm, "lif_bytes": neurons * T * batch * LIF_BYTES_PER_NEURON_STEP,
            "nodes": executed * calls, "calls": calls}


def predict_latency(manifest: dict, batch: int, target, record: dict | None) -> dict:
    w = workload(manifest, batch)
    if record:
        rates = {"conv_gflops": record["conv_gflops"], "conv_fixed_s": record.get("conv_fixed_s", 0.0),
                 "gemm_gflops": record["gemm_gflops"],
                 "gbytes_per_s": record["gbytes_per_s"], "node_overhead_s": record["node_overhead_s"],
                 "call_overhead_s": record["call_overhead_s"]}
        source = f"calibration record of {record.get('target')} from {record.get('date')}"
    else:
        rates = {"conv_gflops": target.peak_gflops, "conv_fixed_s": 0.0, "gemm_gflops": target.peak_gflops,
                 "gbytes_per_s": target.mem_gbytes_per_s, "node_overhead_s": 0.0, "call_overhead_s": 0.0}
        source = (f"datasheet roofline of {target.name} (no calibration record: an optimistic lower bound; run "
                  f"`edgeticket profile BUNDLE --calibrate` on the device)")
    parts = {"conv_s": w["conv_flops"] / (rates["conv_gflops"] * 1e9) + w["conv_executions"] * rates["conv_fixed_s"],
             "gemm_s": w["gemm_flops"] / (rates["gemm_gflops"] * 1e9),
             "lif_s": w["lif_bytes"] / (rates["gbytes_per_s"] * 1e9),
             "nodes_s": w["nodes"] * rates["node_overhead_s"],
             "calls_s": w["calls"] * rates["call_overhead_s"]}
    return {"latency_s": sum(parts.values()), "breakdown": parts, "workload": w, "rates": rates, "source": source,
            "calibrated": record is not None, "batch": batch}


def predict_memory(manifest: dict, record: dict | None) -> dict:
    """The bundle's memory plan, with the runtime overhead replaced by the calibration record's measurement."""
    p = dict(manifest["memory_plan"])
    if record and record.get("runtime_overhead_bytes"):
        delta = int(record["runtime_overhead_bytes"]) - p["runtime_overhead_bytes"]
        p["runtime_overhead_bytes"] += delta
        for k in ("steady_total_bytes", "load_peak_bytes"):
            p[k] += delta
        p["total_bytes"] = max(p["steady_total_bytes"], p["load_peak_bytes"])
    return p


# The event backend (edgeticket/device/native/etevent.c): an add per synaptic event on a nonzero weight (double
# accumulators; 8 channels a vector op where a layer is dense), one LIF update per neuron and step, a fixed cost
# per call. Defaults measured on the host; a calibration record's event_* fields (`profile --calibrate` on a
# bundle with the event backend: fit_event_rates) replace them.
EVENT_NS_PER_SYNOP = 1.0
EVENT_NS_PER_NEURON_STEP = 1.0
EVENT_CALL_S = 20e-6


def event_workload(manifest: dict, events_per_sample: dict | None = None) -> dict:
    """Synaptic ops per sample (events x nonzero fan-out; the image layer: nonzero weights x output positions
    per call) and neuron updates per sample, from the event counts of the validation inputs."""
    ev = events_per_sample if events_per_sample is not None else manifest["backends"]["event"]["events_per_sample"]
    calls = calls_of(manifest)
    syn = 0.0
    for L in manifest["layers"]:
        if L["input"] == "image":
            syn += L["nnz"] * L["out_positions"] * calls
        else:
            syn += ev.get("events__" + L["name"].replace(".", "_"), 0.0) * L["mean_fanout_nonzero"]
    neurons = sum(int(np.prod(s)) for s in manifest["lif"]["state_shapes"])
    return {"synops_per_sample": syn, "neuron_steps_per_sample": neurons * int(manifest["timesteps"]), "calls": calls}


def fit_event_rates(bundle_dir, manifest: dict, log=print, repeats: int = 5) -> dict:
    """The event backend's rates on this machine: each validation input run alone (median of `repeats` calls)
    against its synaptic ops (its own event counts x nonzero fan-out), fit as latency = fixed + synops x rate by
    least squares; the fixed part is the call's overhead plus the neuron updates (the same for every input)."""
    import time

    from ...formats import bundle as bundle_fmt
    from ..runners import open_runner

    runner = open_runner(bundle_dir, manifest, backend="event")
    x, _ = bundle_fmt.validation_samples(bundle_dir)
    synops, lat = [], []
    for i in range(len(x)):
        xi = np.ascontiguousarray(x[i:i + 1])
        _, counts = runner.run(xi)
        ev = {k: float(v.sum()) for k, v in counts.items() if k.startswith("events__")}
        synops.append(event_workload(manifest, ev)["synops_per_sample"])
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            runner.run(xi, with_counts=False)
            times.append(time.perf_counter() - t0)
        lat.append(float(np.median(times)))
    s, t = np.array(synops), np.array(lat)
    neuron_steps = event_workload(manifest, {})["neuron_steps_per_sample"]
    if s.std() > 0.05 * max(s.mean(), 1.0):  # inputs with different spike counts: a slope and an intercept
        slope, fixed = np.polyfit(s, t, 1)
    else:  # all alike: the defaults' split of the mean between synapses and the fixed part
        syn_ns = EVENT_NS_PER_SYNOP * s.mean()
        share = syn_ns / (syn_ns + EVENT_NS_PER_NEURON_STEP * neuron_steps)
        slope, fixed = share * t.mean() / max(s.mean(), 1.0), (1 - share) * t.mean()
    slope, fixed = max(float(slope), 1e-12), max(float(fixed), 0.0)
    call_s = min(EVENT_CALL_S, fixed)
    out = {"event_ns_per_synop": slope * 1e9,
           "event_ns_per_neuron_step": (fixed - call_s) / max(neuron_steps, 1) * 1e9, "event_call_s": call_s,
           "event_samples": {"synops": [float(v) for v in s], "seconds": [float(v) for v in t],
                             "model": "seconds = event_call_s + neuron steps x event_ns_per_neuron_step + synops x "
                                      "event_ns_per_synop (1e-9 s/ns); fit on this bundle's validation inputs"}}
    log(f"calibrating: event backend {out['event_ns_per_synop']:.3g} ns per synaptic op, "
        f"{out['event_ns_per_neuron_step']:.3g} ns per neuron step ({len(x)} inputs)")
    return out


def predict_event(manifest: dict, batch: int, record: dict | None = None,
                   events_per_sample: dict | None = None) -> dict:
    w = event_workload(manifest, events_per_sample)
    rec = record or {}
    ns_syn = rec.get("event_ns_per_synop", EVENT_NS_PER_SYNOP)
    ns_neu = rec.get("event_ns_per_neuron_step", EVENT_NS_PER_NEURON_STEP)
    call_s = rec.get("event_call_s", EVENT_CALL_S)
    per_sample = (w["synops_per_sample"] * ns_syn + w["neuron_steps_per_sample"] * ns_neu) * 1e-9
    lat = per_sample * batch + w["calls"] * call_s
    return {"latency_s": lat, "workload": w, "rates": {"ns_per_synop": ns_syn, "ns_per_neuron_step": ns_neu,
                                                       "call_s": call_s},
            "source": "calibration record" if "event_ns_per_synop" in rec else "host-measured defaults"}
