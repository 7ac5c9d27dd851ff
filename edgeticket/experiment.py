"""Experiments: a declarative TOML config of several searches, run in order and resumable (every search resumes
on its own: finished levels are skipped, a killed level continues from its last epoch).

    [experiment]
    name = "cpu-fashion-mnist"
    out = "runs/experiments"          # run folders land here
    seeds = [0, 1]                    # every search runs once per seed

    [defaults]                        # settings shared by every search (names as in `edgeticket search --help`)
    arch = "vgg5"
    dataset = "fashion-mnist"

    [[search]]                        # one entry per search; keys override the defaults
    label = "imp"
    method = "imp"
"""

from __future__ import annotations

import os
from pathlib import Path

from . import store
from .errors import EdgeTicketError
from .formats import names
from .hparams import SearchConfig, iter_fields

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]


def load_config(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise EdgeTicketError(f"experiment config not found: {p}")
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise EdgeTicketError(f"{p}: not valid TOML ({e})") from None
    exp = doc.get("experiment")
    if not isinstance(exp, dict) or "name" not in exp:
        raise EdgeTicketError(f"{p}: missing [experiment] table with a name")
    plain_name(exp["name"], f"{p}: [experiment] name")
    if "out" in exp and (not isinstance(exp["out"], str) or not exp["out"].strip()):
        raise EdgeTicketError(f"{p}: [experiment] out must be a folder path (a string); fix it or pass --out")
    seeds = exp.get("seeds", [0])
    if not isinstance(seeds, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in seeds):
        raise EdgeTicketError(f"{p}: [experiment] seeds must be a list of integers, e.g. seeds = [0, 1]")
    if not seeds:
        raise EdgeTicketError(f"{p}: [experiment] seeds = [] plans no run; list at least one seed, e.g. seeds = [0]")
    if len(set(seeds)) != len(seeds):
        raise EdgeTicketError(f"{p}: [experiment] seeds repeat ({seeds}); list each seed once")
    if not isinstance(doc.get("defaults", {}), dict):
        raise EdgeTicketError(f"{p}: [defaults] must be a table of settings")
    searches = doc.get("search")
    if not searches:
        raise EdgeTicketError(f"{p}: no [[search]] entries")
    if not isinstance(searches, list) or not all(isinstance(e, dict) for e in searches):
        raise EdgeTicketError(f"{p}: search must be [[search]] tables (one per search)")
    for i, e in enumerate(searches):
        if "label" in e and (not isinstance(e["label"], str) or not e["label"].strip()):
            raise EdgeTicketError(f"{p}: [[search]] {i + 1}: label must be a non-empty string")
    return doc


def plain_name(name, what: str) -> str:
    """A name a path is built from (the experiment's folder): one plain folder name, never a path. No separator,
    no leading dot ('.', '..', hidden), not empty, no control characters; else one line naming `what`."""
    bad = None
    if not isinstance(name, str) or not name.strip():
        bad = "is empty" if isinstance(name, str) else f"is {type(name).__name__}, not a string"
    elif "/" in name or "\\" in name or (os.altsep and os.altsep in name) or os.sep in name:
        bad = "holds a path separator"
    elif name.startswith("."):
        bad = "starts with a dot ('.', '..' and hidden names point elsewhere)"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name) or len(name) > 200:
        bad = "holds control characters" if len(name) <= 200 else "is longer than 200 characters"
    if bad:
        raise EdgeTicketError(f"{what} {name!r} {bad}: use a plain folder name such as 'cpu-fashion-mnist' (letters, "
                              "digits, '-', '_', '.'); --out says where it goes")
    return name


def expand(doc: dict, path: str | Path = "<config>", data_dir: str | None = None) -> list[tuple[str, int, SearchConfig]]:
    """(label, seed, config) for every search x seed, validated before anything runs."""
    names = {f.name: f.default for _, f in iter_fields()}
    defaults = dict(doc.get("defaults", {}))
    seeds = doc["experiment"].get("seeds", [0])
    out = []
    for i, entry in enumerate(doc["search"]):
        entry = dict(entry)
        label = entry.pop("label", f"search{i}")
        for seed in seeds:
            flat = dict(names)
            flat.update(defaults)
            flat.update(entry)
            flat["seed"] = seed
            if data_dir is not None:
                flat["data_dir"] = data_dir
            try:
                cfg = SearchConfig.from_flat(flat).validate()
            except EdgeTicketError as e:
                raise EdgeTicketError(f"{path}: [[search]] '{label}': {e}") from None
            out.append((label, seed, cfg))
    if not out:
        raise EdgeTicketError(f"{path}: the plan holds no run (no [[search]] x seed); add a [[search]] and a seed")
    return out


def check_plan(plan: list, root: Path, path: str | Path = "<config>", device: str = "auto") -> None:
    """What a run checks before it trains, for every search of the plan, before the first one starts; a dry run
    runs exactly this: the method is known, the device exists, an existing run folder holds the same settings,
    and each (dataset, data dir) loads through the dataset's own loader (every file found and checked; the load
    is kept for the searches, data.raw)."""
    from . import data
    from .search.context import resolve_device
    from .search.runner import METHODS, prepare_run_dir

    resolve_device(device)
    loaded = set()
    for label, seed, cfg in plan:
        try:
            if cfg.search.method not in METHODS:
                raise EdgeTicketError(f"unknown method '{cfg.search.method}'; valid: {', '.join(METHODS)}")
            key = (cfg.data.dataset, cfg.data.data_dir)
            if key not in loaded:
                data.raw(cfg.data.dataset, cfg.data.data_dir)  # kept for the searches that follow (no 2nd load)
                loaded.add(key)
            prepare_run_dir(cfg, root)
        except EdgeTicketError as e:
            raise EdgeTicketError(f"{path}: [[search]] '{label}' seed {seed}: {e}") from None


def run(path: str | Path, out: str | Path | None = None, device: str = "auto", quiet: bool = False,
        data_dir: str | None = None, dry_run: bool = False, log=print) -> dict:
    from . import api

    doc = load_config(path)
    plan = expand(doc, path, data_dir)
    root = Path(out or doc["experiment"].get("out", "runs/experiments")) / doc["experiment"]["name"]
    check_plan(plan, root, path, device)  # the same checks, dry run or not, before anything is written
    entries = []
    for k, (label, seed, cfg) in enumerate(plan):
        log(f"[{k + 1}/{len(plan)}] {label} seed {seed}: {cfg.hashname()}")
        entry = {"label": label, "seed": seed, "run_dir": str(root / cfg.hashname())}
        if not dry_run:
            entry["summary"] = api.search(cfg, out=root, device=device, quiet=quiet)
        entries.append(entry)
    index = {"format_version": 1, "kind": "experiment", "name": doc["experiment"]["name"], "config": str(path),
             "runs": [{"label": e["label"], "seed": e["seed"], "run_dir": e["run_dir"]} for e in entries]}
    if not dry_run:
        store.write_json(root / names.EXPERIMENT_JSON, index)
    return {**index, "entries": entries, "root": str(root)}
