"""Human tables for profile and predict results (no torch)."""

from __future__ import annotations


def _ms(s: float) -> str:
    return f"{1000 * s:.2f} ms"


def _mib(b) -> str:
    return f"{b / 2**20:.1f} MiB"


def backends_table(r: dict) -> str:
    lines = [f"profile of {r['bundle']} at batch {r['batch']} ({r['runs']} runs each, one process per backend)",
             "  backend        p50          vs onnxruntime   peak RSS     spikes equal to onnxruntime"]
    for b, row in r["backends"].items():
        ratio = f"{row['over_onnxruntime']:.3f}x" if row["over_onnxruntime"] is not None else "-"
        lines.append(f"  {b:14s} {_ms(row['p50_s']):12s} {ratio:16s} {_mib(row['peak_rss_bytes']):12s} "
                     f"{row['spike_counts_equal_to_onnxruntime']}")
        if row.get("resident_weight_bytes"):
            lines.append(f"                 resident weights {row['resident_weight_bytes']:,} B (compressed, never densified)")
    lines.append(f"  written to {r['profile_json']}")
    return "\n".join(lines)


def profile_table(r: dict) -> str:
    b, d, lat, mem = r["bundle"], r["device"], r["latency"], r["memory"]
    lines = [
        f"profile of {b['dir']} with {r.get('backend', 'onnxruntime')} ({b['arch']}, {b['layout']}, T={b['timesteps']}, {b['weights']}, target {b['target']})",
        f"  device     {d['cpu']} ({d['machine']}, {d['cores']} cores, {_mib(d['ram_bytes'] or 0)} RAM), {d['os']}, "
        f"onnxruntime {d['onnxruntime']} {d['provider']}",
        f"  latency    p50 {_ms(lat['p50_s'])}  p90 {_ms(lat['p90_s'])}  p99 {_ms(lat['p99_s'])}  min {_ms(lat['min_s'])}  "
        f"at batch {r['settings']['batch']}: {r['throughput_samples_per_s']:.1f} samples/s "
        f"({r['settings']['runs']} runs, {r['settings']['inputs']} inputs)",
        f"  load       {_ms(r['load']['seconds'])}",
        f"  memory     peak RSS {_mib(mem['peak_rss_bytes'])} (load {_mib(mem['peak_rss_load_bytes'])}, inference "
        f"{_mib(mem['peak_rss_inference_bytes'])}; process before load {_mib(mem['process_baseline_bytes'])})",
        f"             plan {_mib(mem['plan_total_bytes'])}, budget {_mib(mem['budget_bytes'])}: {mem['verdict']}",
        "  spikes     layer                      rate     per timestep",
    ]
    for name, s in r["snn"]["spike_rates"].items():
        per_t = " ".join(f"{v:.3f}" for v in s["rate_per_timestep"])
        lines.append(f"             {name[:26]:26s} {s['rate']:.4f}   {per_t}")
    syn = r["snn"]["synops"]
    lines.append(f"  SynOps     {syn['synops_per_sample']:,.0f} per sample vs {syn['dense_macs_per_sample']:,} dense MACs "
                 f"({syn['synops_over_dense_macs']:.3f}x); nonzero-weight MACs {syn['nonzero_weight_macs_per_sample']:,.0f}")
    if "prediction" in r:
        p = r["prediction"]
        lines.append(f"  predicted  {_ms(p['latency_s'])} (measured/predicted {p['measured_over_predicted']:.2f}x; {p['source']})")
    if "calibration" in r:
        c = r["calibration"]["record"]
        lines.append(f"  calibrated conv {c['conv_gflops']:.1f} GFLOP/s, gemm {c['gemm_gflops']:.1f} GFLOP/s, "
                     f"{c['gbytes_per_s']:.1f} GB/s, {1e6 * c['node_overhead_s']:.1f} us/node, "
                     f"{1e6 * c['call_overhead_s']:.1f} us/call -> {r['calibration']['record_file']}")
    lines.append(f"  written    {r.get('profile_json', '')}")
    return "\n".join(lines)


def predict_table(bundle_dir: str, target: str, lat: dict, mem: dict) -> str:
    b = lat["breakdown"]
    return "\n".join([
        f"prediction for {bundle_dir} on {target} at batch {lat['batch']} ({lat['source']})",
        f"  latency    {_ms(lat['latency_s'])} = conv {_ms(b['conv_s'])} + gemm {_ms(b['gemm_s'])} + LIF {_ms(b['lif_s'])}"
        f" + nodes {_ms(b['nodes_s'])} + calls {_ms(b['calls_s'])}",
        f"  memory     {_mib(mem['total_bytes'])} planned vs budget {_mib(mem['budget_bytes'])}: "
        f"{'fits' if mem['total_bytes'] <= mem['budget_bytes'] else 'over budget'}",
    ])
