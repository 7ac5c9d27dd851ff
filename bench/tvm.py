"""TVM (Relax, built for this host) vs onnxruntime on the same bundle, side by side in one process
(medians over alternating blocks of calls, each runtime with one thread per logical CPU), both layouts, batch 1 and 32; plus the TVM build
time. Goal: TVM/ORT <= 1.0x.

    .venv/bin/python bench/tvm.py TICKET_DIR [--batches 1,32]
    .venv/bin/python bench/tvm.py --arch vgg16 --channels 3 --size 32 --sparsity 0.9   # random-weight ticket

The TVM build is edgeticket's (compile/tvm_schedule.py: NHWC blocked convs + default CPU schedules, no tuning
records: `tuned` is false in the manifest); docs/tvm-notes.md keeps what each try gave.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

# this file is named tvm.py: Python puts its folder first on sys.path, where `import tvm` would find this script
# instead of apache-tvm. Move the folder to the end (infer.py is still found there).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]
from infer import random_ticket, time_blocks  # noqa: E402

from edgeticket import api  # noqa: E402
from edgeticket.device.runners import open_runner  # noqa: E402
from edgeticket.formats import bundle  # noqa: E402
from edgeticket.device.runners.tvm_runner import set_threads  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ticket", nargs="?")
    ap.add_argument("--arch", default="vgg5")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--sparsity", type=float, default=0.6836)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--layouts", default="time-folded,streaming")
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="edgeticket-tvm-")
    calib = None
    if a.ticket is None:
        a.ticket = random_ticket(a.arch, a.channels, a.size, a.sparsity, tmp, bn_data_init=True)
        calib = f"{tmp}/validation.npz"
    print(f"TVM (edgeticket default schedules, untuned, {set_threads()} threads) vs onnxruntime (default threads), host, "
          "medians over alternating blocks in one process")
    for layout in a.layouts.split(","):
        # random-weight tickets: 8 validation inputs (with 16, PyTorch and onnxruntime themselves disagree by one
        # spike on some random vgg16 inputs that sit on the threshold, and compile refuses the bundle)
        m = api.compile_ticket(a.ticket, "host", out=tmp, layout=layout, backend="onnxruntime,tvm", validation_data=calib,
                               validation_n=8 if calib else 16, log=lambda s: None)
        tv = m["backends"]["tvm"]
        ort = open_runner(m["bundle_dir"], m, backend="onnxruntime")
        tr = open_runner(m["bundle_dir"], m, backend="tvm")
        x_all, _ = bundle.validation_samples(m["bundle_dir"])
        print(f"{m['arch']} {m['input']['shape'][1:]} {100 * m['source_ticket']['sparsity']:.2f}% {layout}: TVM build "
              f"{tv['build_s']:.1f} s, library {tv['library_bytes'] / 2**20:.1f} MiB, host build spike-exact vs onnxruntime: "
              f"{tv['validation']['spikes_equal']}")
        for batch in (int(b) for b in a.batches.split(",")):
            x = np.concatenate([x_all] * (-(-batch // len(x_all))))[:batch]
            med = time_blocks({"ort": lambda: ort.run(x, with_counts=False),
                               "tvm": lambda: tr.run(x, with_counts=False)}, a.reps)
            print(f"  batch {batch:3d}: onnxruntime {1e3 * med['ort']:9.2f} ms  tvm {1e3 * med['tvm']:9.2f} ms  "
                  f"tvm/ort {med['tvm'] / med['ort']:6.2f}x")
    print("goal: tvm/ort <= 1.0x at batch 1 and 32")


if __name__ == "__main__":
    main()
