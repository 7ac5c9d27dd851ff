"""Device microbenchmarks for calibration records: conv and gemm throughput through onnxruntime (at the bundle's
conv shapes and a fixed set), memory bandwidth, per-node and per-call overhead, and the runtime's resident
baseline. The tiny benchmark graphs are written by tiny_onnx (no `onnx` package, no torch)."""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timezone

import numpy as np

from ...formats.bundle import runs_per_call
from ..runners.onnx_runner import make_session
from . import rss
from .tiny_onnx import initializer, model, node, value_info

STANDARD_CONVS = [(5, 16, 32, 4), (5, 32, 32, 8), (5, 32, 64, 16), (5, 64, 64, 16), (5, 64, 128, 8), (5, 128, 128, 8),
                  (5, 128, 256, 4), (20, 64, 64, 16)]


def fit_rate_and_fixed(samples: list[tuple[float, float]], call_overhead_s: float = 0.0) -> tuple[float, float]:
    """Fit t - call_overhead = flops / rate + fixed over (flops, seconds) samples of single-conv sessions, in
    relative error (each row weighted by 1/t, so small maps count as much as large ones). Returns
    (GFLOP/s, fixed seconds per conv); a negative intercept is clamped to 0 and the rate refitted."""
    f = np.array([s[0] for s in samples], float)
    t = np.maximum(np.array([s[1] for s in samples], float) - call_overhead_s, 1e-9)
    w = 1.0 / t
    A = np.stack([f * w, w], 1)
    (a, b), *_ = np.linalg.lstsq(A, np.ones_like(t), rcond=None)
    if b < 0 or a <= 0:
        a, b = float(np.median(t / f)), 0.0
    return 1.0 / a / 1e9, float(b)


def _session(graph_nodes, inputs, outputs, inits):
    return make_session(model(graph_nodes, inputs, outputs, inits))


def _median_time(fn, reps: int) -> float:
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def conv_time(n: int, cin: int, cout: int, hw: int, reps: int = 10) -> tuple[float, float]:
    """(FLOPs, median seconds) of one 3x3 conv through onnxruntime."""
    w = initializer("w", np.random.RandomState(0).randn(cout, cin, 3, 3).astype(np.float32) * 0.1)
    s = _session([node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [value_info("x", [n, cin, hw, hw])],
                 [value_info("y", [n, cout, hw, hw])], [w])
    x = (np.random.RandomState(1).rand(n, cin, hw, hw) < 0.2).astype(np.float32)
    t = _median_time(lambda: s.run(None, {"x": x}), reps)
    return 2 * n * cout * hw * hw * cin * 9, t


def gemm_gflops(m: int = 64, k: int = 512, n: int = 512, reps: int = 20) -> float:
    w = initializer("w", np.random.RandomState(0).randn(k, n).astype(np.float32))
    s = _session([node("MatMul", ["x", "w"], ["y"])], [value_info("x", [m, k])], [value_info("y", [m, n])], [w])
    x = np.random.RandomState(1).randn(m, k).astype(np.float32)
    return 2 * m * k * n / _median_time(lambda: s.run(None, {"x": x}), reps) / 1e9


def bandwidth_gbytes_per_s(mib: int = 64, reps: int = 5) -> float:
    a = np.ones(mib * 2**20 // 4, np.float32)
    b = np.empty_like(a)
    return 2 * a.nbytes / _median_time(lambda: np.copyto(b, a), reps) / 1e9


def overheads(chain: int = 200, reps: int = 50) -> tuple[float, float]:
    """(per executed node, per run call) seconds, from a chain of small Adds."""
    def chain_session(k):
        nodes = [node("Identity", ["x"], ["t0"])] + [node("Add", [f"t{i}", "x"], [f"t{i + 1}"]) for i in range(k)]
        return _session(nodes, [value_info("x", [1, 64])], [value_info(f"t{k}", [1, 64])], [])

    x = np.ones((1, 64), np.float32)
    s1, sk = chain_session(1), chain_session(chain)
    t1 = _median_time(lambda: s1.run(None, {"x": x}), reps)
    tk = _median_time(lambda: sk.run(None, {"x": x}), reps)
    return max(tk - t1, 0.0) / (chain - 1), t1


def run(manifest: dict, batch: int, runtime_overhead_bytes: int, device_facts: dict, target: str,
        measured: dict | None = None, log=print) -> dict:
    T = int(manifest["timesteps"])
    shapes = []
    for L in manifest["layers"]:
        if L["kind"] == "conv" and len(L["in_shape"]) == 3 and L["in_shape"][1] == L["out_shape"][1]:
            n = batch * runs_per_call(L, T)
            shapes.append((n, L["in_shape"][0], L["out_shape"][0], L["in_shape"][1]))
    log("calibrating: conv throughput ...")
    bundle_convs = {f"{n}x{ci}x{co}x{hw}": conv_time(n, ci, co, hw) for n, ci, co, hw in sorted(set(shapes))[:8]}
    standard = {f"{n}x{ci}x{co}x{hw}": conv_time(n, ci, co, hw) for n, ci, co, hw in STANDARD_CONVS}
    log("calibrating: gemm, memory bandwidth, overheads ...")
    node_s, call_s = overheads()
    rate, fixed = fit_rate_and_fixed(list(standard.values()) + list(bundle_convs.values()), call_s)
    rec = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "target": target,
        "device": device_facts,
        "conv_gflops": rate,
        "conv_fixed_s": fixed,
        "conv_samples": {"standard": {k: {"flops": f, "seconds": t} for k, (f, t) in standard.items()},
                         "bundle": {k: {"flops": f, "seconds": t} for k, (f, t) in bundle_convs.items()},
                         "shape_key": "N x Cin x Cout x HW (3x3, pad 1)",
                         "model": "seconds = flops / (conv_gflops * 1e9) + conv_fixed_s"},
        "gemm_gflops": gemm_gflops(),
        "gbytes_per_s": bandwidth_gbytes_per_s(),
        "node_overhead_s": node_s,
        "call_overhead_s": call_s,
        "runtime_overhead_bytes": int(runtime_overhead_bytes),
        "bundle": {"id": manifest["id"], "arch": manifest["arch"], "layout": manifest["layout"]},
        "measured": measured or {},
        "rss_now_bytes": rss.rss(),
    }
    return rec
