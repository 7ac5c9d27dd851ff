"""The results report (docs/results.md + PNG plots), generated from experiment folders, never typed by hand.

    edgeticket report runs/experiments/cpu-fashion-mnist [more experiment folders] --out docs/results.md

Per experiment: accuracy vs sparsity of the IMP ticket and its controls (mean and spread over seeds), the
sparsity up to which the ticket stays within 1 point of dense, the ticket vs random-reinit gap per level,
Early-Time's chosen T', and search cost (wall seconds and timestep-epochs) per method with the ratios
IMP+ET / IMP and EB+ET / EB, each compared with the paper's claims.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from . import store
from .errors import EdgeTicketError
from .formats import names

PAPER = {"max_sparsity_within_1pt": 97.0, "et_cost_ratio": 0.62}  # ~97% sparse tickets; ET up to 38% less time


def _mean_spread(xs: list[float]) -> tuple[float, float]:
    return (statistics.mean(xs), (max(xs) - min(xs)) / 2 if len(xs) > 1 else 0.0)


def _fmt(ms: tuple[float, float], digits: int = 2) -> str:
    return f"{ms[0]:.{digits}f} ± {ms[1]:.{digits}f}"


def load_experiment(exp_dir: Path) -> dict:
    idx = store.read_json(Path(exp_dir) / names.EXPERIMENT_JSON, "experiment index")
    runs = defaultdict(list)  # label -> [summary per seed]
    for r in idx["runs"]:
        s = Path(r["run_dir"]) / names.SUMMARY_JSON
        if not s.is_file():
            raise EdgeTicketError(f"{r['run_dir']} has no summary.json: finish the experiment first "
                                  f"(rerun `edgeticket experiment {idx['config']}`)")
        runs[r["label"]].append({"seed": r["seed"], **store.read_json(s, "run summary")})
    return {"name": idx["name"], "config": idx["config"], "dir": str(exp_dir), "runs": dict(runs)}


def by_level(summaries: list[dict], branch: str) -> dict[int, dict]:
    """level -> {sparsity, acc: [final acc per seed]} for one branch."""
    out: dict[int, dict] = {}
    for s in summaries:
        for r in s["levels"]:
            if r["branch"] == branch:
                e = out.setdefault(r["level"], {"sparsity": r["sparsity"], "acc": [], "T": r["timesteps_trained"]})
                e["acc"].append(r["final_acc"])
    return dict(sorted(out.items()))


def analyse(exp: dict) -> dict:
    res = {"name": exp["name"], "methods": {}, "imp": None}
    for label, sums in exp["runs"].items():
        finals = [s["final_ticket"] for s in sums]
        res["methods"][label] = {
            "seeds": [s["seed"] for s in sums],
            "final_sparsity": statistics.mean(f["sparsity"] for f in finals),
            "final_acc": _mean_spread([f["final_acc"] for f in finals]),
            "wall_s": _mean_spread([s["search_cost"]["wall_s"] for s in sums]),
            "timestep_epochs": _mean_spread([float(s["search_cost"]["timestep_epochs"]) for s in sums]),
            "et_T": sorted({s["early_time"]["chosen"] for s in sums if s.get("early_time")}),
            "et_kl": [s["early_time"]["normalised_kl"] for s in sums if s.get("early_time")],
        }
    if "imp" in exp["runs"]:
        sums = exp["runs"]["imp"]
        ticket = by_level(sums, "ticket")
        dense = statistics.mean(ticket[0]["acc"]) if 0 in ticket else None
        within = [lv["sparsity"] for lv in ticket.values() if dense is not None and statistics.mean(lv["acc"]) >= dense - 1]
        controls = {b: by_level(sums, b) for b in ("random-reinit", "random-mask")}
        gaps = {}
        for level, lv in ticket.items():
            rr = controls["random-reinit"].get(level)
            if rr:
                gaps[level] = statistics.mean(lv["acc"]) - statistics.mean(rr["acc"])
        res["imp"] = {"dense_acc": dense, "levels": ticket, "controls": controls, "gaps_vs_reinit": gaps,
                      "max_sparsity_within_1pt": max(within) if within else None}
    m = res["methods"]
    for a, b in (("imp+et", "imp"), ("eb+et", "eb")):
        if a in m and b in m:
            res[f"{a}/{b}"] = {"wall": m[a]["wall_s"][0] / m[b]["wall_s"][0],
                               "timestep_epochs": m[a]["timestep_epochs"][0] / m[b]["timestep_epochs"][0],
                               "acc_delta": m[a]["final_acc"][0] - m[b]["final_acc"][0]}
    return res


def plot(res: dict, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    if res["imp"]:
        fig, ax = plt.subplots(figsize=(7, 4))
        series = [("ticket (IMP)", res["imp"]["levels"], "o-")]
        series += [(b, res["imp"]["controls"][b], s) for b, s in (("random-reinit", "s--"), ("random-mask", "^:"))]
        for name, levels, style in series:
            if not levels:
                continue
            xs = [lv["sparsity"] for lv in levels.values()]
            ms = [_mean_spread(lv["acc"]) for lv in levels.values()]
            ax.errorbar(xs, [m[0] for m in ms], yerr=[m[1] for m in ms], fmt=style, capsize=3, label=name)
        ax.set_xlabel("sparsity (%)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{res['name']}: accuracy vs sparsity (mean ± half-range over seeds)")
        ax.grid(alpha=0.3)
        ax.legend()
        f = out_dir / f"{res['name']}-accuracy.png"
        store.atomic_write(f, lambda p: fig.savefig(p, format="png", dpi=100))
        plt.close(fig)
        files.append(f.name)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = list(res["methods"])
    ax.bar(labels, [res["methods"][k]["wall_s"][0] for k in labels],
           yerr=[res["methods"][k]["wall_s"][1] for k in labels], capsize=3)
    for i, k in enumerate(labels):
        ax.annotate(f"{res['methods'][k]['timestep_epochs'][0]:.0f} T·ep", (i, res["methods"][k]["wall_s"][0]),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("search wall seconds")
    ax.set_title(f"{res['name']}: search cost per method")
    f = out_dir / f"{res['name']}-cost.png"
    fig.tight_layout()
    store.atomic_write(f, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)
    files.append(f.name)
    return files


def render(exp_dirs: list[str | Path], out: str | Path, command: str) -> str:
    out = Path(out)
    lines = ["# Results", "", f"Generated by `{command}` from the experiment folders below; do not edit by hand.", ""]
    for d in exp_dirs:
        exp = load_experiment(Path(d))
        res = analyse(exp)
        pngs = plot(res, out.parent)
        lines += [f"## {res['name']}", "", f"Config `{exp['config']}`, folder `{exp['dir']}`.", ""]
        lines += ["| method | seeds | final sparsity | final top-1 % | search wall s | timestep-epochs | ET T' |",
                  "|---|---|---|---|---|---|---|"]
        for k, m in res["methods"].items():
            lines.append(f"| {k} | {len(m['seeds'])} | {m['final_sparsity']:.2f}% | {_fmt(m['final_acc'])} | "
                         f"{_fmt(m['wall_s'], 0)} | {_fmt(m['timestep_epochs'], 0)} | "
                         f"{', '.join(map(str, m['et_T'])) or '-'} |")
        lines.append("")
        if res["imp"]:
            imp = res["imp"]
            lines += ["| level | sparsity | ticket % | random-reinit % | random-mask % | ticket - reinit |",
                      "|---|---|---|---|---|---|"]
            for level, lv in imp["levels"].items():
                rr = imp["controls"]["random-reinit"].get(level)
                rm = imp["controls"]["random-mask"].get(level)
                gap = imp["gaps_vs_reinit"].get(level)
                lines.append(f"| {level} | {lv['sparsity']:.2f}% | {_fmt(_mean_spread(lv['acc']))} | "
                             f"{_fmt(_mean_spread(rr['acc'])) if rr else '-'} | "
                             f"{_fmt(_mean_spread(rm['acc'])) if rm else '-'} | "
                             f"{f'{gap:+.2f}' if gap is not None else '-'} |")
            lines.append("")
            w = imp["max_sparsity_within_1pt"]
            top = max(lv["sparsity"] for lv in imp["levels"].values())
            paper = PAPER["max_sparsity_within_1pt"]
            if w is None:
                lines.append("- No pruned level stays within 1 point of dense.")
            elif w >= top and top < paper - 1:
                lines.append(f"- The IMP ticket stays within 1 point of dense ({imp['dense_acc']:.2f}%) at every level run; "
                             f"the sparsest was {top:.2f}% (the paper reaches ~{paper:.0f}%: run more rounds to compare).")
            else:
                lines.append(f"- The IMP ticket stays within 1 point of dense ({imp['dense_acc']:.2f}%) up to {w:.2f}% "
                             f"sparsity (paper: ~{paper:.0f}%)" + ("." if w >= paper - 1 else
                                                                   f": {paper - w:.1f} points of sparsity short of the paper."))
            if imp["gaps_vs_reinit"]:
                g = imp["gaps_vs_reinit"]
                lines.append("- Ticket minus random-reinit: " + ", ".join(f"{imp['levels'][k]['sparsity']:.1f}%: {v:+.2f}"
                                                                           for k, v in g.items()) + " points.")
        for key, paper in (("imp+et/imp", PAPER["et_cost_ratio"]), ("eb+et/eb", PAPER["et_cost_ratio"])):
            if key in res:
                r = res[key]
                verdict = "in line with" if r["wall"] <= paper + 0.05 else "above"
                lines.append(f"- {key}: wall {r['wall']:.2f}x, timestep-epochs {r['timestep_epochs']:.2f}x, final "
                             f"accuracy {r['acc_delta']:+.2f} points; {verdict} the paper's up-to-38% saving "
                             f"({paper:.2f}x).")
        for k, m in res["methods"].items():
            if m["et_kl"]:
                lines.append(f"- {k}: Early-Time chose T'={', '.join(map(str, m['et_T']))}; normalised KL "
                             f"{m['et_kl'][0]} (first seed).")
        lines += [""] + [f"![{p}]({p})" for p in pngs] + [""]
    text = "\n".join(lines)
    store.write_text(out, text)
    return text
