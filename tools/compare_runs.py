"""Do two search runs of one configuration agree? (e.g. the same seed on CPU and on a GPU, or twice on a GPU)

    .venv/bin/python tools/compare_runs.py RUN_A RUN_B

Per level present in both: sparsity, final test accuracy of each, the fraction of prunable weights whose mask
entry is equal, and the overlap of the pruned sets (|pruned in both| / |pruned in either|). Also the Early-Time
choice of each run where it searched with ET.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeticket.formats import names  # noqa: E402
from edgeticket.pruning.mask import Mask  # noqa: E402


def level_facts(run: Path, level: int) -> dict | None:
    d = names.level_dir(run, level)
    if not (d / names.TICKET_JSON).is_file():
        return None
    info = json.loads((d / names.TICKET_JSON).read_text())
    return {"info": info, "mask": Mask.load(d / "mask.safetensors")}


def mask_agreement(a: Mask, b: Mask) -> tuple[float, float]:
    equal = total = both = either = 0
    for n in a:
        ka, kb = a[n].bool(), b[n].bool()
        equal += int((ka == kb).sum())
        total += ka.numel()
        both += int((~ka & ~kb).sum())
        either += int((~ka | ~kb).sum())
    return equal / total, (both / either if either else 1.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    a = p.parse_args()
    print(f"{'level':>5} {'sparsity %':>10} {'acc A %':>8} {'acc B %':>8} {'mask equal %':>12} {'pruned overlap %':>16}")
    level = 0
    while True:
        fa, fb = level_facts(a.run_a, level), level_facts(a.run_b, level)
        if fa is None or fb is None:
            break
        eq, jac = mask_agreement(fa["mask"], fb["mask"])
        acc = [100 * f["info"]["accuracy"]["final"] for f in (fa, fb)]
        print(f"{level:>5} {100 * fa['info']['sparsity']['global']:>10.2f} {acc[0]:>8.2f} {acc[1]:>8.2f} "
              f"{100 * eq:>12.3f} {100 * jac:>16.3f}")
        level += 1
    for run in (a.run_a, a.run_b):
        et = run / "early_time.json"
        if et.is_file():
            e = json.loads(et.read_text())
            print(f"{run}: Early-Time chose T'={e['chosen']} (normalised KL {e.get('normalised_kl')})")


if __name__ == "__main__":
    main()
