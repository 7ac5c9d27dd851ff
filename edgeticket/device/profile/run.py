"""edgeticket profile BUNDLE: measure a bundle on this machine (numpy + onnxruntime; tvm for that backend)."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

from ... import console, store
from ...errors import EdgeTicketError
from ...formats import bundle as bundle_fmt
from ...formats import names
from .. import calibration, machine, runners
from . import rss, snn_stats

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ProfileSettings:
    """How a bundle is measured (the same for every backend, so profile --backend all passes them on)."""

    runs: int = 50  # timed runs after warm-up
    warmup: int = 5  # untimed runs
    batch: int = 1  # samples per run
    threads: Optional[int] = None  # intra-op threads (default: the backend's own choice)
    random_inputs: bool = False  # random inputs instead of the bundle's validation samples

    def check(self) -> None:
        for option, value, least in (("--runs", self.runs, 1), ("--warmup", self.warmup, 0), ("--batch", self.batch, 1),
                                     ("--threads", self.threads, 1)):
            if option == "--threads" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise EdgeTicketError(f"{option} must be >= {least} (got {value!r})")

    def cli_args(self) -> list[str]:
        args = ["--runs", str(self.runs), "--warmup", str(self.warmup), "--batch", str(self.batch)]
        return args + (["--threads", str(self.threads)] if self.threads else []) + \
            (["--random-inputs"] if self.random_inputs else [])


def recorded_backend(bundle_dir: Path) -> tuple[str, str]:
    """(the backend the bundle records as its default (compile's cost model) where it can run on this machine,
    else onnxruntime; a note saying which and why)."""
    manifest = bundle_fmt.read_manifest(bundle_dir)
    recorded = (manifest.get("backends") or {}).get("default") or "onnxruntime"
    recorded = runners.RENAMED.get(recorded, recorded)
    if recorded in runners.BACKENDS:
        why = runners.unavailable_reason(manifest, recorded)
        if why is None:
            return recorded, f"backend: {recorded} (the bundle's default; --backend chooses another)"
        return "onnxruntime", f"backend: onnxruntime (the bundle's default {recorded} cannot run here: {why})"
    return "onnxruntime", "backend: onnxruntime"


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def inputs_for(bundle_dir: Path, manifest: dict, batch: int, random_inputs: bool) -> tuple[np.ndarray, str]:
    shape = manifest["input"]["shape"][1:]
    if random_inputs:
        return np.random.RandomState(0).randn(batch, *shape).astype(np.float32), "random inputs"
    x, _ = bundle_fmt.validation_samples(bundle_dir, manifest)
    reps = -(-batch // len(x))
    return np.concatenate([x] * reps)[:batch], "validation samples"


def profile(bundle_dir: str | Path, settings: ProfileSettings = ProfileSettings(), backend: str | None = None,
            calibrate: bool = False, target: str | None = None, calibration_dir: str | Path | None = None,
            out: str | Path | None = None, log=print) -> dict:
    """Latency, peak RSS, spike rates and SynOps of one backend on this machine (None: the bundle's recorded
    default where it runs here); with `calibrate`, also the microbenchmarks of a calibration record for `target`
    (default: the bundle's). Writes profile.json."""
    bundle_dir = Path(bundle_dir)
    settings.check()
    if target is not None:  # an unknown --target is refused before anything is measured
        from ..targets import load_target

        load_target(target)
    runs, warmup, batch, threads = settings.runs, settings.warmup, settings.batch, settings.threads
    path = output_path(out, bundle_dir)
    chosen = None
    if backend is None:  # said once the bundle has passed its checks: a bad bundle is one line, not a note + error
        backend, chosen = ("onnxruntime", None) if calibrate or target else recorded_backend(bundle_dir)
    runners.check_backend(backend)
    if calibrate and backend != "onnxruntime":
        raise EdgeTicketError("--calibrate measures onnxruntime's rates: run it with --backend onnxruntime")
    emulator = machine.emulated_by()
    if calibrate and emulator:
        raise EdgeTicketError(f"--calibrate refused: this process runs under an emulator ({emulator}), so its "
                              "latencies are the emulator's, not the board's; calibrate on the board itself")
    rss_before = rss.rss()
    can_reset = rss.reset_peak()
    t0 = time.perf_counter()
    manifest = bundle_fmt.load(bundle_dir)  # sha256s verified
    runner = runners.open_runner(bundle_dir, manifest, backend, threads=threads)
    load_s = time.perf_counter() - t0
    load_peak = rss.peak()
    x, source = inputs_for(bundle_dir, manifest, batch, settings.random_inputs)  # checked before the first note
    if chosen:
        log(chosen)

    log(f"profiling {bundle_dir.name} with {backend}: {manifest['layout']}, T={manifest['timesteps']}, batch {batch}, "
        f"{source}, {warmup} warm-up + {runs} timed runs")
    for _ in range(warmup):
        runner.run(x, with_counts=False)
    rss.reset_peak()
    times = []
    for _ in console.progress(range(runs), total=runs, desc=f"{backend} runs"):
        t = time.perf_counter()
        runner.run(x, with_counts=False)
        times.append(time.perf_counter() - t)
    infer_peak = rss.peak()

    # SNN statistics over the validation samples (or the random batch), same graph, counts fetched
    xs, _ = (bundle_fmt.validation_samples(bundle_dir, manifest) if not settings.random_inputs else (x, None))
    counts: dict = {}
    for s in range(0, len(xs), 64):
        _, c = runner.run(xs[s:s + 64])
        for k, v in c.items():
            counts[k] = v if k not in counts else np.concatenate([counts[k], v], axis=1)
    rates = snn_stats.spike_rates(counts, manifest)
    syn = snn_stats.synops(counts, manifest)

    budget = manifest["target"]["model_budget_bytes"]
    measured_peak = max(load_peak, infer_peak)
    result = {
        "format_version": FORMAT_VERSION,
        "kind": "profile",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bundle": {"id": manifest["id"], "dir": str(bundle_dir), "arch": manifest["arch"], "layout": manifest["layout"],
                   "timesteps": manifest["timesteps"], "target": manifest["target"]["name"],
                   "weights": manifest["weights"]["format"]},
        "backend": backend,
        "emulated": emulator is not None,  # latencies under an emulator say nothing about the board
        "device": {**machine.facts(),
                   "provider": runner.provider if backend == "onnxruntime" else backend,
                   "intra_op_threads": threads or "onnxruntime default"},
        "settings": {"runs": runs, "warmup": warmup, "batch": batch, "inputs": source,
                     "snn_stats_inputs": int(len(xs))},
        "load": {"seconds": load_s, "rss_before_bytes": rss_before, "peak_rss_bytes": load_peak,
                 "peak_resettable": can_reset},
        "latency": {"p50_s": _pct(times, 50), "p90_s": _pct(times, 90), "p99_s": _pct(times, 99),
                    "min_s": min(times), "mean_s": float(np.mean(times))},
        "throughput_samples_per_s": batch / statistics.median(times),
        "memory": {"peak_rss_load_bytes": load_peak, "peak_rss_inference_bytes": infer_peak,
                   "peak_rss_bytes": measured_peak, "process_baseline_bytes": rss_before,
                   "plan": manifest["memory_plan"], "plan_total_bytes": manifest["memory_plan"]["total_bytes"],
                   "budget_bytes": budget, "fits": measured_peak <= budget,
                   "verdict": "fits" if measured_peak <= budget else "over budget"},
        "snn": {"spike_rates": rates, "synops": syn},
    }
    target_name = target or manifest["target"]["name"]
    if backend != "onnxruntime":
        result["memory"]["plan_note"] = "the plan is onnxruntime's; the event backend's own figures are in backends"
        if backend == "event":
            result["memory"]["event_resident_weight_bytes"] = runner.resident_bytes
    if calibrate:
        result["calibration"] = _calibrate(bundle_dir, manifest, batch, rss_before, result, target_name,
                                           calibration_dir, log)
    rec = calibration.newest_record(target_name, calibration_dir)
    if rec is not None and _same_machine_kind(rec) and backend == "onnxruntime" and not emulator:
        from ..targets import load_target
        from .predict import predict_latency

        pred = predict_latency(manifest, batch, load_target(target_name), rec)
        result["prediction"] = {"latency_s": pred["latency_s"], "source": pred["source"],
                                "measured_over_predicted": result["latency"]["p50_s"] / pred["latency_s"]}
    result["profile_json"] = str(_write(result, path))
    return result


def output_path(out: str | Path | None, bundle_dir: Path) -> Path:
    """Where profile.json goes (--out, else inside the bundle), checked before anything is measured."""
    path = Path(out) if out else Path(bundle_dir) / names.PROFILE_JSON
    nearest = path.parent.absolute()
    while not nearest.exists():  # folders that do not exist yet are made when the file is written
        nearest = nearest.parent
    if path.is_dir() or not nearest.is_dir() or not os.access(nearest, os.W_OK):
        raise EdgeTicketError(f"cannot write {path} (not a writable file location): give a writable file with --out")
    return path


def _write(result: dict, path: Path) -> Path:
    try:
        return store.write_json(path, result)
    except OSError as e:
        raise EdgeTicketError(f"cannot write {path} ({e.strerror}): give a writable file with --out") from None


def _same_machine_kind(rec: dict) -> bool:
    recorded = rec.get("device", {}).get("machine")
    return recorded is None or machine.normalise_arch(recorded) == machine.machine_arch()


def _calibrate(bundle_dir, manifest, batch, baseline, result, target_name, calibration_dir, log) -> dict:
    from ..targets import load_target
    from . import microbench

    t = load_target(target_name)
    if t.arch != machine.machine_arch():
        raise EdgeTicketError(f"this machine is {machine.machine_arch()} but target '{t.name}' is {t.arch}: calibrate on "
                              f"the target itself, or name this machine's target with --target (e.g. host)")
    measured = {"latency_p50_s": result["latency"]["p50_s"], "peak_rss_bytes": result["memory"]["peak_rss_bytes"],
                "batch": batch, "layout": manifest["layout"]}
    # the runtime's fixed cost is what the measured peak holds beyond the plan's model-dependent parts
    # (process + numpy + onnxruntime + its session arena and threads); never less than the pre-load baseline
    plan = manifest["memory_plan"]
    model_part = plan["total_bytes"] - plan["runtime_overhead_bytes"]
    overhead = max(baseline, result["memory"]["peak_rss_bytes"] - model_part)
    rec = microbench.run(manifest, batch, overhead, result["device"], t.name, measured, log)
    if runners.unavailable_reason(manifest, "event") is None:  # the event backend's rates, fit on this bundle
        from .predict import fit_event_rates

        rec.update(fit_event_rates(bundle_dir, manifest, log))
    path = calibration.append_record(t.name, rec, calibration_dir)
    log(f"calibration record appended to {path}")
    return {"record_file": str(path), "record": rec}


def profile_backends(bundle_dir: str | Path, backends: list[str], settings: ProfileSettings = ProfileSettings(),
                     out: str | Path | None = None, log=print) -> dict:
    """Profiles each backend in its own process (so each peak RSS is that backend's alone) and puts the
    results side by side; latency ratios are to onnxruntime measured in the same session."""
    import json
    import subprocess
    import sys
    import tempfile

    bundle_dir = Path(bundle_dir)
    path = output_path(out, bundle_dir)
    manifest = bundle_fmt.load(bundle_dir)
    for b in backends:
        reason = runners.unavailable_reason(manifest, b)
        if reason:
            raise EdgeTicketError(f"{bundle_dir}: {reason}")
    results = {}
    with tempfile.TemporaryDirectory() as d:
        for b in backends:
            one = Path(d) / f"{b}.json"
            cmd = [sys.executable, "-m", "edgeticket", "profile", str(bundle_dir), "--backend", b,
                   *settings.cli_args(), "--out", str(one), "--json"]
            log(f"profiling backend {b} in its own process")
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise EdgeTicketError(f"profiling backend {b} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
            results[b] = json.loads(one.read_text())
    base = results.get("onnxruntime")
    rows = {}
    for b, r in results.items():
        rows[b] = {"p50_s": r["latency"]["p50_s"], "peak_rss_bytes": r["memory"]["peak_rss_bytes"],
                   "over_onnxruntime": (r["latency"]["p50_s"] / base["latency"]["p50_s"]) if base else None,
                   "spike_counts_equal_to_onnxruntime": (r["snn"]["spike_rates"] == base["snn"]["spike_rates"])
                   if base else None}
        if b == "event":
            rows[b]["resident_weight_bytes"] = r["memory"].get("event_resident_weight_bytes")
    combined = {"format_version": FORMAT_VERSION, "kind": "profile-backends", "bundle": str(bundle_dir),
                "batch": settings.batch, "runs": settings.runs,
                "emulated": any(r.get("emulated") for r in results.values()), "backends": rows, "profiles": results}
    combined["profile_json"] = str(_write(combined, path))
    return combined
