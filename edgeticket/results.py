"""The results report (docs/results.md + PNG plots), generated from run and experiment folders, never typed by hand.

    edgeticket report runs/experiments/cpu-fashion-mnist [more experiment or run folders] --out docs/results.md

An input is an experiment folder (experiment.json: several searches x seeds) or a single run folder (run.json +
level_*/ ticket folders; an unfinished run is reported from its finished levels). Per input and per search in it
(a group: one label, its seeds): accuracy vs sparsity of the ticket and its controls (mean and half-range over
seeds), the sparsity up to which the ticket stays within 1 point of dense, the ticket minus control gaps, the
Early-Bird and Early-Time decisions, and search cost (wall seconds and timestep-epochs); across the groups of an
input, the Early-Time cost ratios IMP+ET / IMP and EB+ET / EB. A claim of the paper is compared only where the
runs test it (the sparsity reached, the same settings but Early-Time); otherwise the report says what is missing.

`facts(inputs)` returns all of it as data (JSON-able, fractions; every conclusion with its sentence as `text`);
`report(inputs, out, command)` writes the markdown (percent) and the plots and returns the facts.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from . import store
from .errors import EdgeTicketError
from .formats import names
from .formats import ticket as ticket_fmt

REPORT_FORMAT_VERSION = 1  # of the facts' JSON (`edgeticket report --json`)
# the paper's claims: IMP tickets within 1 point of dense up to ~97% sparsity; Early-Time up to 38% less search time
PAPER = {"sparsity_within_1pt": 0.97, "et_cost_ratio": 0.62,
         # Table 1: how much faster the search with Early-Time is, on the paper's search time (min, max over its rows)
         "et_speedup": {"imp": (1.34, 1.59), "eb": (1.12, 1.52)}}
WITHIN = 0.01  # "within 1 point of dense": top-1 accuracy, as a fraction
REACH = 0.005  # a level counts as reaching the paper's ~97% from 96.5% (IMP at prune rate 0.25: 12 rounds, 96.8%)
CONTROLS = ("random-reinit", "random-mask")
VALID = ("a run folder (run.json and level_*/ ticket folders, written by `edgeticket search`) or an experiment "
         "folder (experiment.json, written by `edgeticket experiment`)")


# ---- formatting: files hold fractions, people read percent ---------------------------------------------------------
def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def _pts(delta: float) -> str:
    return f"{100 * delta:+.2f}"


def _ms(stat: dict | None, digits: int = 2, scale: float = 100.0) -> str:
    if stat is None:
        return "-"
    return f"{scale * stat['mean']:.{digits}f} ± {scale * stat['spread']:.{digits}f}"


def _stat(xs: list[float]) -> dict:
    """Mean and half-range over seeds, with the values."""
    xs = [float(x) for x in xs]
    return {"mean": statistics.mean(xs), "spread": (max(xs) - min(xs)) / 2 if len(xs) > 1 else 0.0, "per_seed": xs}


# ---- loading --------------------------------------------------------------------------------------------------------
def input_kind(path: str | Path) -> str:
    """'experiment' or 'run'; anything else is a one-line error naming what a valid folder contains."""
    p = Path(path)
    if (p / names.EXPERIMENT_JSON).is_file():
        return "experiment"
    if (p / names.RUN_JSON).is_file():
        return "run"
    what = "does not exist" if not p.exists() else "is not a folder" if not p.is_dir() else \
        f"has neither {names.RUN_JSON} nor {names.EXPERIMENT_JSON}"
    run = next((a for a in (p.parent, p.parent.parent) if (a / names.RUN_JSON).is_file()), None)
    if (p / names.TICKET_JSON).is_file() and run is not None:
        what = f"is a ticket folder of the run {run}, pass that"
    raise EdgeTicketError(f"{p} {what}: `edgeticket report` takes {VALID}")


def _level_number(d: Path) -> int | None:
    tail = d.name[len("level_"):]
    return int(tail) if d.name.startswith("level_") and tail.isdigit() else None


def _finished_infos(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """ticket.json of every finished ticket folder of a run (levels, then control branches), by level."""
    levels = sorted((_level_number(d), d) for d in run_dir.iterdir() if d.is_dir() and _level_number(d) is not None)
    tickets, controls = [], []
    for _, d in levels:
        if names.is_finished(d):
            tickets.append(ticket_fmt.read_info(d))
        for b in CONTROLS:
            bd = d / f"branch_{b}"
            if names.is_finished(bd):
                controls.append(ticket_fmt.read_info(bd))
    return tickets, controls


def planned_levels(hparams: dict) -> int:
    """Ticket levels a finished search has: IMP level 0..rounds, Early-Bird the dense phase and the ticket."""
    search = hparams.get("search") if isinstance(hparams, dict) else None
    method = search.get("method") if isinstance(search, dict) else None
    rounds = search.get("rounds") if isinstance(search, dict) else None
    if method == "eb":
        return 2
    if isinstance(rounds, int) and not isinstance(rounds, bool) and rounds >= 1:
        return rounds + 1
    raise EdgeTicketError(f"the run's settings lack a valid search.method/rounds (method {method!r}, rounds {rounds!r}): "
                          "its run.json or summary.json was altered; restore it, or rerun the search")


def load_run(run_dir: str | Path) -> dict:
    """A run's summary (fractions; search/summary.py's format) with `finished`, `seed`, `name`, `hparams` and
    `planned_levels` added. A run without summary.json (still running, or killed) is summarised from its finished
    ticket folders."""
    from .search.summary import read_summary, summarise

    run_dir = Path(run_dir)
    run = store.read_json(run_dir / names.RUN_JSON, "run.json")
    if (run_dir / names.SUMMARY_JSON).is_file():
        s = read_summary(run_dir)
        finished = True
    else:
        tickets, controls = _finished_infos(run_dir)
        if not tickets:
            raise EdgeTicketError(f"{run_dir} has no finished level yet (no level_*/{names.TICKET_JSON}): let the "
                                  f"search finish level 0, or resume it with `edgeticket search --resume {run_dir}`")
        s = summarise(run_dir, tickets, controls)
        finished = False
    hp = s.get("hparams") or run["hparams"]
    done = sum(1 for r in s["levels"] if r["branch"] == "ticket")
    return {**s, "run_dir": str(run_dir), "name": run.get("name", run_dir.name), "hparams": hp,
            "method": s.get("method") or hp["search"]["method"], "seed": hp["training"]["seed"],
            "finished": finished and done >= planned_levels(hp), "planned_levels": planned_levels(hp)}


def _label(s: dict) -> str:
    return s["method"] + ("+et" if s["hparams"]["search"].get("early_time") else "")


def load_input(path: str | Path) -> dict:
    """{kind, name, dir, config, groups: {label: [run summary per seed]}} of a run or an experiment folder."""
    p = Path(path)
    kind = input_kind(p)
    if kind == "run":
        s = load_run(p)
        return {"kind": "run", "name": s["name"], "dir": str(p), "config": None, "groups": {_label(s): [s]}}
    idx = read_experiment_index(p)
    groups: dict[str, list[dict]] = {}
    for r in idx["runs"]:
        groups.setdefault(r["label"], []).append(load_run(r["run_dir"]))
    return {"kind": "experiment", "name": idx["name"], "dir": str(p), "config": idx.get("config"), "groups": groups}


EXPERIMENT_FORMAT_VERSION = 1  # of experiment.json (experiment.py writes it)


def read_experiment_index(exp_dir: str | Path) -> dict:
    """experiment.json of an experiment folder, checked before anything is reported: its format_version, its
    fields, and every run folder it cites: a run folder (run.json) that is finished (summary.json) or has at
    least one finished level (level_*/ticket.json). A run folder that moved with the experiment folder is found
    inside it; `run_dir` of each run is replaced by the folder found."""
    p = Path(exp_dir)
    f = p / names.EXPERIMENT_JSON
    idx = store.read_json(f, "experiment index")
    rerun = "rerun `edgeticket experiment CONFIG` to re-create it"
    if not isinstance(idx, dict):
        raise EdgeTicketError(f"{f} is not an experiment index (a JSON object); {rerun}")
    if idx.get("format_version") != EXPERIMENT_FORMAT_VERSION or idx.get("kind", "experiment") != "experiment":
        raise EdgeTicketError(f"{f} has format_version {idx.get('format_version')!r} (kind {idx.get('kind')!r}); this "
                              f"edgeticket reads experiment.json format_version {EXPERIMENT_FORMAT_VERSION}: upgrade "
                              f"edgeticket, or {rerun}")
    runs = idx.get("runs")
    if not isinstance(idx.get("name"), str) or not isinstance(runs, list) or not runs:
        raise EdgeTicketError(f"{f} lacks its name or its runs (a non-empty list); {rerun}")
    config = idx.get("config") or "CONFIG"
    checked = []
    for i, r in enumerate(runs):
        if not isinstance(r, dict) or not isinstance(r.get("label"), str) or not isinstance(r.get("run_dir"), str) \
                or not isinstance(r.get("seed"), int) or isinstance(r.get("seed"), bool):
            raise EdgeTicketError(f"{f}: run {i} needs a label, a seed and a run_dir; {rerun}")
        rd = Path(r["run_dir"])
        if not (rd / names.RUN_JSON).is_file() and rd.name and (p / rd.name / names.RUN_JSON).is_file():
            rd = p / rd.name  # the experiment folder was moved: its runs are inside it
        where = f"{r['run_dir']} (cited by {f}, '{r['label']}' seed {r['seed']})"
        if not (rd / names.RUN_JSON).is_file():
            what = "does not exist" if not rd.exists() else f"is not a run folder (no {names.RUN_JSON})"
            raise EdgeTicketError(f"{where} {what}: rerun `edgeticket experiment {config}`")
        levels = [d for d in rd.iterdir() if d.is_dir() and _level_number(d) is not None]
        if not (rd / names.SUMMARY_JSON).is_file() and not any(names.is_finished(d) for d in levels):
            raise EdgeTicketError(f"{where} has no finished level (no {names.SUMMARY_JSON}, no level_*/"
                                  f"{names.TICKET_JSON}): rerun `edgeticket experiment {config}` to finish it")
        checked.append({**r, "run_dir": rd})
    return {**idx, "runs": checked}


# ---- analysis: facts and conclusions (data first, each with the sentence it renders to) -----------------------------
def _levels(sums: list[dict]) -> list[dict]:
    """Per ticket level over seeds: sparsity, T, accuracy, each control's accuracy, the ticket - control gaps."""
    by: dict[int, dict] = {}
    for s in sums:
        for r in s["levels"]:
            e = by.setdefault(r["level"], {"sparsity": [], "T": set(), "ticket": [], **{b: [] for b in CONTROLS}})
            e["ticket" if r["branch"] == "ticket" else r["branch"]].append(r["final_acc"])
            if r["branch"] == "ticket":
                e["sparsity"].append(r["sparsity"])
                e["T"].add(r["timesteps_trained"])
    out = []
    for level, e in sorted(by.items()):
        if not e["ticket"]:
            continue
        acc = _stat(e["ticket"])
        ctrl = {b: _stat(e[b]) for b in CONTROLS if e[b]}
        out.append({"level": level, "sparsity": statistics.mean(e["sparsity"]), "timesteps": sorted(e["T"]),
                    "accuracy": acc, "controls": ctrl,
                    "gaps": {b: acc["mean"] - c["mean"] for b, c in ctrl.items()}})
    return out


def _rounds_to_reach(prune_rate: float, target: float) -> int:
    return math.ceil(math.log(1 - target) / math.log(1 - prune_rate))


def _dense_conclusions(label: str, method: str, levels: list[dict], hp: dict) -> list[dict]:
    """The ticket against dense (level 0) and against the paper's ~97%."""
    out: list[dict] = []
    dense = next((lv for lv in levels if lv["level"] == 0 and lv["sparsity"] == 0), None)
    pruned = [lv for lv in levels if lv["level"] > 0]
    if not pruned:
        out.append({"kind": "no-pruned-level", "text": f"{label}: only the dense network (level 0) is finished: "
                    "there is no pruned ticket to compare yet."})
        return out
    if dense is None:
        return out
    d = dense["accuracy"]["mean"]
    if method == "eb":
        return out  # Early-Bird's level 0 is stopped early: it is no dense baseline (see the early-bird conclusion)
    # compare only levels trained at the dense level's T (Early-Time searches at T', retrains the last at T)
    same_t = [lv for lv in pruned if lv["timesteps"] == dense["timesteps"]]
    other_t = [lv for lv in pruned if lv["timesteps"] != dense["timesteps"]]
    dense_t = ", ".join(map(str, dense["timesteps"])) + (" over the seeds" if len(dense["timesteps"]) > 1 else "")
    if not same_t:
        out.append({"kind": "accuracy-vs-dense", "dense_accuracy": d, "compared_levels": [],
                    "max_sparsity_within_1pt": None, "text": f"{label}: no pruned level was trained at the same T "
                    f"as the dense level (T={dense_t}; Early-Time): the ticket's accuracy is not compared with dense."})
        return out
    w, first_out = None, None
    for lv in same_t:  # the contiguous run of levels within 1 point, from the least sparse
        if lv["accuracy"]["mean"] >= d - WITHIN:
            w = lv["sparsity"]
        else:
            first_out = lv
            break
    top = same_t[-1]["sparsity"]
    scope = "" if not other_t else (f" (of the pruned levels trained at T={dense_t} like the dense level; "
                                    f"{len(other_t)} level(s) trained at another T are not compared)")
    if w is None:
        text = (f"{label}: no pruned level stays within 1 point of dense ({_pct(d)}): at {_pct(first_out['sparsity'])} "
                f"sparsity the ticket reaches {_pct(first_out['accuracy']['mean'])}{scope}.")
    elif first_out is None:
        text = (f"{label}: the ticket stays within 1 point of dense ({_pct(d)}) at every "
                + ("pruned level" if not other_t else "compared level") + f", up to {_pct(top)} sparsity{scope}.")
    else:
        text = (f"{label}: the ticket stays within 1 point of dense ({_pct(d)}) up to {_pct(w)} sparsity; at "
                f"{_pct(first_out['sparsity'])} it reaches {_pct(first_out['accuracy']['mean'])} "
                f"({_pts(first_out['accuracy']['mean'] - d)} points){scope}.")
    out.append({"kind": "accuracy-vs-dense", "dense_accuracy": d, "compared_levels": [lv["level"] for lv in same_t],
                "max_sparsity_within_1pt": w, "sparsest": top,
                "first_level_outside": first_out["level"] if first_out else None, "text": text})
    paper = PAPER["sparsity_within_1pt"]
    reached = top >= paper - REACH
    fact = {"kind": "paper-sparsity", "paper_sparsity": paper, "sparsest": top, "tested": reached}
    if not reached:
        rate = hp.get("pruning", {}).get("prune_rate")
        hint = (f"; at prune rate {rate:g} that takes --rounds {_rounds_to_reach(rate, paper - REACH)} or more"
                if rate else "")
        which = "level here" if not other_t else f"level compared with dense (trained at T={dense_t})"
        fact["text"] = (f"{label}: the paper's claim (within 1 point of dense up to ~{_pct(paper, 0)} sparsity) is "
                        f"not tested: the sparsest {which} is {_pct(top)}{hint}.")
    elif w is not None and w >= paper - REACH:
        fact["text"] = (f"{label}: in line with the paper: within 1 point of dense up to {_pct(w)} sparsity "
                        f"(paper: ~{_pct(paper, 0)}).")
    elif w is None:
        fact["short_by"] = None
        fact["text"] = (f"{label}: the run reaches {_pct(top)} sparsity but no pruned level stays within 1 point of "
                        f"dense; the paper's tickets do up to ~{_pct(paper, 0)} sparsity.")
    else:
        fact["short_by"] = paper - w
        fact["text"] = (f"{label}: the run reaches {_pct(top)} sparsity but stays within 1 point of dense only up to "
                        f"{_pct(w)} (paper: ~{_pct(paper, 0)}): {100 * fact['short_by']:.1f} points of sparsity short "
                        "of the paper.")
    out.append(fact)
    return out


def _control_conclusions(label: str, levels: list[dict]) -> list[dict]:
    pruned = [lv for lv in levels if lv["level"] > 0]
    if not pruned:
        return []
    out = []
    run_any = set().union(*(lv["controls"] for lv in pruned))
    if not run_any:
        return [{"kind": "no-controls", "text": f"{label}: no control branches were run (`edgeticket search --controls "
                 "random-reinit,random-mask`): whether the ticket beats a random re-initialisation or a random mask "
                 "is not tested."}]
    for b in CONTROLS:
        gaps = [{"level": lv["level"], "sparsity": lv["sparsity"], "gap": lv["gaps"][b]} for lv in pruned
                if b in lv["gaps"]]
        if not gaps:
            continue
        wins = sum(g["gap"] > 0 for g in gaps)
        name = f"ticket minus {b}"
        out.append({"kind": f"ticket-vs-{b}", "gaps": gaps, "ticket_better_at": wins, "levels": len(gaps),
                    "text": f"{label}: {name}: " + ", ".join(f"{_pct(g['sparsity'], 1)}: {_pts(g['gap'])}"
                                                             for g in gaps)
                    + f" points (the ticket is better at {wins} of {len(gaps)} level(s))."})
    return out


def _early_bird_conclusion(label: str, sums: list[dict], levels: list[dict]) -> list[dict]:
    ebs = [s.get("early_bird") for s in sums]
    dense = next((lv for lv in levels if lv["level"] == 0), None)
    ticket = next((lv for lv in levels if lv["level"] == 1), None)
    parts = []
    if all(ebs):
        settled = [e["stop_epoch"] for e in ebs if e.get("converged")]
        epochs = sums[0]["hparams"]["training"]["epochs"]
        if len(settled) == len(ebs):
            parts.append(f"the mask settled after epoch {', '.join(map(str, settled))} of {epochs}")
        elif settled:
            parts.append(f"the mask settled in {len(settled)} of {len(ebs)} seeds (after epoch "
                         f"{', '.join(map(str, settled))} of {epochs}); the others used the mask after the last epoch")
        else:
            parts.append(f"the mask never settled in {epochs} epochs: the mask after the last epoch was used")
    if ticket:
        parts.append(f"the ticket at {_pct(ticket['sparsity'])} sparsity reaches {_pct(ticket['accuracy']['mean'])}"
                     + (f" vs {_pct(dense['accuracy']['mean'])} of the dense phase (stopped early: not a fully "
                        "trained dense baseline)" if dense else ""))
    if not parts:
        return []
    return [{"kind": "early-bird", "per_seed": ebs if all(ebs) else None,
             "ticket_accuracy": ticket["accuracy"]["mean"] if ticket else None,
             "dense_phase_accuracy": dense["accuracy"]["mean"] if dense else None,
             "text": f"{label}: Early-Bird: " + "; ".join(parts) + "."}]


def _early_time_conclusion(label: str, sums: list[dict]) -> list[dict]:
    runs = [(s["seed"], s["early_time"]) for s in sums if s.get("early_time")]
    if not runs:
        return []

    def choice(e: dict) -> str:
        full = e.get("full_timesteps")
        if e["chosen"] == full:
            return f"the full T={full} (no candidate's normalised KL was below {e.get('threshold', 'the threshold')})"
        return f"T'={e['chosen']}" + (f" of T={full}" if full else "")

    kl = runs[0][1].get("normalised_kl")
    kl_txt = ", ".join(f"T'={k}: {v:.3f}" for k, v in sorted(kl.items(), key=lambda kv: int(kv[0]))) if kl else ""
    if len({e["chosen"] for _, e in runs}) == 1:
        chose = choice(runs[0][1])
    else:
        chose = "differently per seed: " + "; ".join(f"seed {seed} {choice(e)}" for seed, e in runs)
    text = (f"{label}: Early-Time chose {chose}" + (f"; normalised KL {kl_txt}" + (" (first seed)" if len(runs) > 1
                                                                                else "") if kl_txt else "") + ".")
    return [{"kind": "early-time", "seeds": [seed for seed, _ in runs], "chosen": [e["chosen"] for _, e in runs],
             "full_timesteps": runs[0][1].get("full_timesteps"),
             "normalised_kl": [e.get("normalised_kl") for _, e in runs],
             "text": text}]


def _unfinished_conclusion(label: str, sums: list[dict]) -> list[dict]:
    left = [s for s in sums if not s["finished"]]
    if not left:
        return []
    runs = [{"run_dir": s["run_dir"], "levels_done": sum(r["branch"] == "ticket" for r in s["levels"]),
             "levels_planned": s["planned_levels"]} for s in left]
    return [{"kind": "unfinished", "runs": runs, "text": f"{label}: not finished: " + "; ".join(
        f"{r['run_dir']} has {r['levels_done']} of {r['levels_planned']} levels" for r in runs)
        + ": the numbers are those of the finished levels (resume with `edgeticket search --resume RUN`)."}]


def analyse_group(label: str, sums: list[dict]) -> dict:
    """One search over its seeds: the facts and conclusions (fractions)."""
    method = sums[0]["method"]
    hp = sums[0]["hparams"]
    levels = _levels(sums)
    finals = [s["final_ticket"] for s in sums if s.get("final_ticket")]
    g = {
        "label": label, "method": method, "early_time": bool(hp["search"].get("early_time")),
        "seeds": [s["seed"] for s in sums], "runs": [s["run_dir"] for s in sums],
        "finished": all(s["finished"] for s in sums),
        "levels": levels,
        "final": {"level": finals[0]["level"], "sparsity": statistics.mean(f["sparsity"] for f in finals),
                  "accuracy": _stat([f["final_acc"] for f in finals])} if finals else None,
        "search_cost": {"wall_s": _stat([s["search_cost"]["wall_s"] for s in sums]),
                        "timestep_epochs": _stat([s["search_cost"]["timestep_epochs"] for s in sums])},
        "search_cost_paper": _paper_cost(sums),
        "early_time_T": sorted({s["early_time"]["chosen"] for s in sums if s.get("early_time")}),
    }
    g["conclusions"] = (_unfinished_conclusion(label, sums) + _dense_conclusions(label, method, levels, hp)
                        + (_early_bird_conclusion(label, sums, levels) if method == "eb" else [])
                        + _control_conclusions(label, levels) + _early_time_conclusion(label, sums))
    return g


def _paper_cost(sums: list[dict]) -> dict | None:
    """The paper's search time (search/summary.py PAPER_RULE) over seeds; None for runs summarised before it was
    recorded."""
    pcs = [s.get("search_cost_paper") for s in sums]
    if not all(pcs):
        return None
    return {"wall_s": _stat([c["wall_s"] for c in pcs]), "timestep_epochs": _stat([c["timestep_epochs"] for c in pcs]),
            "rule": pcs[0]["rule"]}


# settings that may differ between a search with Early-Time and the one without it it is compared with (the
# control branches are not part of the search cost)
IGNORED_FOR_ET = {("search", "early_time"), ("search", "et_threshold"), ("search", "et_candidates"),
                  ("search", "et_check_epoch"), ("search", "et_check_batch"), ("search", "et_check_augment"),
                  ("search", "et_check_bn"), ("search", "et_kl"), ("search", "et_loss_divisor"), ("search", "controls"),
                  ("training", "seed"), ("data", "data_dir")}


def _with_defaults(hp: dict) -> dict:
    """A run's settings with those added to edgeticket after it ran at their defaults (the old behaviour)."""
    from .hparams import SearchConfig

    try:
        return SearchConfig.from_dict(hp).to_dict()
    except (EdgeTicketError, TypeError):
        return hp


def _differences(a: dict, b: dict) -> list[str]:
    a, b = _with_defaults(a), _with_defaults(b)
    return sorted(f"{sec}.{k}" for sec in a for k in set(a[sec]) | set(b.get(sec, {}))
                  if (sec, k) not in IGNORED_FOR_ET and a[sec].get(k) != b.get(sec, {}).get(k))


def _et_comparisons(groups: list[dict], sums: dict[str, list[dict]]) -> list[dict]:
    """Early-Time's cost against the same search without it, where one group of each is in the input."""
    out = []
    for method in ("imp", "eb"):
        with_et = [g for g in groups if g["method"] == method and g["early_time"]]
        without = [g for g in groups if g["method"] == method and not g["early_time"]]
        if len(with_et) != 1 or len(without) != 1:
            continue
        a, b = with_et[0], without[0]
        key = f"{a['label']}/{b['label']}"
        fact = {"kind": "early-time-cost", "method": method, "with": a["label"], "without": b["label"],
                "paper_ratio": PAPER["et_cost_ratio"]}
        diff = _differences(sums[a["label"]][0]["hparams"], sums[b["label"]][0]["hparams"])
        if diff or not (a["finished"] and b["finished"]) or not (a["final"] and b["final"]):
            why = (f"their settings differ besides Early-Time ({', '.join(diff)})" if diff
                   else "not both searches are finished")
            out.append({**fact, "compared": False, "reason": why,
                        "text": f"{key}: search cost not compared: {why}."})
            continue
        wall = a["search_cost"]["wall_s"]["mean"] / b["search_cost"]["wall_s"]["mean"]
        te = a["search_cost"]["timestep_epochs"]["mean"] / b["search_cost"]["timestep_epochs"]["mean"]
        delta = a["final"]["accuracy"]["mean"] - b["final"]["accuracy"]["mean"]
        p = PAPER["et_cost_ratio"]
        verdict = ("a larger saving than" if wall < p - 0.05 else "in line with" if wall <= p + 0.05
                   else "a smaller saving than")
        out.append({**fact, "compared": True, "wall_ratio": wall, "timestep_epochs_ratio": te, "accuracy_delta": delta,
                    "verdict": verdict, **_paper_metric(a, b, method),
                    "text": f"{key}: wall {wall:.2f}x, timestep-epochs {te:.2f}x, final accuracy {_pts(delta)} points; "
                            f"{verdict} the paper's (up to 38% less search time: {p:.2f}x)." + _paper_text(a, b, method)})
    return out


def _paper_metric(a: dict, b: dict, method: str) -> dict:
    """With Early-Time (a) vs without (b) on the paper's search time: the speed-up, beside Table 1's range."""
    pa, pb = a.get("search_cost_paper"), b.get("search_cost_paper")
    if not (pa and pb) or not pa["wall_s"]["mean"]:
        return {}
    return {"paper_metric": {"speedup": pb["wall_s"]["mean"] / pa["wall_s"]["mean"],
                             "timestep_epochs_speedup": pb["timestep_epochs"]["mean"] / pa["timestep_epochs"]["mean"],
                             "table1_speedup": list(PAPER["et_speedup"][method]), "rule": pa["rule"]}}


def _paper_text(a: dict, b: dict, method: str) -> str:
    m = _paper_metric(a, b, method).get("paper_metric")
    if m is None:
        return ""
    lo, hi = m["table1_speedup"]
    return (f" On the paper's search time (before the final retraining): {m['speedup']:.2f}x faster "
            f"({m['timestep_epochs_speedup']:.2f}x in timestep-epochs); Table 1: {lo:.2f}-{hi:.2f}x.")


def analyse_input(inp: dict) -> dict:
    groups = [analyse_group(label, sums) for label, sums in inp["groups"].items()]
    return {"kind": inp["kind"], "name": inp["name"], "dir": inp["dir"], "config": inp["config"], "groups": groups,
            "comparisons": _et_comparisons(groups, inp["groups"])}


def facts(inputs: list[str | Path]) -> dict:
    """Everything the report says, as data: per input (run or experiment folder) its groups (per search: seeds,
    levels with sparsity and accuracy fractions, controls, final ticket, search cost, conclusions) and the
    comparisons across groups. JSON-able."""
    if not inputs:
        raise EdgeTicketError(f"`edgeticket report` needs at least one folder: {VALID}")
    return {"format_version": REPORT_FORMAT_VERSION, "kind": "report",
            "inputs": [analyse_input(load_input(p)) for p in inputs]}


# ---- rendering: markdown (percent) and plots ------------------------------------------------------------------------
def _slug(name: str, taken: set) -> str:
    s = "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "report"
    k, out = 2, s
    while out in taken:
        out, k = f"{s}-{k}", k + 1
    taken.add(out)
    return out


def plot(inp: dict, out_dir: Path, slug: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    with_levels = [g for g in inp["groups"] if len(g["levels"]) > 1]
    if with_levels:
        fig, ax = plt.subplots(figsize=(7, 4))
        for g in with_levels:
            series = [(f"{g['label']} ticket", [(lv["sparsity"], lv["accuracy"]) for lv in g["levels"]], "o-")]
            series += [(f"{g['label']} {b}", [(lv["sparsity"], lv["controls"][b]) for lv in g["levels"]
                                              if b in lv["controls"]], style)
                       for b, style in (("random-reinit", "s--"), ("random-mask", "^:"))]
            for name, pts, style in series:
                if pts:
                    ax.errorbar([100 * x for x, _ in pts], [100 * a["mean"] for _, a in pts],
                                yerr=[100 * a["spread"] for _, a in pts], fmt=style, capsize=3, label=name)
        ax.set_xlabel("sparsity (%)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{inp['name']}: accuracy vs sparsity (mean ± half-range over seeds)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        f = out_dir / f"{slug}-accuracy.png"
        store.atomic_write(f, lambda p: fig.savefig(p, format="png", dpi=100))
        plt.close(fig)
        files.append(f.name)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = [g["label"] for g in inp["groups"]]
    costs = [g["search_cost"] for g in inp["groups"]]
    ax.bar(labels, [c["wall_s"]["mean"] for c in costs], yerr=[c["wall_s"]["spread"] for c in costs], capsize=3)
    for i, c in enumerate(costs):
        ax.annotate(f"{c['timestep_epochs']['mean']:.0f} T·ep", (i, c["wall_s"]["mean"]), ha="center", va="bottom",
                    fontsize=8)
    ax.set_ylabel("search wall seconds")
    ax.set_title(f"{inp['name']}: search cost per method", fontsize=9)
    fig.tight_layout()
    f = out_dir / f"{slug}-cost.png"
    store.atomic_write(f, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)
    files.append(f.name)
    return files


def _markdown(inp: dict, pngs: list[str]) -> list[str]:
    lines = [f"## {inp['name']}", ""]
    if inp["kind"] == "experiment":
        lines += [f"Experiment: config `{inp['config']}`, folder `{inp['dir']}`.", ""]
    else:
        g = inp["groups"][0]
        lines += [f"Run folder `{inp['dir']}` ({g['label']}, seed {g['seeds'][0]}"
                  + ("" if g["finished"] else ", not finished") + ").", ""]
    lines += ["| method | seeds | final sparsity | final top-1 % | search wall s (paper's / total) | "
              "timestep-epochs (paper's / total) | ET T' |", "|---|---|---|---|---|---|---|"]
    for g in inp["groups"]:
        f, pc = g["final"], g.get("search_cost_paper") or {}
        lines.append(f"| {g['label']} | {len(g['seeds'])} | {_pct(f['sparsity']) if f else '-'} | "
                     f"{_ms(f['accuracy']) if f else '-'} | {_ms(pc.get('wall_s'), 0, 1)} / "
                     f"{_ms(g['search_cost']['wall_s'], 0, 1)} | {_ms(pc.get('timestep_epochs'), 0, 1)} / "
                     f"{_ms(g['search_cost']['timestep_epochs'], 0, 1)} | "
                     f"{', '.join(map(str, g['early_time_T'])) or '-'} |")
    lines.append("")
    for g in inp["groups"]:
        if len(inp["groups"]) > 1:
            lines += [f"### {g['label']}", ""]
        lines += ["| level | sparsity | T | ticket % | random-reinit % | random-mask % | ticket - reinit |",
                  "|---|---|---|---|---|---|---|"]
        for lv in g["levels"]:
            gap = lv["gaps"].get("random-reinit")
            lines.append(f"| {lv['level']} | {_pct(lv['sparsity'])} | {', '.join(map(str, lv['timesteps']))} | "
                         f"{_ms(lv['accuracy'])} | {_ms(lv['controls'].get('random-reinit'))} | "
                         f"{_ms(lv['controls'].get('random-mask'))} | {_pts(gap) if gap is not None else '-'} |")
        lines.append("")
        lines += [f"- {c['text']}" for c in g["conclusions"]]
        if g["conclusions"]:
            lines.append("")
    if inp["comparisons"]:
        lines += [f"- {c['text']}" for c in inp["comparisons"]] + [""]
    lines += [f"![{p}]({p})" for p in pngs] + [""]
    return lines


def render(fx: dict, out: str | Path, command: str) -> str:
    """The markdown of the facts (percent) with the plots beside `out`; writes both and returns the text."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Results", "", f"Generated by `{command}` from the folders below; do not edit by hand.", ""]
    taken: set = set()
    figures = []
    for inp in fx["inputs"]:
        pngs = plot(inp, out.parent, _slug(inp["name"], taken))
        figures += [str(out.parent / p) for p in pngs]
        lines += _markdown(inp, pngs)
    text = "\n".join(lines)
    store.write_text(out, text)
    fx["figures"] = figures
    return text


def report(inputs: list[str | Path], out: str | Path, command: str) -> dict:
    """Write the report (markdown + plots) of run and experiment folders; return its facts with `out` and
    `figures` (the PNG paths) added."""
    fx = facts(inputs)
    render(fx, out, command)
    fx["out"] = str(out)
    return fx
