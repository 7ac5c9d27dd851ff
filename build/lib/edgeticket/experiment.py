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
    if not doc.get("search"):
        raise EdgeTicketError(f"{p}: no [[search]] entries")
    return doc


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
    return out


def run(path: str | Path, out: str | Path | None = None, device: str = "auto", quiet: bool = False,
        data_dir: str | None = None, dry_run: bool = False, log=print) -> dict:
    from . import api

    doc = load_config(path)
    plan = expand(doc, path, data_dir)
    root = Path(out or doc["experiment"].get("out", "runs/experiments")) / doc["experiment"]["name"]
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
