"""The bundle page (`edgeticket inspect BUNDLE --html FILE`): one self-contained HTML file a person opens in a
browser. From the manifest: target, layout, T, weights, validation, sparsity per layer, the memory plan against
the target's budget; from the profiles in the bundle folder (profile.json, profile-<host>.json): spike rates per
layer and timestep, synaptic operations, backend latencies side by side, peak RSS, and the list of profiles.

    html = inspect_html(manifest, load_profiles(bundle_dir))     # or write_inspect_html(bundle_dir, out)

Standard library only (the base install), like device/html.py which draws it. The manifest is taken as
`formats.bundle.read_manifest` / `load` return it (format_version 4: sparsity, accuracies and agreements are
fractions; a version-2 file, percent, or a version-3 one, without lif.neurons, is converted there, the one place):
the page converts and guesses no units.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from . import html as H
from ..errors import EdgeTicketError
from ..formats import names

LOCAL = "this machine"
MANIFEST_VERSION = 4  # formats.bundle.FORMAT_VERSION (not imported here: formats.bundle imports numpy)
# validation.quantization's fractions (docs/bundle-format.md), shown in percent
QUANTIZATION_FRACTIONS = ("accuracy", "accuracy_fp32", "prediction_agreement_with_fp32", "max_drop")


# ---------------------------------------------------------------- reading

def load_profiles(bundle_dir) -> list:
    """The bundle folder's profiles: profile.json first, then profile-<host>.json by name. Each is the JSON as
    written plus "_file" (its name); one that cannot be read is {"_file", "_error"} (the page lists it)."""
    bundle_dir = Path(bundle_dir)
    files = sorted(bundle_dir.glob("profile*.json"), key=lambda p: (p.name != names.PROFILE_JSON, p.name))
    out = []
    for f in files:
        try:
            doc = json.loads(f.read_text())
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            doc["_file"] = f.name
        except (OSError, ValueError) as e:
            doc = {"_file": f.name, "_error": f"{type(e).__name__}: {e}"}
        out.append(doc)
    return out


def usable_profiles(manifest: dict, profiles: list) -> list:
    """The profiles the page can draw. Profile files are not covered by the manifest's sha256s (a board sends
    profile-<host>.json back), so one whose values are not a profile's (a string latency, NaN, a list for a
    dict) is listed as unreadable instead of ending the page in a traceback."""
    out = []
    for p in profiles:
        if "_error" not in p:
            try:
                inspect_html(manifest, [p])
            except (TypeError, ValueError, OverflowError, AttributeError, KeyError, IndexError) as e:
                p = {"_file": p.get("_file", "profile"), "_error": f"its values are not a profile's ({type(e).__name__})"}
        out.append(p)
    return out


def bundle_html(bundle_dir) -> str:
    """The page of a bundle folder: its manifest (every sha256 checked) and the profiles beside it."""
    from ..formats import bundle

    m = bundle.load(Path(bundle_dir))
    m.setdefault("bundle_dir", str(bundle_dir))
    return inspect_html(m, usable_profiles(m, load_profiles(bundle_dir)))


def write_inspect_html(bundle_dir, out) -> Path:
    """Write the bundle page to `out` (atomically); returns its path."""
    from .. import store

    return store.write_text(Path(out), bundle_html(bundle_dir))


# ---------------------------------------------------------------- profiles: what the page needs of them

def _where(p: dict) -> str:
    """Who measured: this machine for profile.json, the board's host for profile-<host>.json."""
    remote = p.get("remote") or {}
    if remote.get("host"):
        return str(remote["host"])
    f = p.get("_file", "")
    if f.startswith("profile-") and f.endswith(".json"):
        return f[len("profile-"):-len(".json")]
    return LOCAL


def _single_profiles(p: dict) -> dict:
    """backend -> its single-backend profile (kind "profile", or each of a "profile-backends"' profiles)."""
    if p.get("kind") == "profile-backends":
        return {k: v for k, v in (p.get("profiles") or {}).items() if isinstance(v, dict)}
    if p.get("backend") or p.get("latency"):
        return {str(p.get("backend") or "onnxruntime"): p}
    return {}


def _latencies(p: dict) -> dict:
    """backend -> {p50_s, peak_rss_bytes, spikes_equal, over_onnxruntime, ...} of one profile file."""
    out = {}
    if p.get("kind") == "profile-backends":
        for name, row in (p.get("backends") or {}).items():
            if isinstance(row, dict):
                out[name] = dict(row)
    for name, single in _single_profiles(p).items():
        row = out.setdefault(name, {})
        lat = single.get("latency") or {}
        mem = single.get("memory") or {}
        for k in ("p50_s", "p90_s", "p99_s", "mean_s", "min_s"):
            if lat.get(k) is not None:
                row.setdefault(k, lat[k])
        if mem.get("peak_rss_bytes") is not None:
            row.setdefault("peak_rss_bytes", mem["peak_rss_bytes"])
        if single.get("throughput_samples_per_s") is not None:
            row.setdefault("throughput", single["throughput_samples_per_s"])
    return out


def _snn(profiles: list) -> tuple:
    """(snn statistics, the profile file they came from): the first profile that has them (spike counts are
    equal across backends), this machine's before the boards'."""
    for p in profiles:
        for single in ([p] + list(_single_profiles(p).values())):
            snn = single.get("snn")
            if isinstance(snn, dict) and snn.get("spike_rates"):
                return snn, p.get("_file", "profile")
    return None, None


def _is_emulated(p: dict) -> bool:
    return bool(p.get("emulated")) or any(s.get("emulated") for s in _single_profiles(p).values())


def _date(p: dict) -> Optional[str]:
    if p.get("date"):
        return p["date"]
    dates = [s.get("date") for s in _single_profiles(p).values() if s.get("date")]
    return min(dates) if dates else None


def _device(p: dict) -> Optional[dict]:
    for s in [p] + list(_single_profiles(p).values()):
        if isinstance(s.get("device"), dict):
            return s["device"]
    return None


# ---------------------------------------------------------------- sections

def _header_facts(m: dict) -> H.Raw:
    t = m.get("target") or {}
    w = m.get("weights") or {}
    v = m.get("validation") or {}
    src = m.get("source_ticket") or {}
    inp = m.get("input") or {}
    be = m.get("backends") or {}
    built = [k for k, x in be.items() if isinstance(x, dict) and x.get("built")]
    skipped = [f"{k} ({x.get('reason')})" for k, x in be.items() if isinstance(x, dict) and not x.get("built")
               and x.get("reason")]
    plan = m.get("memory_plan") or {}
    fits = plan.get("fits")
    vacc = v.get("accuracy") or {}
    val = None
    if v:
        parts = [H.badge(v.get("passed"), "passed" if v.get("passed") else "FAILED")]
        parts.append(f" spikes {'equal' if v.get('spikes_equal') else 'DIFFER'} per layer/timestep/sample on "
                     f"{v.get('inputs', '?')} inputs ({H.num(v.get('total_spikes'))} spikes)")
        if v.get("first_mismatch"):
            parts.append(f"; first mismatch {json.dumps(v['first_mismatch'])}")
        parts.append(f"; logits max diff {H.num(v.get('logits_max_abs_diff'))}")
        if vacc:
            parts.append("; top-1 " + ", ".join(f"{k.replace('_', ' ')} {H.pct(a)}"
                                                for k, a in vacc.items() if isinstance(a, (int, float))))
        q = v.get("quantization")
        if isinstance(q, dict):
            parts.append("; quantization " + ", ".join(
                f"{k.replace('_', ' ')} {H.pct(x) if k in QUANTIZATION_FRACTIONS and x is not None else x}"
                for k, x in q.items()))
        val = H.join(parts)
    sp = w.get("sparsity", src.get("sparsity"))
    weights = None
    if w:
        weights = (f"{w.get('format', '?')} {w.get('storage', '')}: {H.fmt_bytes(w.get('stored_bytes'))} stored vs "
                   f"{H.fmt_bytes(w.get('dense_fp32_bytes'))} dense fp32"
                   + (f", {H.num(w.get('ratio_to_floor'))}x the entropy floor" if w.get("ratio_to_floor") else "")
                   + (f"; {H.pct(sp)} sparse ({H.num(w.get('prunable_nnz'))} of {H.num(w.get('prunable_numel'))} "
                      "prunable weights kept)" if sp is not None else ""))
    ticket = None
    if src:
        acc = (src.get("accuracy") or {}).get("final") if isinstance(src.get("accuracy"), dict) else src.get("accuracy")
        ticket = (f"{src.get('run', '?')} level {src.get('level', '?')} ({src.get('branch', 'ticket')}), "
                  f"sparsity {H.pct(src.get('sparsity'))}"
                  + (f", test top-1 {H.pct(acc)}" if acc is not None else ""))
    memory = None
    if plan:
        memory = H.join([H.badge(fits, "fits" if fits else "OVER BUDGET"),
                         f" {H.fmt_bytes(plan.get('total_bytes'))} planned at batch {plan.get('batch', 1)} vs budget "
                         f"{H.fmt_bytes(plan.get('budget_bytes'))}"
                         + (" (compiled with --force)" if (m.get("budget_check") or {}).get("forced") else "")])
    default = None
    if be.get("default"):
        default = f"{be['default']}" + (f": {be['reason']}" if be.get("reason") else "")
    return H.facts([
        ("target", f"{t.get('name', '?')} (model budget {H.fmt_bytes(t.get('model_budget_bytes'))}, RAM "
                   f"{H.fmt_bytes(t.get('ram_bytes'))}, providers {', '.join(t.get('providers') or []) or '–'})"),
        ("network", f"{m.get('arch', '?')}, {m.get('num_classes', '?')} classes, input {inp.get('shape', '?')}"),
        ("layout", f"{m.get('layout', '?')}, T = {m.get('timesteps', '?')}, ONNX opset {m.get('opset', '?')}"),
        ("weights", weights),
        ("memory", memory),
        ("validation", val),
        ("backends", (", ".join(built) or "–") + (f"; skipped: {'; '.join(skipped)}" if skipped else "")),
        ("default backend", default),
        ("ticket", ticket),
        ("created", f"{m.get('created_at', '?')} by edgeticket {(m.get('versions') or {}).get('edgeticket', '?')}"
                    + (f" (manifest format_version {m['upgraded_from']}, converted on read)"
                       if m.get("upgraded_from") else "")),
        ("warnings", "; ".join(map(str, m.get("warnings") or [])) or None),
    ])


def _sparsity_section(m: dict) -> H.Raw:
    layers = [l for l in (m.get("weights") or {}).get("layers") or [] if l.get("numel")]
    if not layers:
        return H.section("Sparsity per layer", H.para("The manifest lists no weight layers.", cls="note"),
                         anchor="sparsity")
    names_ = [l.get("name", "?") for l in layers]
    sparsity = [100.0 * (1.0 - float(l.get("nnz", 0)) / float(l["numel"])) for l in layers]
    chart = H.bar_chart(
        "layer-sparsity", names_, [H.Series("sparsity", sparsity, H.PALETTE[0])],
        title="Sparsity per layer (pruned weights / all weights)", value_label="sparsity (%)", v_max=100,
        texts=lambda i, g, v: f"{v:.1f}%  ({H.num(layers[g].get('nnz'))}/{H.num(layers[g]['numel'])} kept)")
    rows = [[l.get("name"), "×".join(map(str, l.get("shape") or [])), l.get("nnz"), l.get("numel"),
             f"{s:.2f}%", l.get("code"), l.get("stored_bytes"), l.get("ratio_to_floor")]
            for l, s in zip(layers, sparsity)]
    tab = H.table(["layer", "shape", "kept (nnz)", "weights", "sparsity", "code", "stored B", "x entropy floor"], rows,
                  name="layers", numeric=(4,))
    return H.section("Sparsity per layer", H.figure(chart), tab, anchor="sparsity")


MEMORY_PARTS = (("weights", "weights_resident_bytes"), ("activations", "activation_peak_bytes"),
                ("state", "state_bytes"), ("runtime", "runtime_overhead_bytes"))
LOAD_COLOR = "#BBBBBB"


def _memory_section(m: dict, profiles: list) -> H.Raw:
    plan = m.get("memory_plan") or {}
    if not plan:
        return H.section("Memory plan vs budget", H.para("The manifest has no memory plan.", cls="note"),
                         anchor="memory")
    budget = plan.get("budget_bytes") or (m.get("target") or {}).get("model_budget_bytes")
    steady = sum(float(plan.get(k) or 0) for _, k in MEMORY_PARTS)
    total = float(plan.get("total_bytes") or steady)
    rows = [f"plan at batch {plan.get('batch', 1)} ({plan.get('layout', m.get('layout', ''))})"]
    seg_vals = [[float(plan.get(k) or 0)] for _, k in MEMORY_PARTS] + [[max(0.0, total - steady)]]
    measured = []
    for p in profiles:
        for name, row in _latencies(p).items():
            if row.get("peak_rss_bytes"):
                measured.append((f"{name} peak RSS" + ("" if _where(p) == LOCAL else f" on {_where(p)}"),
                                 float(row["peak_rss_bytes"])))
    for label, rss in measured:
        rows.append(label)
        for s in seg_vals:
            s.append(None)
    seg_names = [n for n, _ in MEMORY_PARTS] + ["load peak (transient)"]
    colors = list(H.PALETTE[:4]) + [LOAD_COLOR]
    if measured:
        seg_names.append("peak RSS (measured, whole process)")
        colors.append(H.PALETTE[4])
        seg_vals.append([None] + [r for _, r in measured])
    biggest = max([total] + [r for _, r in measured])
    exact = {}

    def chart(name, scale_max, title, with_budget):
        unit, div = H.byte_unit(scale_max)
        segs = [H.Series(n, [None if v is None else v / div for v in vals], c)
                for n, vals, c in zip(seg_names, seg_vals, colors)]
        refs = [(budget / div, f"budget {H.fmt_bytes(budget)}")] if (with_budget and budget) else []
        exact[name] = div
        return H.stacked_bar_chart(
            name, rows, segs, title=title, value_label=unit, refs=refs, v_max=None,
            texts=lambda i, g, v: H.fmt_bytes(v * div),
            totals=lambda g, t: H.fmt_bytes(t * div) + (f" = {100 * t * div / budget:.2f}% of budget"
                                                         if budget else ""))

    figs = [H.figure(chart("memory-budget", max(biggest, budget or 0), "Memory: plan and measured peaks vs the "
                           "target's budget", True),
                     "Segments: what the plan holds at steady state, then the extra held while weights are decoded "
                     "at load; measured rows are whole-process peak RSS from the profiles.")]
    if budget and biggest < 0.2 * budget:
        figs.append(H.figure(chart("memory-zoom", biggest, "The same, zoomed to the largest bar (budget off the "
                                   "scale)", False)))
    parts = [(n, plan.get(k)) for n, k in MEMORY_PARTS] + [
        ("steady total", plan.get("steady_total_bytes")), ("load peak", plan.get("load_peak_bytes")),
        ("load transient (weight decode)", plan.get("load_transient_bytes")),
        ("weights stored in the file", plan.get("weights_stored_bytes")), ("planned total", plan.get("total_bytes")),
        ("budget", budget)]
    tab = H.table(["quantity", "bytes", ""], [[k, v, H.fmt_bytes(v)] for k, v in parts if v is not None],
                  name="memory", numeric=(2,))
    ev = ((m.get("backends") or {}).get("event") or {}).get("memory")
    extra = []
    if isinstance(ev, dict):
        extra.append(H.para(f"Event backend: {H.fmt_bytes(ev.get('weights_resident_bytes'))} resident weights "
                            f"({H.num(ev.get('resident_over_packed'))}x the packed ONNX weights), scratch "
                            f"{H.fmt_bytes(ev.get('scratch_bytes_per_sample'))} and state "
                            f"{H.fmt_bytes(ev.get('state_bytes_per_sample'))} per sample.", cls="note"))
    return H.section("Memory plan vs budget", *figs, tab, *extra, anchor="memory")


def _spikes_section(m: dict, profiles: list) -> H.Raw:
    snn, source = _snn(profiles)
    if not snn:
        v = (m.get("validation") or {}).get("spikes_per_layer")
        extra = []
        if isinstance(v, dict) and v:
            extra.append(H.table(["LIF layer", "spikes on the validation inputs"], [[k, c] for k, c in v.items()],
                                 name="validation-spikes"))
        return H.section("Spike rates per layer and timestep",
                         H.para("No profile in the bundle folder yet: ", H.code("edgeticket profile BUNDLE"),
                                " measures spike rates per layer and timestep, synaptic operations and latencies.",
                                cls="note"), *extra, anchor="spikes")
    rates = {k: v for k, v in snn["spike_rates"].items() if isinstance(v, dict)}
    T = max([len(v.get("rate_per_timestep") or []) for v in rates.values()] + [0])
    series = [H.Series(name, [(t + 1, 100.0 * float(r)) for t, r in enumerate(v.get("rate_per_timestep") or [])])
              for name, v in rates.items()]
    chart = H.line_chart("spike-rates", series, title="Spike rate per LIF layer and timestep",
                         x_label="timestep", y_label="neurons spiking (%)", x_ticks=list(range(1, T + 1)) or None,
                         y_min=0, x_fmt=lambda v: f"{v:.0f}")
    cols = [f"t={t + 1}" for t in range(T)] + ["mean", "neurons"]
    cells = []
    for v in rates.values():
        per_t = [100.0 * float(r) for r in (v.get("rate_per_timestep") or [])]
        cells.append(per_t + [None] * (T - len(per_t)) + [100.0 * float(v.get("rate") or 0), H.num(v.get("neurons"))])
    heat = H.heat_table("spike-rates", list(rates), cols, cells, fmt=lambda x: f"{x:.2f}%", corner="LIF layer",
                        caption="Spike rate (% of the layer's neurons spiking) per timestep")
    parts = [H.figure(chart, f"From {source}: the mean over the profile's inputs."), heat]
    syn = snn.get("synops") or {}
    layers = [l for l in syn.get("layers") or [] if isinstance(l, dict)]
    if layers:
        groups = [l.get("layer", "?") for l in layers]
        keys = (("dense MACs", "dense_macs"), ("MACs of nonzero weights", "nonzero_weight_macs"),
                ("synaptic ops (spike-driven)", "synops"))
        ser = [H.Series(n, [l.get(k) for l in layers]) for n, k in keys]
        parts.append(H.figure(H.bar_chart("synops", groups, ser, title="Operations per sample and layer",
                                          value_label="operations per sample", bar_h=14),
                              f"Synaptic ops: {H.num(syn.get('synops_per_sample'))} per sample = "
                              f"{H.num(syn.get('synops_over_dense_macs'))}x the dense MACs "
                              f"({H.num(syn.get('dense_macs_per_sample'))})."))
    return H.section("Spike rates per layer and timestep", *parts, anchor="spikes")


def _latency_section(m: dict, profiles: list) -> H.Raw:
    readable = [p for p in profiles if "_error" not in p]
    per_file = [(p, _latencies(p)) for p in readable]
    per_file = [(p, lat) for p, lat in per_file if any(r.get("p50_s") is not None for r in lat.values())]
    predicted = (m.get("backends") or {}).get("predicted_latency_s") or {}
    backends = []
    for _, lat in per_file:
        backends += [b for b in lat if b not in backends]
    backends += [b for b in predicted if b not in backends and per_file]
    if not per_file:
        return H.section("Backend latencies",
                         H.para("No profile yet: ", H.code("edgeticket profile BUNDLE --backend all"),
                                " measures every backend side by side.", cls="note"), anchor="latency")
    every = [r.get("p50_s") for _, lat in per_file for r in lat.values()] + list(predicted.values())
    unit, scale = ("ms", 1e3) if max(x for x in every if x is not None) >= 1e-3 else ("µs", 1e6)
    series = []
    for p, lat in per_file:
        label = f"p50 on {_where(p)}" + (" (EMULATED: not a latency)" if _is_emulated(p) else "") + \
            f" [{p.get('_file', '?')}]"
        series.append(H.Series(label, [scale * lat[b]["p50_s"] if b in lat and lat[b].get("p50_s") is not None
                                       else None for b in backends]))
    if predicted:
        series.append(H.Series(f"predicted for {(m.get('target') or {}).get('name', 'the target')} (cost model)",
                               [scale * predicted[b] if predicted.get(b) is not None else None for b in backends],
                               "#999999"))
    chart = H.bar_chart("latency", backends, series, title="Latency per call (batch "
                        f"{per_file[0][0].get('batch', (per_file[0][0].get('settings') or {}).get('batch', 1))}, "
                        "median of the timed runs)", value_label="microseconds" if unit == "µs" else "milliseconds",
                        texts=lambda i, g, v: H.fmt_seconds(v / scale))
    rows = []
    for p, lat in per_file:
        for b in backends:
            r = lat.get(b)
            if not r:
                continue
            eq = r.get("spike_counts_equal_to_onnxruntime")
            rows.append([_where(p), b, H.fmt_seconds(r.get("p50_s")), H.fmt_seconds(r.get("p90_s")),
                         f"{r['over_onnxruntime']:.2f}x" if r.get("over_onnxruntime") is not None else None,
                         H.fmt_bytes(r.get("peak_rss_bytes")),
                         H.badge(eq, "equal" if eq else "DIFFER") if eq is not None else None, p.get("_file")])
    tab = H.table(["measured on", "backend", "p50", "p90", "vs onnxruntime", "peak RSS", "spikes vs onnxruntime",
                   "file"], rows, name="latency", numeric=(2, 3, 4, 5))
    return H.section("Backend latencies", H.figure(chart), tab, anchor="latency")


def _profiles_section(profiles: list) -> H.Raw:
    if not profiles:
        return H.section("Profiles", H.para("No profile*.json in the bundle folder.", cls="note"), anchor="profiles")
    rows = []
    for p in profiles:
        if "_error" in p:
            rows.append([p.get("_file"), H.badge(False, "unreadable"), p["_error"], None, None, None, None])
            continue
        d = _device(p) or {}
        machine = ", ".join(str(x) for x in (d.get("cpu"), d.get("machine"),
                                             f"{d['cores']} cores" if d.get("cores") else None) if x)
        em = _is_emulated(p)
        rows.append([p.get("_file"), p.get("kind", "?"), ", ".join(_latencies(p)) or "–", _where(p),
                     machine or None, _date(p), H.badge(False, "emulated") if em else "no"])
    return H.section("Profiles", H.table(["file", "kind", "backends", "measured on", "machine", "date", "emulated"],
                                         rows, name="profiles"), anchor="profiles")


def inspect_html(manifest: dict, profiles: Optional[list] = None) -> str:
    """The bundle page: a single self-contained HTML document (no script, nothing fetched).
    manifest: as formats.bundle.read_manifest / load / api.inspect return it (format_version 4, fractions;
    "bundle_dir" is shown when present); a manifest of another format_version (a version-2 file as it was read
    from disk, percent) is refused, never guessed at. profiles: the bundle folder's profile JSONs (load_profiles),
    or None."""
    m = manifest
    if m.get("format_version", MANIFEST_VERSION) != MANIFEST_VERSION:
        raise EdgeTicketError(f"the manifest has format_version {m.get('format_version')!r}, the page takes "
                              f"version {MANIFEST_VERSION}: read it with edgeticket.formats.bundle.read_manifest "
                              "(which converts older manifests), or `edgeticket inspect BUNDLE --html FILE`")
    profiles = list(profiles or [])
    name = Path(str(m.get("bundle_dir") or m.get("id") or "bundle")).name
    t = (m.get("target") or {}).get("name", "?")
    sections = [
        H.section("Bundle", _header_facts(m), anchor="bundle"),
        _sparsity_section(m),
        _memory_section(m, profiles),
        _spikes_section(m, profiles),
        _latency_section(m, profiles),
        _profiles_section(profiles),
    ]
    nav = [("bundle", "bundle"), ("sparsity", "sparsity"), ("memory", "memory"), ("spikes", "spike rates"),
           ("latency", "latencies"), ("profiles", "profiles")]
    sub = (f"{m.get('arch', '?')} for {t}: {m.get('layout', '?')}, T={m.get('timesteps', '?')}, "
           f"{(m.get('weights') or {}).get('format', '?')} weights; id {m.get('id', '?')}"
           + (f"; folder {m['bundle_dir']}" if m.get("bundle_dir") else ""))
    version = (m.get("versions") or {}).get("edgeticket", "")
    return H.page(f"edgeticket bundle {name}", sections, subtitle=sub, nav=nav,
                  footer=f"Written by edgeticket from {names.MANIFEST} (compiled by edgeticket {version}) and "
                         f"{len(profiles)} profile file(s). One file: no script, nothing fetched.")
