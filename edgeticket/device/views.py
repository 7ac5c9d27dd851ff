"""Human views (torch-free): a bundle manifest, profile and predict results, the target list."""

from __future__ import annotations


def _mib(n) -> str:
    return f"{n / 2**20:.2f} MiB"


def _ms(s: float) -> str:
    return f"{1000 * s:.2f} ms"


def _mib1(b) -> str:
    return f"{b / 2**20:.1f} MiB"


def _pct(fraction) -> str:
    """A fraction (what every file holds) as the percent people read; '-' where there is none (no labels)."""
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def describe(m: dict) -> str:
    """The human view of a manifest (as formats.bundle.load returns it: the fields the device commands run on are
    checked there; a key this view reads beyond them that is missing or of the wrong type is one line too)."""
    from ..errors import EdgeTicketError

    try:
        return _describe(m)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        where = f"{m.get('bundle_dir')}/manifest.json" if isinstance(m, dict) and m.get("bundle_dir") else \
            "the bundle's manifest.json"
        what = f"has no {e.args[0]!r}" if isinstance(e, KeyError) and e.args else \
            f"holds a value of the wrong type ({str(e).splitlines()[0][:100] if str(e) else type(e).__name__})"
        raise EdgeTicketError(f"{where} {what}: the manifest was altered; copy the whole bundle folder again, or "
                              "re-compile the ticket") from None


def _describe(m: dict) -> str:
    w, p, v = m["weights"], m["memory_plan"], m["validation"]
    src = m["source_ticket"]
    lines = [
        f"bundle {m.get('bundle_dir', m['id'])}",
        f"  ticket     {src['dir']} (level {src['level']}, sparsity {100 * src['sparsity']:.2f}%)",
        f"  target     {m['target']['name']}   layout {m['layout']}   T={m['timesteps']}   opset {m['opset']}   "
        f"input {m['input']['shape']}",
        f"  weights    {w['format']} {w['storage']}: {w['stored_bytes']:,} B stored vs {w['dense_fp32_bytes']:,} B dense "
        f"fp32 ({w['dense_fp32_bytes'] / max(w['stored_bytes'], 1):.1f}x smaller), {w['ratio_to_floor']}x the entropy floor",
        "  layer                               shape            nnz/numel        code     stored B   floor x",
    ]
    for l in w["layers"]:
        lines.append(f"    {l['name'][:34]:34s} {str(l['shape']):16s} {l['nnz']:>7,}/{l['numel']:<9,} {l['code']:8s} "
                     f"{l['stored_bytes']:>9,}   {l['ratio_to_floor'] if l['ratio_to_floor'] else '-'}")
    verdict = "fits" if p["fits"] else "OVER BUDGET"
    lines += [
        f"  memory     {_mib(p['total_bytes'])} planned at batch {p['batch']} vs budget {_mib(p['budget_bytes'])}: {verdict}",
        f"             weights {_mib(p['weights_resident_bytes'])} resident, activations {_mib(p['activation_peak_bytes'])}, "
        f"state {_mib(p['state_bytes'])}, runtime {_mib(p['runtime_overhead_bytes'])}, load peak {_mib(p['load_peak_bytes'])}",
        f"  validation {'passed' if v['passed'] else 'FAILED'}: spikes equal per layer/timestep/sample on {v['inputs']} "
        f"inputs ({v['total_spikes']:,} spikes), logits max diff {v['logits_max_abs_diff']:.2g}; top-1 ticket "
        f"{_pct(v['accuracy']['ticket_pytorch'])} / bundle {_pct(v['accuracy']['bundle_onnxruntime'])}",
    ]
    if "quantization" in v:
        q = v["quantization"]
        lines.append(f"             {q['format']}: top-1 {_pct(q['accuracy'])} vs fp32 {_pct(q['accuracy_fp32'])}, "
                     f"agreement {_pct(q['prediction_agreement_with_fp32'])}")
    if "prediction" in m:
        pr = m["prediction"]
        lines.append(f"  predicted  {1000 * pr['latency_s']:.3g} ms at batch {pr['batch']} on {m['target']['name']} "
                     f"({pr['source']})")
    b = m.get("backends", {})
    ev = b.get("event")
    if ev and ev.get("built"):
        mem, val = ev["memory"], ev["validation"]
        emu = ev.get("emulated_check")
        lines.append(f"  event      {_mib(mem['weights_resident_bytes'])} resident ({mem['resident_over_packed']}x the packed "
                     f"ONNX weights), spikes equal to onnxruntime on {val['inputs']} inputs: {val['spikes_equal']}"
                     + (f"; {emu['emulator']} run of the {ev['library']['arch']} build: spikes equal" if emu and emu.get("ran")
                        else ""))
    elif ev:
        lines.append(f"  event      not built: {ev.get('reason')}")
    tv = b.get("tvm")
    if tv and tv.get("built"):
        lines.append(f"  tvm        {tv['library']} for {tv['target_desc']}"
                     + (f"; host build spikes equal to onnxruntime on {tv['validation']['inputs']} inputs"
                        if tv.get("validation") else ""))
    elif tv:
        lines.append(f"  tvm        not built: {tv.get('reason')}")
    trt = m.get("tensorrt")
    if trt:
        lines.append(f"  tensorrt   {trt['file']} ({trt['bytes']:,} B, weights dense) for TensorRT's ONNX parser; spikes "
                     f"equal to model.onnx on {trt['validation']['inputs']} inputs: {trt['validation']['spikes_equal']}")
    if "default" in b:
        lines.append(f"  backend    default {b['default']}: {b.get('reason', '')}")
    if "onnx_metadata" in m:
        lines += _onnx_metadata_lines(m["onnx_metadata"])
    for warn in m.get("warnings", []):
        lines.append(f"  warning    {warn}")
    return "\n".join(lines)


def _g(x) -> str:
    """A number in 4 significant digits; anything else as it is (metadata is data from a file)."""
    return f"{x:.4g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def _onnx_metadata_value(key: str, value: str) -> str:
    import json

    from ..formats import onnx_metadata

    short = key[len(onnx_metadata.PREFIX):] if key.startswith(onnx_metadata.PREFIX) else key
    try:
        v = json.loads(value) if key in onnx_metadata.JSON_KEYS else value
    except ValueError:
        v = value
    if short == "class_names" and isinstance(v, list):
        return ", ".join(map(str, v[:10])) + (f", ... ({len(v)} in all)" if len(v) > 10 else "")
    if short == "normalization" and isinstance(v, dict):
        def nums(xs):
            return "[" + ", ".join(map(_g, xs if isinstance(xs, list) else [xs])) + "]"
        return f"mean {nums(v.get('mean', []))} std {nums(v.get('std', []))}: {v.get('note', '')}"
    if short == "outputs" and isinstance(v, dict):
        return ", ".join(v)
    if short == "lif" and isinstance(v, dict):
        return f"tau {_g(v.get('tau'))}, v_threshold {_g(v.get('v_threshold'))}, reset {v.get('reset')}"
    if short == "sparsity" and isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{value} ({100 * v:.2f}% of the prunable weights pruned)"
    return value if len(value) <= 100 else value[:97] + "..."


def _onnx_metadata_lines(props: dict) -> list[str]:
    """model.onnx's metadata_props (formats/onnx_metadata.py), one key a line."""
    if not props:
        return ["  onnx meta  model.onnx has no metadata_props (compiled by an older edgeticket): re-compile the ticket"]
    width = max(len(k) for k in props)
    lines = [f"  onnx meta  model.onnx metadata_props ({len(props)} keys):"]
    lines += [f"             {k:{width}s}  {_onnx_metadata_value(k, v)}" for k, v in props.items()]
    return lines


def backends_table(r: dict) -> str:
    emulated = [p["device"]["emulator"] for p in r["profiles"].values() if p.get("emulated")]
    lines = [f"profile of {r['bundle']} at batch {r['batch']} ({r['runs']} runs each, one process per backend)",
             *([f"  EMULATED: {emulated[0]}: latencies are the emulator's, not the board's"] if emulated else []),
             "  backend        p50          vs onnxruntime   peak RSS     spikes equal to onnxruntime"]
    for b, row in r["backends"].items():
        ratio = f"{row['over_onnxruntime']:.3f}x" if row["over_onnxruntime"] is not None else "-"
        lines.append(f"  {b:14s} {_ms(row['p50_s']):12s} {ratio:16s} {_mib1(row['peak_rss_bytes']):12s} "
                     f"{row['spike_counts_equal_to_onnxruntime']}")
        if row.get("resident_weight_bytes"):
            lines.append(f"                 resident weights {row['resident_weight_bytes']:,} B (compressed, never densified)")
    lines.append(f"  written to {r['profile_json']}")
    return "\n".join(lines)


def profile_table(r: dict) -> str:
    b, d, lat, mem = r["bundle"], r["device"], r["latency"], r["memory"]
    lines = [
        f"profile of {b['dir']} with {r.get('backend', 'onnxruntime')} ({b['arch']}, {b['layout']}, T={b['timesteps']}, {b['weights']}, target {b['target']})",
        f"  device     {d['cpu']} ({d['machine']}, {d['cores']} cores, {_mib1(d['ram_bytes'] or 0)} RAM), {d['os']}, "
        f"onnxruntime {d['onnxruntime']} {d['provider']}",
        f"  latency    p50 {_ms(lat['p50_s'])}  p90 {_ms(lat['p90_s'])}  p99 {_ms(lat['p99_s'])}  min {_ms(lat['min_s'])}  "
        f"at batch {r['settings']['batch']}: {r['throughput_samples_per_s']:.1f} samples/s "
        f"({r['settings']['runs']} runs, {r['settings']['inputs']})",
        f"  load       {_ms(r['load']['seconds'])}",
        *([f"  EMULATED   {d['emulator']}: latencies are the emulator's, not the board's; spikes and SynOps hold"]
          if r.get("emulated") else []),
        f"  memory     peak RSS {_mib1(mem['peak_rss_bytes'])} (load {_mib1(mem['peak_rss_load_bytes'])}, inference "
        f"{_mib1(mem['peak_rss_inference_bytes'])}; process before load {_mib1(mem['process_baseline_bytes'])})",
        f"             plan {_mib1(mem['plan_total_bytes'])}, budget {_mib1(mem['budget_bytes'])}: {mem['verdict']}",
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
        f"  memory     {_mib1(mem['total_bytes'])} planned vs budget {_mib1(mem['budget_bytes'])}: "
        f"{'fits' if mem['total_bytes'] <= mem['budget_bytes'] else 'over budget'}",
    ])


def targets_table(targets) -> str:
    rows = [("target", "RAM", "model budget", "cores", "ONNX opset", "runtime", "description")]
    for t in targets:
        rows.append((t.name, f"{t.ram_bytes / 2**20:.0f} MiB", f"{t.model_budget_bytes / 2**20:.0f} MiB", str(t.cores),
                     str(t.max_opset), t.providers[0].replace("ExecutionProvider", ""), t.description))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r[:6], widths)) + "  " + r[6] for r in rows)


def machine_table(m: dict) -> str:
    return "\n".join([
        f"edgeticket {m['edgeticket']} on {m['arch']} ({m['cpu']}, {m['cores']} cores, {_mib1(m['ram_bytes'] or 0)} RAM)",
        f"  os         {m['os']}, Python {m['python']}",
        f"  runtimes   numpy {m['numpy']}, onnxruntime {m['onnxruntime']} ({', '.join(m['onnxruntime_providers'])}), "
        f"TVM runtime {'installed' if m['tvm_runtime'] else 'not installed'}",
        f"  emulated   {m['emulator'] or 'no'}",
    ])
