"""Search cost of IMP vs IMP+ET vs EB vs EB+ET, one process, same data, same seed, same schedule.

Fashion-MNIST (from --data-dir, default ../shared/data/fashion-mnist) with a small VGG at T=5, to ~90%
sparsity (IMP: 8 rounds of 25%; EB: the same target sparsity). Prints wall seconds, timestep-epochs and
final accuracy per method, and the ratios (IMP+ET)/IMP and (EB+ET)/EB. Runs land in a fresh folder so
nothing is reused from an earlier run.

    .venv/bin/python bench/search_cost.py [--train-subset 2000] [--epochs 5] [--arch vgg5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from edgeticket import api
from edgeticket.hparams import SearchConfig, iter_fields

HERE = Path(__file__).resolve().parent


def config(args, method: str, et: bool) -> SearchConfig:
    flat = {f.name: f.default for _, f in iter_fields()}
    flat.update(arch=args.arch, dataset="fashion-mnist", data_dir=args.data_dir, train_subset=args.train_subset,
                test_subset=args.test_subset, epochs=args.epochs, rewind_epoch=1, rounds=args.rounds,
                prune_rate=0.25, method=method, early_time=et, timesteps=5, seed=args.seed, batch_size=64)
    return SearchConfig.from_flat(flat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "fashion-mnist"))
    ap.add_argument("--arch", default="vgg5")
    ap.add_argument("--train-subset", type=int, default=2000)
    ap.add_argument("--test-subset", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="keep the runs here (default: a fresh temporary folder)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="edgeticket-search-cost-"))
    results = {}
    for method, et in (("imp", False), ("imp", True), ("eb", False), ("eb", True)):
        name = method + ("+et" if et else "")
        t0 = time.perf_counter()
        s = api.search(config(args, method, et), out=out, device="cpu", quiet=True)
        wall = time.perf_counter() - t0
        fin = s["final_ticket"]
        results[name] = {"sparsity": fin["sparsity"], "final_acc": fin["final_acc"], "best_acc": fin["best_acc"],
                         "search_wall_s": s["search_cost"]["wall_s"], "process_wall_s": round(wall, 1),
                         "timestep_epochs": s["search_cost"]["timestep_epochs"], "epochs": s["search_cost"]["epochs"],
                         "et_T": (s["early_time"] or {}).get("chosen"),
                         "et_normalised_kl": (s["early_time"] or {}).get("normalised_kl")}
        print(f"{name}: done in {wall:.0f} s", flush=True)
    print(f"\nsearch cost, {args.arch} on fashion-mnist ({args.train_subset} train / {args.test_subset} test), T=5, "
          f"{args.epochs} epochs per level, IMP {args.rounds} rounds of 25%, seed {args.seed}")
    print(f"{'method':8s} {'sparsity%':>9s} {'final%':>7s} {'wall s':>8s} {'T*epochs':>8s} {'epochs':>6s}  T'")
    for n, r in results.items():
        print(f"{n:8s} {100 * r['sparsity']:9.2f} {100 * r['final_acc']:7.2f} {r['search_wall_s']:8.1f} {r['timestep_epochs']:8d} "
              f"{r['epochs']:6d}  {r['et_T'] or '-'}")
    for a, b in (("imp+et", "imp"), ("eb+et", "eb"), ("eb+et", "imp")):
        ra, rb = results[a], results[b]
        print(f"ratio {a}/{b}: wall {ra['search_wall_s'] / rb['search_wall_s']:.2f}x, timestep-epochs "
              f"{ra['timestep_epochs'] / rb['timestep_epochs']:.2f}x, final accuracy {100 * (ra['final_acc'] - rb['final_acc']):+.2f} "
              f"points (goal for imp+et/imp: <= 0.55x within 1 point)")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"runs in {out}")


if __name__ == "__main__":
    main()
