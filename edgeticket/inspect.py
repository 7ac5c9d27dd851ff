"""Human view of a bundle manifest (torch-free)."""

from __future__ import annotations


def _mib(n) -> str:
    return f"{n / 2**20:.2f} MiB"


def describe(m: dict) -> str:
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
        f"{v['accuracy']['ticket_pytorch']:.1f}% / bundle {v['accuracy']['bundle_onnxruntime']:.1f}%",
    ]
    if "quantization" in v:
        q = v["quantization"]
        lines.append(f"             {q['format']}: top-1 {q['accuracy']}% vs fp32 {q['accuracy_fp32']}%, agreement "
                     f"{q['prediction_agreement_with_fp32']:.1f}%")
    if "prediction" in m:
        pr = m["prediction"]
        lines.append(f"  predicted  {1000 * pr['latency_s']:.3g} ms at batch {pr['batch']} on {m['target']['name']} "
                     f"({pr['source']})")
    b = m.get("backends", {})
    sp = b.get("sparse")
    if sp and sp.get("built"):
        mem, val = sp["memory"], sp["validation"]
        emu = sp.get("emulated_check")
        lines.append(f"  sparse     {_mib(mem['weights_resident_bytes'])} resident ({mem['resident_over_packed']}x the packed "
                     f"ONNX weights), spikes equal to onnxruntime on {val['inputs']} inputs: {val['spikes_equal']}"
                     + (f"; {emu['emulator']} run of the {sp['library']['arch']} build: spikes equal" if emu and emu.get("ran")
                        else ""))
    elif sp:
        lines.append(f"  sparse     not built: {sp.get('reason')}")
    tv = b.get("tvm")
    if tv and tv.get("built"):
        lines.append(f"  tvm        {tv['library']} for {tv['target_desc']}"
                     + (f"; host build spikes equal to onnxruntime on {tv['validation']['inputs']} inputs"
                        if tv.get("validation") else ""))
    elif tv:
        lines.append(f"  tvm        not built: {tv.get('reason')}")
    if "default" in b:
        lines.append(f"  backend    default {b['default']}: {b.get('reason', '')}")
    for warn in m.get("warnings", []):
        lines.append(f"  warning    {warn}")
    return "\n".join(lines)
