"""The results page (`edgeticket report RUN_OR_EXPERIMENT... --html FILE`): one self-contained HTML file a person
opens in a browser: accuracy vs sparsity per search (mean ± half-range over seeds), the ticket against its
controls (random-reinit / random-mask branches) per level, per-layer sparsity of the final ticket, search cost.

    html = report_html(load_results(paths))      # or write_report_html(paths, out)

It reads run folders (run.json, summary.json, level_<k>/ticket.json, level_<k>/branch_<control>/ticket.json) and
experiment folders (experiment.json listing run folders) through the text report's readers (`results.load_run`,
`results.read_experiment_index`: one set of checks and one `finished` rule for both), which read each format with
its own reader. Those readers convert the files of older format_versions (percent) in the one place per format,
so every sparsity and accuracy here is a fraction in [0, 1] and the page converts and guesses no units itself.
Standard library only, like those readers: it works in the base install (no numpy, matplotlib or torch).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Optional

from . import results, store
from .device import html as H
from .errors import EdgeTicketError
from .formats import names
from .formats.ticket import read_info

TICKET = "ticket"
BRANCH_ORDER = (TICKET, "random-reinit", "random-mask")


def _get(d: dict, *path, default=None):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


# ---------------------------------------------------------------- loading

def load_run(run_dir, label: Optional[str] = None, seed=None) -> dict:
    """One run folder as this page needs it, built from `results.load_run` (the report's own reader: the same
    checks, the same `finished` rule): name, label, seed, method, arch, dataset, T, finished, levels [{level,
    branch, sparsity, accuracy, T, nnz}] (fractions), final {level, sparsity, accuracy, layers {name: sparsity}}
    and cost {wall_s, timestep_epochs}."""
    s = results.load_run(run_dir)
    run_dir = Path(run_dir)
    hp = s["hparams"]
    rows = [{"level": int(r["level"]), "branch": r.get("branch", TICKET), "sparsity": r.get("sparsity"),
             "accuracy": r.get("final_acc"), "T": r.get("timesteps_trained"), "nnz": r.get("nnz"),
             "wall_s": r.get("wall_s"), "timestep_epochs": r.get("timestep_epochs")} for r in s["levels"]]
    rows.sort(key=lambda r: (r["level"], BRANCH_ORDER.index(r["branch"]) if r["branch"] in BRANCH_ORDER else 9,
                             r["branch"]))
    search = [r for r in rows if r["branch"] == TICKET]
    final_level = _get(s, "final_ticket", "level")
    final = next((dict(r) for r in search if r["level"] == final_level), None)
    if final is not None:
        layers = _get(read_info(names.level_dir(run_dir, final_level)), "sparsity", "layers", default={}) or {}
        final["layers"] = {n: None if v is None else float(v) for n, v in layers.items()}
    search_label = s["method"] + ("+et" if _get(hp, "search", "early_time", default=False) else "")
    run = store.read_json(run_dir / names.RUN_JSON, "run.json")
    return {"name": s["name"], "dir": str(run_dir), "search": search_label, "label": label or search_label,
            "seed": s["seed"] if seed is None else seed, "method": s["method"], "arch": _get(hp, "model", "arch"),
            "dataset": _get(run, "dataset", "name"), "T": _get(hp, "model", "timesteps"), "finished": s["finished"],
            "levels": rows, "final": final, "cost": s["search_cost"],
            "early_time": _get(s, "early_time", "chosen")}


def load_experiment(exp_dir) -> dict:
    """An experiment folder: {kind: experiment, name, dir, config, runs: [load_run(...) with its label/seed]}, its
    index read (and its run folders checked) by `results.read_experiment_index`."""
    idx = results.read_experiment_index(exp_dir)
    runs = [load_run(r["run_dir"], label=r["label"], seed=r["seed"]) for r in idx["runs"]]
    return {"kind": "experiment", "name": idx["name"], "dir": str(exp_dir), "config": idx.get("config"), "runs": runs}


def load_results(paths) -> list:
    """Sections of the page, one per experiment folder, and one for all the single run folders given (each run
    its own series). A path that is neither is a one-line error naming what is expected."""
    sections, singles = [], []
    for p in paths:
        p = Path(p)
        if (p / names.EXPERIMENT_JSON).is_file():
            sections.append(load_experiment(p))
        elif (p / names.RUN_JSON).is_file():
            r = load_run(p)
            r["label"] = r["name"]  # single runs are not pooled: each is its own series
            singles.append(r)
        else:
            what = "does not exist" if not p.exists() else f"has neither {names.RUN_JSON} nor {names.EXPERIMENT_JSON}"
            raise EdgeTicketError(f"{p} {what}: give run folders (`edgeticket search`) or experiment folders "
                                  "(`edgeticket experiment`)")
    if singles:
        sections.append({"kind": "runs", "name": "runs" if len(singles) > 1 else singles[0]["name"],
                         "dir": None, "config": None, "runs": singles})
    return sections


def write_report_html(paths, out) -> Path:
    """Write the results page of run/experiment folders to `out` (atomically); returns its path."""
    return store.write_text(Path(out), report_html(load_results(paths)))


# ---------------------------------------------------------------- aggregation

def _ms(xs: list) -> tuple:
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    return statistics.mean(xs), ((max(xs) - min(xs)) / 2 if len(xs) > 1 else 0.0)


def _groups(runs: list) -> dict:
    out = {}
    for r in runs:
        out.setdefault(r["label"], []).append(r)
    return out


def _by_level(runs: list, branch: str) -> dict:
    """level -> {sparsity: [..], accuracy: [..]} over the runs (seeds) of one group, for one branch."""
    out = {}
    for r in runs:
        for row in r["levels"]:
            if row["branch"] == branch:
                e = out.setdefault(row["level"], {"sparsity": [], "accuracy": []})
                e["sparsity"].append(row["sparsity"])
                e["accuracy"].append(row["accuracy"])
    return dict(sorted(out.items()))


def _branches(runs: list) -> list:
    seen = {row["branch"] for r in runs for row in r["levels"]}
    return [b for b in BRANCH_ORDER if b in seen] + sorted(seen - set(BRANCH_ORDER))


# ---------------------------------------------------------------- sections

def _p(v, digits=2) -> str:
    return H.pct(v, digits)


def _accuracy_chart(sec_id: str, groups: dict) -> H.Raw:
    series = []
    one = len(groups) == 1
    for gi, (label, runs) in enumerate(groups.items()):
        for bi, b in enumerate(_branches(runs)):
            pts = []
            for lv in _by_level(runs, b).values():
                x, _ = _ms(lv["sparsity"])
                y, e = _ms(lv["accuracy"])
                if x is not None and y is not None:
                    pts.append((100 * x, 100 * y, 100 * e))
            name = b if one else (label if b == TICKET else f"{label}: {b}")
            color = H.PALETTE[bi % len(H.PALETTE)] if one else H.PALETTE[gi % len(H.PALETTE)]
            series.append(H.Series(name, pts, color, H.DASHES[bi % len(H.DASHES)]))
    hl = []
    if one:
        dense = _by_level(next(iter(groups.values())), TICKET).get(0)
        if dense:
            d, _ = _ms(dense["accuracy"])
            hl = [(100 * d - 1, "dense − 1 point")]
    seeds = max(len(r) for r in groups.values())
    return H.figure(H.line_chart(f"accuracy-{sec_id}", series, title="Test accuracy vs sparsity",
                                 x_label="sparsity (%)", y_label="test top-1 (%)", hlines=hl),
                    "Each point a level of the search; controls retrain the same level's mask from a random "
                    "initialisation (random-reinit) or a random mask of the same sparsity (random-mask)"
                    + (f"; mean ± half-range over up to {seeds} seeds." if seeds > 1 else "."))


def _controls(sec_id: str, groups: dict) -> list:
    parts = []
    for label, runs in groups.items():
        branches = _branches(runs)
        if len(branches) < 2 or TICKET not in branches:
            continue
        per = {b: _by_level(runs, b) for b in branches}
        levels = sorted(l for l in per[TICKET] if any(l in per[b] for b in branches if b != TICKET))
        if not levels:
            continue
        glabels = [f"level {l} ({_p(_ms(per[TICKET][l]['sparsity'])[0], 1)} sparse)" for l in levels]
        series = [H.Series(b, [100 * _ms(per[b][l]["accuracy"])[0] if l in per[b] else None for l in levels],
                           H.PALETTE[BRANCH_ORDER.index(b) if b in BRANCH_ORDER else 5]) for b in branches]
        title = "Test accuracy per level: the ticket and its controls" + ("" if len(groups) == 1 else f" ({label})")
        parts.append(H.figure(H.bar_chart(f"controls-{sec_id}-{len(parts)}", glabels, series, title=title,
                                          value_label="test top-1 (%)", texts=lambda i, g, v: f"{v:.2f}%")))
        rows = []
        for l in levels:
            t, te = _ms(per[TICKET][l]["accuracy"])
            row = [l, _p(_ms(per[TICKET][l]["sparsity"])[0]), _p(t)]
            for b in branches[1:]:
                c = _ms(per[b][l]["accuracy"])[0] if l in per[b] else None
                row += [_p(c), f"{100 * (t - c):+.2f}" if c is not None else None]
            rows.append(row)
        heads = ["level", "sparsity", "ticket"]
        for b in branches[1:]:
            heads += [b, f"ticket − {b} (points)"]
        parts.append(H.table(heads, rows, name=f"controls-{sec_id}", numeric=tuple(range(1, len(heads)))))
    return parts


def _layers_chart(sec_id: str, groups: dict) -> list:
    names_, per_group = [], {}
    for label, runs in groups.items():
        acc = {}
        for r in runs:
            for n, v in ((r.get("final") or {}).get("layers") or {}).items():
                if n not in names_:
                    names_.append(n)
                acc.setdefault(n, []).append(v)
        per_group[label] = {n: _ms(v)[0] for n, v in acc.items()}
    if not names_:
        return [H.para("No final ticket with per-layer sparsity (ticket.json) yet.", cls="note")]
    series = [H.Series(label, [100 * vals[n] if vals.get(n) is not None else None for n in names_])
              for label, vals in per_group.items()]
    finals = {label: sorted({(r.get("final") or {}).get("level") for r in runs} - {None})
              for label, runs in groups.items()}
    cap = "Final ticket: " + "; ".join(f"{label} level {', '.join(map(str, lv))}" for label, lv in finals.items())
    return [H.figure(H.bar_chart(f"layers-{sec_id}", names_, series, title="Per-layer sparsity of the final ticket",
                                 value_label="sparsity (%)", v_max=100, texts=lambda i, g, v: f"{v:.1f}%",
                                 bar_h=14 if len(series) > 2 else 18), cap)]


def _runs_table(sec_id: str, runs: list) -> H.Raw:
    rows = []
    for r in runs:
        f, c = r.get("final") or {}, r.get("cost") or {}
        name = H.join([r["name"], " ", H.badge(None, "unfinished")]) if not r.get("finished") else r["name"]
        cost = f"{H.num(c.get('wall_s'))} s, {H.num(c.get('timestep_epochs'))} T·epochs" if c else None
        rows.append([name, r["label"] if r["label"] != r["name"] else r.get("search"), r.get("seed"),
                     f"{r.get('arch')} / {r.get('dataset')}, T={r.get('T')}",
                     len([x for x in r["levels"] if x["branch"] == TICKET]),
                     ", ".join(b for b in _branches([r]) if b != TICKET) or "–", _p(f.get("sparsity")),
                     _p(f.get("accuracy")), cost, r.get("early_time")])
    return H.table(["run", "search", "seed", "network", "levels", "controls", "final sparsity", "final top-1",
                    "search cost", "ET T'"], rows, name=f"runs-{sec_id}", numeric=(6, 7, 8))


def _cost_chart(sec_id: str, groups: dict) -> list:
    if len(groups) < 2:
        return []
    labels = list(groups)
    walls = [_ms([(r.get("cost") or {}).get("wall_s") for r in groups[l]])[0] for l in labels]
    te = [_ms([(r.get("cost") or {}).get("timestep_epochs") for r in groups[l]])[0] for l in labels]
    return [H.figure(H.bar_chart(f"cost-{sec_id}", labels, [H.Series("search wall seconds", walls, H.PALETTE[2])],
                                 title="Search cost per search (mean over seeds)", value_label="wall seconds",
                                 texts=lambda i, g, v: f"{v:,.1f} s, {H.num(te[g])} timestep-epochs"))]


def _section(k: int, sec: dict) -> H.Raw:
    sec_id = str(k)
    groups = _groups(sec["runs"])
    if sec["kind"] == "experiment":
        title = f"Experiment {sec['name']}"
        config = H.join([", config ", H.code(sec["config"])]) if sec.get("config") else ""
        intro = H.para("Folder ", H.code(sec["dir"]), config, f": {len(sec['runs'])} runs in {len(groups)} searches.",
                       cls="note")
    else:
        title = "Run " + sec["name"] if len(sec["runs"]) == 1 else "Runs"
        intro = H.para("Folders: ", H.join(H.join([H.code(r["dir"]), " "]) for r in sec["runs"]), cls="note")
    if not any(r["levels"] for r in sec["runs"]):
        return H.section(title, intro, H.para("No finished level yet.", cls="note"), anchor=f"s{sec_id}")
    parts = [intro, _runs_table(sec_id, sec["runs"]), _accuracy_chart(sec_id, groups)]
    ctl = _controls(sec_id, groups)
    if ctl:
        parts += [H.Raw("<h3>The ticket against its controls</h3>")] + ctl
    else:
        parts.append(H.para("No control branches in these runs: ", H.code("edgeticket search --controls "
                            "random-reinit,random-mask"), " trains them at every level.", cls="note"))
    parts += [H.Raw("<h3>Per-layer sparsity of the final ticket</h3>")] + _layers_chart(sec_id, groups)
    parts += _cost_chart(sec_id, groups)
    return H.section(title, *parts, anchor=f"s{sec_id}")


def report_html(results: list) -> str:
    """The results page: a single self-contained HTML document (no script, nothing fetched).
    results: load_results(paths) (sections: experiment folders, and the single runs)."""
    if not results:
        raise EdgeTicketError("nothing to report: give run or experiment folders")
    parts = [_section(k, s) for k, s in enumerate(results)]
    nav = [(f"s{k}", s["name"]) for k, s in enumerate(results)] if len(results) > 1 else []
    n = sum(len(s["runs"]) for s in results)
    return H.page("edgeticket results", parts, nav=nav,
                  subtitle=f"{n} run(s) from {len(results)} input(s): accuracy vs sparsity, the ticket against its "
                           "controls, per-layer sparsity of the final ticket",
                  footer="Written by edgeticket from the run folders' summary.json / ticket.json. One file: no "
                         "script, nothing fetched.")
