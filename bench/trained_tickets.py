"""Trained tickets for the event-backend benchmark (bench/event.py --trained): IMP searches run once and cached
(resumable: a stopped run goes on where it was), so that the benchmark measures real spike rates, not those of
random weights.

    vgg5 on Fashion-MNIST: IMP at the paper's 25% a round, 13 rounds; levels 8 / 11 / 13 = 90.0 / 95.8 / 97.6%.
    vgg16 on CIFAR-10:     IMP at 53.84% a round (CPU budget: 5 rounds, not 13); levels 3 / 4 / 5 = 90.2 / 95.5 / 97.9%.
    resnet8 on CIFAR-10:   the same schedule as vgg16.

A few epochs a level on a subset: enough for the spike rates of a trained network, not for its accuracy (the
accuracy of each level is printed beside it). The cache is $EDGETICKET_CACHE/bench/trained (default
~/.cache/edgeticket/bench/trained); --retrain starts over.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SPECS = {
    "vgg5": {"flat": {"arch": "vgg5", "dataset": "fashion-mnist", "train_subset": 6000, "test_subset": 1000,
                      "epochs": 2, "rewind_epoch": 1, "prune_rate": 0.25, "rounds": 13},
             "data": "fashion-mnist", "levels": (8, 11, 13)},
    "vgg16": {"flat": {"arch": "vgg16", "dataset": "cifar10", "train_subset": 2000, "test_subset": 500,
                       "epochs": 2, "rewind_epoch": 1, "prune_rate": 0.5384, "rounds": 5},
              "data": "cifar10", "levels": (3, 4, 5)},
    "resnet8": {"flat": {"arch": "resnet8", "dataset": "cifar10", "train_subset": 2000, "test_subset": 500,
                         "epochs": 2, "rewind_epoch": 1, "prune_rate": 0.5384, "rounds": 5},
                "data": "cifar10", "levels": (3, 4, 5)},
}


def cache_root() -> Path:
    from edgeticket.device.native import cache_dir

    return cache_dir() / "bench" / "trained"


def config(name: str, data_root: Path):
    from edgeticket.hparams import SearchConfig, iter_fields

    flat = {f.name: f.default for _, f in iter_fields()}
    flat.update(SPECS[name]["flat"], method="imp", data_dir=str(Path(data_root) / SPECS[name]["data"]))
    return SearchConfig.from_flat(flat)


def tickets(name: str, data_root: Path, retrain: bool = False, log=print) -> list[Path]:
    """The level folders of `name`'s cached run, trained first where missing."""
    from edgeticket import api
    from edgeticket.formats import names

    cfg = config(name, data_root)
    run = cache_root() / cfg.hashname()
    if retrain and run.exists():
        shutil.rmtree(run)
    levels = [names.level_dir(run, k) for k in SPECS[name]["levels"]]
    if not all((d / names.TICKET_JSON).is_file() for d in levels):
        log(f"training the {name} tickets into {run} (once; resumes if stopped)")
        api.search(cfg, out=cache_root(), device="cpu", quiet=False)
    return levels
