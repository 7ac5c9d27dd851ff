"""Summaries of a search run: table rows, CSV, a PNG (accuracy vs sparsity; search cost per level), JSON.

summary.json / summary.csv format_version 2: sparsity and accuracies (`sparsity`, `best_acc`, `final_acc`) are
fractions in [0, 1], as in ticket.json; version 1 (no format_version key) held them in percent and is converted
on read (`read_summary`). Percent appears only in what is printed (`table`) and plotted (`plot`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .. import store
from ..errors import EdgeTicketError
from ..formats import names

FORMAT_VERSION = 2
FRACTIONS = ("sparsity", "best_acc", "final_acc")  # the row fields that are fractions (percent in version 1)

COLUMNS = ["level", "branch", "sparsity", "nnz", "timesteps_trained", "best_acc", "final_acc", "wall_s",
           "timestep_epochs", "epochs", "dir"]


def row(info: dict, run_dir: Path) -> dict:
    d = names.level_dir(run_dir, info["level"])
    if info["branch"] != "ticket":
        d = names.branch_dir(run_dir, info["level"], info["branch"])
    return {"level": info["level"], "branch": info["branch"], "sparsity": round(info["sparsity"]["global"], 6),
            "nnz": info["nnz"], "timesteps_trained": info["timesteps"]["trained"],
            "best_acc": round(info["accuracy"]["best"], 6), "final_acc": round(info["accuracy"]["final"], 6),
            "wall_s": round(info["cost"]["wall_s"], 2), "timestep_epochs": info["cost"]["timestep_epochs"],
            "epochs": info["cost"]["epochs"], "dir": str(d)}


PAPER_RULE = {
    "imp": "the paper's search time (Table 1): every level before the final one, i.e. up to the final ticket's mask, "
           "before its retraining (at the full T under Early-Time); the authors' timer stops there",
    "eb": "the paper's search time (Table 1): Early-Bird's search phase, the dense training until the mask "
          "settled, before the ticket's retraining",
}


def in_paper_search(info: dict) -> bool:
    """Whether a ticket level counts in the paper's search time (PAPER_RULE): IMP levels 0..rounds-1, Early-Bird
    level 0."""
    search = info["hparams"]["search"]
    if search["method"] == "eb":
        return info["level"] == 0
    return info["level"] < int(search["rounds"])


def _cost(infos: list[dict]) -> dict:
    return {"wall_s": round(sum(i["cost"]["wall_s"] for i in infos), 2),
            "timestep_epochs": sum(i["cost"]["timestep_epochs"] for i in infos),
            "epochs": sum(i["cost"]["epochs"] for i in infos), "levels": [i["level"] for i in infos]}


def search_cost(tickets: list[dict]) -> dict:
    """The search's cost two ways, from its ticket levels' ticket.json: `paper` (PAPER_RULE: what Table 1's times
    measure) and `total` (every level, the final retraining included)."""
    tickets = [t for t in tickets if t.get("branch", "ticket") == "ticket"]
    method = tickets[0]["hparams"]["search"]["method"] if tickets else "imp"
    return {"paper": {**_cost([t for t in tickets if in_paper_search(t)]), "rule": PAPER_RULE[method]},
            "total": _cost(tickets)}


def summarise(run_dir: Path, tickets: list[dict], controls: list[dict]) -> dict:
    run_dir = Path(run_dir)
    rows = [row(i, run_dir) for i in tickets] + [row(i, run_dir) for i in controls]
    search = [r for r in rows if r["branch"] == "ticket"]
    et = store.read_json(run_dir / names.ET_JSON) if (run_dir / names.ET_JSON).is_file() else None
    final = search[-1] if search else None
    eb = next((i["early_bird"] for i in tickets if "early_bird" in i), None)
    return {
        "format_version": FORMAT_VERSION,
        "kind": "search-summary",
        "run_dir": str(run_dir),
        "method": tickets[0]["hparams"]["search"]["method"] if tickets else None,
        "hparams": tickets[0]["hparams"] if tickets else None,
        "early_time": et,
        "early_bird": {k: eb.get(k) for k in ("variant", "target_sparsity", "converged", "stop_epoch",
                                                     "rewind_epoch")} if eb else None,
        "levels": rows,
        "final_ticket": final,
        "search_cost": {"wall_s": round(sum(r["wall_s"] for r in search), 2),
                        "timestep_epochs": sum(r["timestep_epochs"] for r in search),
                        "epochs": sum(r["epochs"] for r in search)},
        "search_cost_paper": search_cost(tickets)["paper"] if tickets else None,
    }


def read_summary(run_dir: Path) -> dict:
    """A run's summary.json as FORMAT_VERSION has it: the one place a version-1 file (percent) is converted."""
    path = Path(run_dir) / names.SUMMARY_JSON
    s = store.read_json(path, "run summary")
    got = s.get("format_version", 1) if isinstance(s, dict) else None
    if got not in (1, FORMAT_VERSION):
        raise EdgeTicketError(f"{path} has format_version {got!r}; this edgeticket reads versions 1 and "
                              f"{FORMAT_VERSION}: upgrade edgeticket")
    if got == 1:
        def frac(r):
            return {**r, **{k: r[k] / 100.0 for k in FRACTIONS if r.get(k) is not None}}

        s = dict(s, format_version=FORMAT_VERSION, kind="search-summary", levels=[frac(r) for r in s["levels"]])
        if s.get("final_ticket"):
            s["final_ticket"] = frac(s["final_ticket"])
    return s


def _pct(x) -> str:
    return f"{100 * x:.2f}"


def table(summary: dict) -> str:
    cols = ["level", "branch", "sparsity", "timesteps_trained", "best_acc", "final_acc", "wall_s", "timestep_epochs"]
    heads = ["level", "branch", "sparsity %", "T", "best %", "final %", "wall s", "T*epochs"]
    lines = [heads] + [[_pct(r[c]) if c in FRACTIONS else str(r[c]) for c in cols] for r in summary["levels"]]
    widths = [max(len(l[i]) for l in lines) for i in range(len(heads))]
    out = ["  ".join(v.rjust(w) for v, w in zip(l, widths)) for l in lines]
    c = summary["search_cost"]
    out.append(f"search cost: {c['wall_s']} s, {c['timestep_epochs']} timestep-epochs over {c['epochs']} epochs")
    pc = summary.get("search_cost_paper")
    if pc:
        out.append(f"paper's search time (levels {', '.join(map(str, pc['levels'])) or 'none'}, before the final "
                   f"retraining): {pc['wall_s']} s, {pc['timestep_epochs']} timestep-epochs over {pc['epochs']} epochs")
    if summary.get("early_time"):
        out.append(f"early-time: searched at T'={summary['early_time']['chosen']}, "
                   f"normalised KL {summary['early_time']['normalised_kl']}")
    eb = summary.get("early_bird")
    if eb:
        settled = f"mask settled after epoch {eb['stop_epoch']}" if eb.get("converged") else "mask never settled"
        k = (summary.get("hparams") or {}).get("search", {}).get("rewind_epoch")
        r = eb.get("rewind_epoch")
        rewound = "" if r is None else f"; ticket rewound to epoch {r}" + (
            f" (the stop epoch: --rewind-epoch {k} was not reached)" if k is not None and r != k else "")
        out.append(f"early-bird: {settled}{rewound}")
    out.append(f"run folder: {summary['run_dir']}")
    return "\n".join(out)


def write_summary(run_dir: Path, summary: dict) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    for r in summary["levels"]:
        w.writerow(r)
    store.write_text(Path(run_dir) / names.SUMMARY_CSV, buf.getvalue())
    store.write_json(Path(run_dir) / names.SUMMARY_JSON, summary)
    plot(summary, Path(run_dir) / names.SUMMARY_PNG)


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["levels"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for branch, style in (("ticket", "o-"), ("random-reinit", "s--"), ("random-mask", "^:")):
        pts = sorted((100 * r["sparsity"], 100 * r["final_acc"]) for r in rows if r["branch"] == branch)
        if pts:
            ax1.plot([p[0] for p in pts], [p[1] for p in pts], style, label=branch)
    ax1.set_xlabel("sparsity (%)")
    ax1.set_ylabel("test accuracy (%)")
    ax1.set_title("accuracy vs sparsity")
    ax1.grid(alpha=0.3)
    ax1.legend()
    search = [r for r in rows if r["branch"] == "ticket"]
    ax2.bar([str(r["level"]) for r in search], [r["wall_s"] for r in search],
            color=["tab:orange" if r["timesteps_trained"] < max(x["timesteps_trained"] for x in search) else "tab:blue"
                   for r in search])
    for i, r in enumerate(search):
        ax2.annotate(f"T={r['timesteps_trained']}", (i, r["wall_s"]), ha="center", va="bottom", fontsize=8)
    ax2.set_xlabel("level")
    ax2.set_ylabel("wall seconds")
    ax2.set_title(f"search cost per level (total {summary['search_cost']['wall_s']} s)")
    fig.tight_layout()
    store.atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)
