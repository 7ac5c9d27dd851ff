"""The HTML pages (`inspect --html`, `report --html`): single self-contained files a person opens in a browser.

Everywhere: the page builders draw every data point (counted per chart), escape every text, fetch nothing and
run no script; they import with neither numpy nor torch, and on the oldest Python the base install supports.
With Debian's Chromium (`make browser-tools`, root): each page is opened in headless Chromium, which takes a
screenshot (decoded here with zlib/struct: many colours, the charts' colours) and dumps the DOM it rendered (the
charts and tables counted again, from the browser's side), and its console must stay silent. Skipped with that
reason where Chromium is absent; EDGETICKET_REQUIRE_CHROMIUM=1 (CI) turns the skip into a failure.
EDGETICKET_KEEP_SCREENSHOTS=DIR keeps each page and its screenshot there, to look at.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from itertools import accumulate, repeat
from operator import add, and_
from pathlib import Path

import pytest

from conftest import ROOT, oldest_python, tiny_cfg
from edgeticket.device import bundle_page
from edgeticket.device import html as H
from edgeticket.errors import EdgeTicketError
from edgeticket import results_page
from edgeticket.formats import ticket as ticket_fmt
from edgeticket.search.summary import read_summary

REQUIRE_CHROMIUM = os.environ.get("EDGETICKET_REQUIRE_CHROMIUM") == "1"
NO_CHROMIUM = "no Chromium: `make browser-tools` installs Debian's chromium (root)"
WINDOW = (1200, 2000)

# ---------------------------------------------------------------- synthetic data, shaped like the real files

LAYERS = [("stem.conv.weight", [8, 1, 3, 3], 49), ("features.1.conv.weight", [16, 8, 3, 3], 688),
          ("classifier.weight", [10, 64], 311)]
RATES = {"stem_lif": [0.040, 0.077, 0.048, 0.079], "features_1_lif": [0.0026, 0.016, 0.0094, 0.020]}
PLAN = {"activation_peak_bytes": 20480, "batch": 1, "budget_bytes": 4 * 2 ** 30, "fits": True, "layout": "time-folded",
        "load_peak_bytes": 69092168, "load_transient_bytes": 68968, "runtime_overhead_bytes": 69015608,
        "state_bytes": 3072, "steady_total_bytes": 69046752, "total_bytes": 69092168, "weights_resident_bytes": 7592,
        "weights_stored_bytes": 44811}


NEURON = {"kind": "lif", "v_threshold": 1.0, "v_reset": 0.0, "tau": 4 / 3, "k": None, "decay_input": True}


def manifest() -> dict:
    layers = []
    for name, shape, nnz in LAYERS:
        numel = 1
        for s in shape:
            numel *= s
        layers.append({"name": name, "shape": shape, "numel": numel, "nnz": nnz, "code": "bitmask",
                       "stored_bytes": nnz * 4 + numel // 8, "ratio_to_floor": 1.01})
    return {
        "format_version": 4, "kind": "bundle", "id": "5f06c36d5cdb", "arch": "tiny", "num_classes": 10,
        "timesteps": 4, "layout": "time-folded", "opset": 17, "bundle_dir": "/bundles/h",
        "target": {"name": "host", "model_budget_bytes": 4 * 2 ** 30, "ram_bytes": 24 * 2 ** 30,
                   "providers": ["CPUExecutionProvider"]},
        "input": {"name": "input", "shape": ["batch", 1, 8, 8], "mean": [0.3], "std": [0.37]},
        "lif": {"tau": 4 / 3, "v_threshold": 1.0, "layers": ["stem_lif", "features_1_lif"],
                "state_shapes": [[8, 8, 8], [16, 4, 4]], "neurons": [NEURON, NEURON]},
        "weights": {"format": "fp32", "storage": "packed", "layers": layers, "stored_bytes": 4505,
                    "dense_fp32_bytes": 7456, "ratio_to_floor": 1.0192, "prunable_nnz": 1048, "prunable_numel": 1864,
                    "sparsity": 0.4378},
        "memory_plan": dict(PLAN), "budget_check": {"fits": True, "forced": False},
        "validation": {"passed": True, "spikes_equal": True, "inputs": 64, "total_spikes": 8808,
                       "logits_max_abs_diff": 0.0,
                       "accuracy": {"bundle_onnxruntime": 0.28125, "ticket_pytorch": 0.28125},
                       "spikes_per_layer": {"stem.lif": 8015, "features.1.lif": 793}, "first_mismatch": None},
        "backends": {"default": "event", "reason": "predicted event/dense latency 0.22x",
                     "onnxruntime": {"built": True}, "event": {"built": True, "memory": {
                         "weights_resident_bytes": 6808, "resident_over_packed": 1.47,
                         "scratch_bytes_per_sample": 10832, "state_bytes_per_sample": 3072}},
                     "tvm": {"built": False, "reason": "apache-tvm is not installed"},
                     "predicted_latency_s": {"onnxruntime": 1.54e-4, "event": 3.4e-5}},
        "source_ticket": {"run": "imp_tiny_digits_c491674c9f", "level": 2, "branch": "ticket", "sparsity": 0.4378,
                          "accuracy": {"final": 0.265625, "best": 0.265625}},
        "created_at": "2026-11-24T11:40:09Z", "versions": {"edgeticket": "0.3.0"}, "warnings": [],
    }


def single_profile(backend: str, p50: float, rss: int, host: str | None = None) -> dict:
    p = {"format_version": 1, "kind": "profile", "backend": backend, "date": "2026-11-24T11:40:10Z",
         "emulated": False, "batch": 1,
         "device": {"cpu": "Intel(R) Xeon(R) Processor", "machine": "x86_64", "cores": 2},
         "latency": {"p50_s": p50, "p90_s": p50 * 1.1, "mean_s": p50 * 1.05},
         "memory": {"peak_rss_bytes": rss, "plan": dict(PLAN)},
         "snn": {"spike_rates": {k: {"neurons": 512 if k == "stem_lif" else 256, "rate": sum(v) / 4,
                                     "rate_per_timestep": v} for k, v in RATES.items()},
                 "synops": {"dense_macs_per_sample": 80896, "synops_per_sample": 10622.2,
                            "synops_over_dense_macs": 0.1313,
                            "layers": [{"layer": "stem.conv", "dense_macs": 4608, "nonzero_weight_macs": 3136,
                                        "synops": 3136.0},
                                       {"layer": "features.1.conv", "dense_macs": 73728, "nonzero_weight_macs": 44032,
                                        "synops": 7429.6},
                                       {"layer": "classifier", "dense_macs": 2560, "nonzero_weight_macs": 1244,
                                        "synops": 56.6}]}}}
    if host:
        p["remote"] = {"host": host, "board": {"arch": "aarch64"}, "round_trip_s": 4.2}
    return p


def profiles() -> list:
    ort, ev = single_profile("onnxruntime", 1.25e-4, 69144576), single_profile("event", 4.0e-5, 36184064)
    allb = {"format_version": 1, "kind": "profile-backends", "batch": 1, "emulated": False, "bundle": "/bundles/h",
            "backends": {"onnxruntime": {"p50_s": 1.25e-4, "peak_rss_bytes": 69144576, "over_onnxruntime": 1.0,
                                         "spike_counts_equal_to_onnxruntime": True},
                         "event": {"p50_s": 4.0e-5, "peak_rss_bytes": 36184064, "over_onnxruntime": 0.32,
                                   "spike_counts_equal_to_onnxruntime": True}},
            "profiles": {"onnxruntime": ort, "event": ev}, "_file": "profile.json"}
    board = dict(single_profile("onnxruntime", 2.1e-3, 91234304, host="pi@rpi4"), _file="profile-pi@rpi4.json")
    return [allb, board]


def write_bundle(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps(manifest()))
    for p in profiles():
        p = dict(p)
        (d / p.pop("_file")).write_text(json.dumps(p))
    (d / "profile-broken.json").write_text("{not json")
    return d


# expected per chart, from the data above: the bars, points and lines each chart must draw
def inspect_expected() -> dict:
    plan_segments = 5  # weights, activations, state, runtime, load peak (all > 0 here)
    measured = 3  # profile.json: onnxruntime + event; profile-pi@rpi4.json: onnxruntime
    lat_bars = 2 + 1 + 2  # profile.json's two backends, the board's one, the cost model's two predictions
    return {"layer-sparsity": {"rect.bar": len(LAYERS)},
            "memory-budget": {"rect.bar": plan_segments + measured, "line.ref": 1},
            "memory-zoom": {"rect.bar": plan_segments + measured, "line.ref": 0},
            "spike-rates": {"circle.pt": sum(len(v) for v in RATES.values()), "polyline.line": len(RATES)},
            "synops": {"rect.bar": 3 * 3},
            "latency": {"rect.bar": lat_bars}}


INSPECT_TABLES = 5  # layers, memory, spike-rates (heat), latency, profiles


V1_METRIC = "test top-1 %, argmax of logits summed over T"  # ticket.json version 1's accuracy metric


def write_run(root: Path, name: str, seed: int, levels: list, controls: dict, layers: dict, method: str = "imp",
              early_time: bool = False, legacy: bool = False, summary: bool = True, v1_levels=()) -> Path:
    """A run folder as `edgeticket search` writes it. levels: [(sparsity, accuracy)] as fractions; controls:
    branch -> {level: accuracy}. legacy: every file of the previous format_version, as tests/test_units.py writes
    them and the readers define them: summary.json version 1 (no format_version key; sparsity, best_acc, final_acc
    in percent), ticket.json version 1 (accuracies and history in percent; sparsity was a fraction already).
    v1_levels: only these levels' ticket folders (and their branches) are version 1 (a search resumed by a newer
    edgeticket)."""
    rd = root / name
    rd.mkdir(parents=True)
    hp = {"model": {"arch": "tiny", "timesteps": 4},
          "search": {"method": method, "early_time": early_time, "rounds": max(len(levels) - 1, 1)},
          "training": {"seed": seed}}
    (rd / "run.json").write_text(json.dumps({"kind": "search-run", "name": name, "hparams": hp,
                                             "dataset": {"name": "digits"}}))
    rows = []

    def ticket(d: Path, level: int, branch: str, sp: float, acc: float):
        d.mkdir(parents=True)
        v1 = legacy or level in v1_levels
        k = 100.0 if v1 else 1.0
        (d / "ticket.json").write_text(json.dumps({
            "format_version": 1 if v1 else ticket_fmt.FORMAT_VERSION, "kind": "ticket", "level": level,
            "branch": branch, "sparsity": {"global": sp, "layers": layers if level == len(levels) - 1 else {}},
            "accuracy": {"final": acc * k, "best": acc * k, "metric": V1_METRIC if v1 else ticket_fmt.ACCURACY_METRIC},
            "history": [{"epoch": 0, "train_acc": acc * k, "test_acc": acc * k}],
            "timesteps": {"trained": 4}, "nnz": 100, "cost": {"wall_s": 0.1, "timestep_epochs": 8, "epochs": 2},
            "hparams": hp}))
        rows.append({"level": level, "branch": branch, "sparsity": sp, "final_acc": acc, "best_acc": acc,
                     "nnz": 100, "timesteps_trained": 4, "wall_s": 0.1, "timestep_epochs": 8, "epochs": 2})

    for level, (sp, acc) in enumerate(levels):
        ticket(rd / f"level_{level}", level, "ticket", sp, acc)
    for branch, accs in controls.items():
        for level, acc in accs.items():
            ticket(rd / f"level_{level}" / f"branch_{branch}", level, branch, levels[level][0], acc)
    if summary:
        s = {"format_version": 2, "kind": "search-summary", "method": method, "levels": rows,
             "final_ticket": rows[len(levels) - 1], "early_time": None,
             "search_cost": {"wall_s": 0.3 + seed, "timestep_epochs": 28, "epochs": 7}}
        if legacy:  # version 1, as tests/test_units.py derives it from version 2
            pct = lambda r: {**r, **{k: 100 * r[k] for k in ("sparsity", "best_acc", "final_acc")}}  # noqa: E731
            s = {k: v for k, v in s.items() if k not in ("format_version", "kind")}
            s.update(levels=[pct(r) for r in rows], final_ticket=pct(s["final_ticket"]))
        (rd / "summary.json").write_text(json.dumps(s))
    return rd


RUN_LEVELS = [(0.0, 0.242), (0.25, 0.25), (0.4378, 0.2656)]
RUN_CONTROLS = {"random-reinit": {1: 0.1328, 2: 0.0781}, "random-mask": {1: 0.0938, 2: 0.1484}}
RUN_LAYERS = {"stem.conv.weight": 0.3194, "features.1.conv.weight": 0.4028, "classifier.weight": 0.5141}


def write_experiment(root: Path) -> Path:
    """An experiment folder (moved: experiment.json names its runs where they were written)."""
    exp = root / "exp"
    entries = []
    for label, seed, ctl, et, shift in (("imp", 0, RUN_CONTROLS, False, 0.0), ("imp", 1, RUN_CONTROLS, False, 0.02),
                                        ("imp+et", 0, {}, True, -0.01)):
        lv = [(s, a + shift) for s, a in RUN_LEVELS]
        rd = write_run(exp, f"{label.replace('+', '_')}_tiny_digits_{seed}", seed, lv, ctl, RUN_LAYERS,
                       early_time=et)
        entries.append({"label": label, "seed": seed, "run_dir": f"/elsewhere/exp/{rd.name}"})
    (exp / "experiment.json").write_text(json.dumps({"format_version": 1, "kind": "experiment", "name": "tiny-exp",
                                                     "config": "configs/tiny.toml", "runs": entries}))
    return exp


def report_expected() -> dict:
    n = len(RUN_LEVELS)
    ctl_points = sum(len(v) for v in RUN_CONTROLS.values())
    ctl_levels = len(RUN_CONTROLS["random-reinit"])
    return {  # section 0: the experiment (imp x 2 seeds with controls, imp+et); section 1: one single run
        "accuracy-0": {"circle.pt": n + ctl_points + n, "polyline.line": 4},
        "controls-0-0": {"rect.bar": ctl_levels * 3},
        "layers-0": {"rect.bar": len(RUN_LAYERS) * 2},
        "cost-0": {"rect.bar": 2},
        "accuracy-1": {"circle.pt": n + ctl_points, "polyline.line": 3, "line.ref": 1},
        "controls-1-0": {"rect.bar": ctl_levels * 3},
        "layers-1": {"rect.bar": len(RUN_LAYERS)},
    }


REPORT_TABLES = 4  # runs + controls, per section


def write_results(root: Path) -> list:
    exp = write_experiment(root)
    single = write_run(root / "runs", "imp_tiny_digits_c491674c9f", 0, RUN_LEVELS, RUN_CONTROLS, RUN_LAYERS)
    return [exp, single]


# ---------------------------------------------------------------- counting what a page draws

class ChartCounter(HTMLParser):
    """Elements per chart (svg.chart[data-chart]) by tag.class, and the page's tags and links."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.charts: dict = {}
        self.tags = collections.Counter()
        self.links = []
        self._chart = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] += 1
        for k in ("src", "href", "xlink:href"):
            if a.get(k) and not a[k].startswith("#"):
                self.links.append(a[k])
        if tag == "svg" and "chart" in (a.get("class") or "").split():
            self._chart = a.get("data-chart")
            self.charts[self._chart] = collections.Counter()
        elif self._chart is not None:
            for c in (a.get("class") or "").split():
                self.charts[self._chart][f"{tag}.{c}"] += 1

    def handle_endtag(self, tag):
        if tag == "svg":
            self._chart = None


def count(page: str) -> ChartCounter:
    c = ChartCounter()
    c.feed(page)
    c.close()
    return c


def assert_drawn(c: ChartCounter, expected: dict, tables: int) -> None:
    assert set(expected) <= set(c.charts), (sorted(expected), sorted(c.charts))
    for chart, want in expected.items():
        for what, n in want.items():
            assert c.charts[chart][what] == n, (chart, what, c.charts[chart][what], n)
    assert c.tags["table"] == tables, c.tags["table"]
    assert c.tags["script"] == 0 and c.tags["iframe"] == 0 and c.tags["img"] == 0
    assert c.links == [], c.links


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert f'http-equiv="Content-Security-Policy" content="{H.esc(H.CSP)}"' in page and "default-src" in H.CSP
    for bad in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert bad not in page, bad
    c = count(page)  # no element loads anything or runs anything
    assert c.links == [] and not (c.tags["script"] or c.tags["img"] or c.tags["iframe"] or c.tags["object"])


# ---------------------------------------------------------------- the page builders (no browser)

def test_charts_draw_every_point_bar_and_line():
    s = [H.Series("a", [(0, 1), (1, 3), (2, 2)]), H.Series("b", [(0, 2, 0.5), (2, None), (3, 4, 0.2)], dash="4 2")]
    c = count(H.line_chart("l", s, title="t", x_label="x", y_label="y", hlines=[(2.5, "ref")]))
    assert c.charts["l"] == {"circle.pt": 5, "polyline.line": 2, "path.err": 2, "line.ref": 1, "rect.swatch": 2}
    c = count(H.bar_chart("b", ["g1", "g2", "g3"], [H.Series("s1", [1, 2, 3]), H.Series("s2", [None, 5, 0.5])],
                          title="t", value_label="v", refs=[(4, "limit")]))
    assert c.charts["b"] == {"rect.bar": 5, "line.ref": 1, "rect.swatch": 2}
    c = count(H.stacked_bar_chart("s", ["r1", "r2"], [H.Series("x", [1, 2]), H.Series("y", [0, 3]),
                                                       H.Series("z", [None, 1])], title="t", value_label="v"))
    assert c.charts["s"] == {"rect.bar": 4, "rect.swatch": 3}  # zero and None draw no segment
    c = count(H.line_chart("e", [H.Series("a", [])], title="t", x_label="x", y_label="y"))
    assert c.charts["e"] == {} and "no data" in H.bar_chart("n", [], [], title="t", value_label="v")
    for lo, hi in ((0, 1), (0.0026, 0.079), (-3, 17), (5, 5), (0, 4294967296)):
        t = H.nice_ticks(lo, hi)
        assert t[0] <= lo and t[-1] >= hi and 2 <= len(t) <= 12
        assert len({round(b - a, 9) for a, b in zip(t, t[1:])}) == 1


def test_inspect_page_shows_every_figure_and_table():
    page = bundle_page.inspect_html(manifest(), profiles())
    assert_self_contained(page)
    assert_drawn(count(page), inspect_expected(), INSPECT_TABLES)
    for text in ("51.4%", "passed", "fits", "pi@rpi4", "profile-pi@rpi4.json", "28.1%", "apache-tvm is not installed"):
        assert text in page, text
    bare = bundle_page.inspect_html(manifest(), None)  # no profile yet: what to run is named instead
    assert_self_contained(bare)
    c = count(bare)
    assert "spike-rates" not in c.charts and "latency" not in c.charts and c.charts["layer-sparsity"]["rect.bar"] == 3
    assert "edgeticket profile BUNDLE" in bare


def test_inspect_page_reads_the_bundle_folder(tmp_path):
    d = write_bundle(tmp_path / "h")
    ps = bundle_page.load_profiles(d)
    assert [p["_file"] for p in ps] == ["profile.json", "profile-broken.json", "profile-pi@rpi4.json"]
    assert "_error" in ps[1]
    page = bundle_page.inspect_html(json.loads((d / "manifest.json").read_text()), ps)
    assert_drawn(count(page), inspect_expected(), INSPECT_TABLES)
    assert "unreadable" in page


def version_2_manifest() -> dict:
    """manifest() as format_version 2 wrote it (percent), the inverse of formats.bundle.upgrade."""
    m = manifest()
    m["format_version"] = 2
    del m["lif"]["neurons"]
    m["validation"]["accuracy"] = {k: 100 * v for k, v in m["validation"]["accuracy"].items()}
    acc = m["source_ticket"]["accuracy"]
    m["source_ticket"]["accuracy"] = {"final": 100 * acc["final"], "best": 100 * acc["best"], "metric": V1_METRIC}
    return m


def test_inspect_page_takes_the_manifest_as_read_manifest_returns_it(tmp_path):
    from edgeticket.formats import bundle

    assert bundle_page.MANIFEST_VERSION == bundle.FORMAT_VERSION
    d = tmp_path / "v2"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps(version_2_manifest()))
    got = bundle.read_manifest(d)
    assert got["format_version"] == 4 and got["upgraded_from"] == 2 and got["lif"] == manifest()["lif"]
    old, new = bundle_page.inspect_html(got, profiles()), bundle_page.inspect_html(manifest(), profiles())
    svg = r'<svg class="chart".*?</svg>'
    assert re.findall(svg, old) == re.findall(svg, new)
    for page in (old, new):
        assert "28.1%" in page and "26.6%" in page and "2812" not in page
    assert "manifest format_version 2, converted on read" in old
    with pytest.raises(EdgeTicketError, match="format_version 2, the page takes version 4: read it with"):
        bundle_page.inspect_html(version_2_manifest(), profiles())  # as the file holds it: refused, not guessed


def test_every_text_is_escaped():
    evil = '<script>alert("x")</script>&'
    m = manifest()
    m["weights"]["layers"][0]["name"] = evil
    m["target"]["name"] = "<i>board</i>"
    m["warnings"] = ["<b>over budget</b>"]
    ps = profiles()
    ps[1]["remote"]["host"] = "<img src=x onerror=alert(1)>"
    page = bundle_page.inspect_html(m, ps)
    assert "<script" not in page and "<img" not in page and "<i>board" not in page and "<b>over" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page and "&lt;img src=x" in page
    assert_self_contained(page)


def test_pages_of_thin_inputs_say_what_is_missing(tmp_path):
    for m, ps in (({}, []), ({"memory_plan": {"total_bytes": 10}, "weights": {"layers": [{"name": "a", "numel": 0}]}},
                             [{"kind": "profile", "latency": {"p50_s": None}}])):
        assert_self_contained(bundle_page.inspect_html(m, ps))
    dense = write_run(tmp_path, "dense_only", 0, RUN_LEVELS[:1], {}, RUN_LAYERS)  # one level, no controls
    page = results_page.report_html(results_page.load_results([dense]))
    assert_self_contained(page)
    assert count(page).charts["accuracy-0"]["circle.pt"] == 1 and "--controls" in page


def test_report_page_shows_accuracy_controls_and_layers(tmp_path):
    paths = write_results(tmp_path)
    results = results_page.load_results(paths)
    assert [s["kind"] for s in results] == ["experiment", "runs"]
    assert [r["label"] for r in results[0]["runs"]] == ["imp", "imp", "imp+et"]  # the moved runs were found
    page = results_page.report_html(results)
    assert_self_contained(page)
    assert_drawn(count(page), report_expected(), REPORT_TABLES)
    for text in ("43.78%", "26.56%", "+18.75", "tiny-exp", "configs/tiny.toml", "dense − 1 point"):
        assert text in page, text


def test_report_page_reads_percent_and_fraction_files_alike(tmp_path):
    """Version-1 files (percent) and current ones (fractions) of the same search draw the same charts: the page
    reads each file through its format's reader, which converts the old version, and guesses no units."""
    new = write_run(tmp_path / "a", "run", 0, RUN_LEVELS, RUN_CONTROLS, RUN_LAYERS)
    old = write_run(tmp_path / "b", "run", 0, RUN_LEVELS, RUN_CONTROLS, RUN_LAYERS, legacy=True)
    partial = write_run(tmp_path / "c", "run", 0, RUN_LEVELS, RUN_CONTROLS, RUN_LAYERS, legacy=True, summary=False)
    resumed = write_run(tmp_path / "d", "run", 0, RUN_LEVELS, RUN_CONTROLS, RUN_LAYERS, summary=False,
                        v1_levels=(0, 1))  # version-1 tickets beside version-2 ones: no rule of thumb reads both
    # the old files are the previous format_version as the readers define it, in percent on disk
    raw = json.loads((old / "summary.json").read_text())
    assert "format_version" not in raw and raw["levels"][2]["sparsity"] == pytest.approx(43.78)
    assert read_summary(old)["format_version"] == 2
    fractions = lambda run: [r[k] for r in read_summary(run)["levels"] for k in ("sparsity", "final_acc")]  # noqa
    assert fractions(old) == pytest.approx(fractions(new))
    for run in (old, resumed):
        raw = json.loads((run / "level_1" / "ticket.json").read_text())
        assert raw["format_version"] == 1 and raw["accuracy"]["final"] == pytest.approx(25.0)
        info = ticket_fmt.read_info(run / "level_1")
        assert info["format_version"] == 2 and info["accuracy"]["final"] == pytest.approx(0.25)
    assert json.loads((resumed / "level_2" / "ticket.json").read_text())["format_version"] == 2
    pages = [results_page.report_html(results_page.load_results([d])) for d in (new, old, partial, resumed)]
    charts = [re.findall(r'<svg class="chart".*?</svg>', p) for p in pages]
    assert len(charts[0]) == 3  # accuracy, controls, layers
    assert charts[1] == charts[0] and charts[2] == charts[0] and charts[3] == charts[0]
    for p in pages:
        assert "43.78%" in p and "26.56%" in p and "+18.75" in p, p  # percent only where printed
    assert "unfinished" in pages[2] and "unfinished" in pages[3] and "unfinished" not in pages[0]
    assert not hasattr(results_page, "as_fractions")


def test_report_page_refuses_files_its_readers_refuse(tmp_path):
    run = write_run(tmp_path, "run", 0, RUN_LEVELS, {}, RUN_LAYERS)
    s = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps(dict(s, format_version=9)))
    with pytest.raises(EdgeTicketError, match="format_version 9; this edgeticket reads versions 1 and 2"):
        results_page.load_results([run])
    (run / "summary.json").unlink()
    t = json.loads((run / "level_1" / "ticket.json").read_text())
    (run / "level_1" / "ticket.json").write_text(json.dumps(dict(t, format_version=9)))
    with pytest.raises(EdgeTicketError, match="format_version 9; this edgeticket reads versions 1, 2"):
        results_page.load_results([run])


def test_report_names_what_it_takes(tmp_path):
    with pytest.raises(EdgeTicketError, match="neither run.json nor experiment.json"):
        results_page.load_results([tmp_path])
    with pytest.raises(EdgeTicketError, match="does not exist"):
        results_page.load_results([tmp_path / "nope"])


PAGES_SCRIPT = """
import json, sys
for m in ("numpy", "torch", "matplotlib", "onnxruntime"):
    sys.modules[m] = None
sys.path.insert(0, sys.argv[1])
from edgeticket.device.bundle_page import inspect_html, load_profiles
from edgeticket.results_page import load_results, report_html
d = json.loads(open(sys.argv[2]).read())
out = {"inspect": inspect_html(json.loads(open(d["bundle"] + "/manifest.json").read()), load_profiles(d["bundle"])),
       "report": report_html(load_results(d["results"]))}
open(sys.argv[3], "w").write(json.dumps(out))
"""


def _pages_in(python: str, tmp_path: Path) -> dict:
    spec = {"bundle": str(tmp_path / "h"), "results": [str(p) for p in write_results(tmp_path)]}
    if not (tmp_path / "h").exists():
        write_bundle(tmp_path / "h")
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([python, "-c", PAGES_SCRIPT, str(ROOT), str(tmp_path / "spec.json"), str(tmp_path / "o.json")],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((tmp_path / "o.json").read_text())


def test_pages_need_neither_numpy_nor_torch_and_run_on_the_oldest_python(tmp_path):
    here = _pages_in(sys.executable, tmp_path / "here")
    assert_drawn(count(here["inspect"]), inspect_expected(), INSPECT_TABLES)
    old = oldest_python()
    if old is None:
        if os.environ.get("EDGETICKET_REQUIRE_OLD_PYTHON") == "1":
            pytest.fail("EDGETICKET_REQUIRE_OLD_PYTHON=1 but no Python 3.8/3.9 was found (set EDGETICKET_OLD_PYTHON)")
        pytest.skip("no Python 3.8 or 3.9 here (pyenv install 3.8, or set EDGETICKET_OLD_PYTHON)")
    there = _pages_in(old, tmp_path / "old")
    # the same pages, but for the temporary folders' names
    for k in ("inspect", "report"):
        assert there[k].replace(str(tmp_path / "old"), "T") == here[k].replace(str(tmp_path / "here"), "T")


# ---------------------------------------------------------------- in a real browser

def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path is None:
        if REQUIRE_CHROMIUM:
            pytest.fail(f"EDGETICKET_REQUIRE_CHROMIUM=1 but {NO_CHROMIUM}")
        pytest.skip(NO_CHROMIUM)
    return path


def render(chromium: str, page: Path, tmp_path: Path) -> tuple:
    """Open the page in headless Chromium: (screenshot PNG bytes, the DOM it rendered, its console lines)."""
    shot = tmp_path / (page.stem + ".png")
    profile_dir = tmp_path / f"chromium-{page.stem}"
    profile_dir.mkdir()
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile_dir}", "--hide-scrollbars", "--force-device-scale-factor=1",
           f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}", "--enable-logging=stderr", "--v=0",
           "--dump-dom", page.resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert r.returncode == 0 and shot.is_file(), r.stderr[-3000:]
    console = [l for l in r.stderr.splitlines() if ":CONSOLE" in l or "Uncaught" in l]
    return shot.read_bytes(), r.stdout, console


def decode_png(data: bytes) -> tuple:
    """(width, height, collections.Counter of RGB pixels) of an 8-bit RGB/RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    while pos < len(data):
        n, = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), w * bpp
    prev, colours = bytes(stride), collections.Counter()
    for y in range(h):
        f, line = raw[y * (stride + 1)], raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)]
        if f == 0:
            cur = line
        elif f == 1:  # Sub: a running sum per channel
            b = bytearray(stride)
            for c in range(bpp):
                b[c::bpp] = bytes(map(and_, accumulate(line[c::bpp]), repeat(255)))
            cur = bytes(b)
        elif f == 2:  # Up
            cur = bytes(map(and_, map(add, line, prev), repeat(255)))
        else:  # Average, Paeth
            b = bytearray(line)
            for i in range(stride):
                a = b[i - bpp] if i >= bpp else 0
                if f == 3:
                    b[i] = (b[i] + ((a + prev[i]) >> 1)) & 255
                else:
                    up, ul = prev[i], (prev[i - bpp] if i >= bpp else 0)
                    p = a + up - ul
                    pa, pb, pc = abs(p - a), abs(p - up), abs(p - ul)
                    b[i] = (b[i] + (a if pa <= pb and pa <= pc else up if pb <= pc else ul)) & 255
            cur = bytes(b)
        colours.update(cur[i:i + 3] for i in range(0, stride, bpp))
        prev = cur
    return w, h, colours


def rgb(hex_colour: str) -> bytes:
    return bytes.fromhex(hex_colour.lstrip("#"))


def check_rendered(chromium, page_text: str, name: str, tmp_path: Path, expected: dict, tables: int,
                   colours: list) -> None:
    page = tmp_path / f"{name}.html"
    page.write_text(page_text)
    png, dom, console = render(chromium, page, tmp_path)
    assert console == [], console  # no errors, no blocked fetch (the CSP would log it), no script
    assert_drawn(count(dom), expected, tables)
    w, h, seen = decode_png(png)
    assert (w, h) == WINDOW
    background = seen[rgb("#f6f6f4")] + seen[rgb("#ffffff")]
    assert len(seen) >= 200, len(seen)  # text, anti-aliasing, charts: a real render, not a blank page
    assert background < 0.97 * w * h, background / (w * h)
    for c in colours:
        assert seen[rgb(c)] >= 40, (c, seen[rgb(c)])  # the charts' fills are there
    if os.environ.get("EDGETICKET_KEEP_SCREENSHOTS"):  # a folder: look at the pages as a person would
        shutil.copy(tmp_path / f"{page.stem}.png", Path(os.environ["EDGETICKET_KEEP_SCREENSHOTS"]) / f"{name}.png")
        shutil.copy(page, Path(os.environ["EDGETICKET_KEEP_SCREENSHOTS"]) / f"{name}.html")


def test_inspect_page_renders_in_chromium(chromium, tmp_path):
    d = write_bundle(tmp_path / "h")
    page = bundle_page.inspect_html(json.loads((d / "manifest.json").read_text()), bundle_page.load_profiles(d))
    check_rendered(chromium, page, "inspect", tmp_path, inspect_expected(), INSPECT_TABLES, list(H.PALETTE[:5]))


def test_report_page_renders_in_chromium(chromium, tmp_path):
    page = results_page.report_html(results_page.load_results(write_results(tmp_path)))
    check_rendered(chromium, page, "report", tmp_path, report_expected(), REPORT_TABLES, list(H.PALETTE[:3]))


def test_the_browser_check_sees_console_errors_and_blocked_fetches(chromium, tmp_path):
    """The harness's own control: a script error and a fetch the page's policy blocks reach the console lines."""
    head = f'<meta http-equiv="Content-Security-Policy" content="{H.CSP}">'
    for name, body in (("error", "<script>undefinedFunction()</script>"),
                       ("fetch", '<img src="http://127.0.0.1:9/x.png" alt="">')):
        page = tmp_path / f"{name}.html"
        meta = head if name == "fetch" else ""
        page.write_text(f"<!DOCTYPE html><html><head>{meta}</head><body>{body}</body></html>")
        _, _, console = render(chromium, page, tmp_path)
        assert console, name


# ---------------------------------------------------------------- from real folders: search -> compile -> profile

@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A tiny IMP search with both controls, its final ticket compiled for this host (onnxruntime) and profiled."""
    pytest.importorskip("torch")
    from edgeticket import api

    out = tmp_path_factory.mktemp("real")
    cfg = tiny_cfg(rounds=2, controls="random-reinit,random-mask")
    api.search(cfg, out=out / "runs", device="cpu", quiet=True)
    run = out / "runs" / cfg.hashname()
    m = api.compile_ticket(run, "host", out=out / "bundles", name="h", validation_n=16, backend="onnxruntime",
                           log=lambda s: None)
    api.profile(m["bundle_dir"], backend="onnxruntime", runs=3, warmup=1, log=lambda s: None)
    return {"run": run, "bundle": Path(m["bundle_dir"]), "manifest": m, "out": out}


def real_expected(real) -> tuple:
    m = json.loads((real["bundle"] / "manifest.json").read_text())
    prof = json.loads((real["bundle"] / "profile.json").read_text())
    rates = prof["snn"]["spike_rates"]
    inspect = {"layer-sparsity": {"rect.bar": len(m["weights"]["layers"])},
               "spike-rates": {"circle.pt": sum(len(v["rate_per_timestep"]) for v in rates.values()),
                               "polyline.line": len(rates)},
               "latency": {"rect.bar": 1 + len(m["backends"].get("predicted_latency_s") or {})}}
    levels = 3  # rounds=2: levels 0, 1, 2; each control at levels 1 and 2
    report = {"accuracy-0": {"circle.pt": levels + 2 * 2, "polyline.line": 3},
              "controls-0-0": {"rect.bar": 2 * 3},
              "layers-0": {"rect.bar": len(m["weights"]["layers"])}}
    return inspect, report


def test_real_folders_give_every_figure(real, tmp_path):
    inspect, report = real_expected(real)
    out = bundle_page.write_inspect_html(real["bundle"], tmp_path / "inspect.html")
    page = out.read_text()
    assert_self_contained(page)
    assert_drawn(count(page), inspect, INSPECT_TABLES)
    out = results_page.write_report_html([real["run"]], tmp_path / "report.html")
    page = out.read_text()
    assert_self_contained(page)
    assert_drawn(count(page), report, 2)


def test_real_folders_render_in_chromium(real, chromium, tmp_path):
    inspect, report = real_expected(real)
    page = bundle_page.bundle_html(real["bundle"])
    check_rendered(chromium, page, "inspect-real", tmp_path, inspect, INSPECT_TABLES, list(H.PALETTE[:1]))
    page = results_page.report_html(results_page.load_results([real["run"]]))
    check_rendered(chromium, page, "report-real", tmp_path, report, 2, list(H.PALETTE[:3]))
