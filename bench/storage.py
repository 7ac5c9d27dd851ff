"""Weight storage of bundles at the sparsity levels of a real IMP run: packed (fp32/fp16/int8) vs dense fp32 vs
ONNX's sparse_initializer vs the entropy floor (nnz*32 + N*H(density) bits), prunable weights only.

    .venv/bin/python bench/storage.py [RUN_DIR]
Without RUN_DIR it runs a quick real IMP search first (vgg5 on digits, 12 rounds of 25% -> 96.8%, 3 epochs a level).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from edgeticket import api
from edgeticket.compile.deploy import to_deploy
from edgeticket.compile.onnx_export import export
from edgeticket.compile.packing import storage_summary
from edgeticket.hparams import SearchConfig, iter_fields


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", nargs="?")
    ap.add_argument("--levels", default="68,90,97", help="sparsity %% targets: the nearest level of each is used")
    a = ap.parse_args()
    if a.run_dir is None:
        flat = {f.name: f.default for _, f in iter_fields()}
        flat.update(arch="vgg5", rounds=12, epochs=3, rewind_epoch=1)
        cfg = SearchConfig.from_flat(flat)
        out = tempfile.mkdtemp(prefix="edgeticket-storage-")
        print(f"running a real IMP search ({cfg.hashname()}) in {out} ...", flush=True)
        api.search(cfg, out=out, device="cpu", quiet=True)
        a.run_dir = str(Path(out) / cfg.hashname())
    levels = sorted(Path(a.run_dir).glob("level_*"), key=lambda p: int(p.name.split("_")[1]))
    infos = {p: json.loads((p / "ticket.json").read_text()) for p in levels}
    wanted = [float(v) / 100 for v in a.levels.split(",")]
    chosen = []
    for w in wanted:
        p = min(levels, key=lambda p: abs(infos[p]["sparsity"]["global"] - w))
        if p not in chosen:
            chosen.append(p)
    print(f"run {a.run_dir}")
    print(f"{'level':>5} {'sparsity':>8} {'dense fp32':>11} {'sparse_init':>11} {'packed32':>9} {'packed16':>9} "
          f"{'packed8':>9} {'floor32':>9} {'packed32/floor':>14} {'sparse_init/floor':>17} {'codes'}")
    for p in chosen:
        model, mask, info = api.load_ticket(p)
        shape = tuple(info["dataset"]["input_shape"])
        T = info["timesteps"]["deploy"]
        res = {}
        for storage, fmt in (("dense", "fp32"), ("sparse-initializer", "fp32"), ("packed", "fp32"), ("packed", "fp16"),
                             ("packed", "int8")):
            _, layers, _ = export(to_deploy(model, shape), "time-folded", T, shape, 17, list(mask), storage, fmt)
            res[(storage, fmt)] = storage_summary(layers)
        s32 = res[("packed", "fp32")]
        codes = sorted({l["code"] for l in s32["layers"]})
        floor = s32["entropy_floor_bytes"]
        print(f"{info['level']:5d} {100 * info['sparsity']['global']:7.2f}% {res[('dense', 'fp32')]['stored_bytes']:11,} "
              f"{res[('sparse-initializer', 'fp32')]['stored_bytes']:11,} {s32['stored_bytes']:9,} "
              f"{res[('packed', 'fp16')]['stored_bytes']:9,} {res[('packed', 'int8')]['stored_bytes']:9,} {floor:9,.0f} "
              f"{s32['stored_bytes'] / floor:13.3f}x {res[('sparse-initializer', 'fp32')]['stored_bytes'] / floor:16.3f}x  "
              f"{','.join(codes)}")
    print("bytes = stored prunable-weight bytes (values + positions + per-layer shape/scale metadata); "
          "goal: packed fp32 <= 1.1x the floor at 97%")


if __name__ == "__main__":
    main()
