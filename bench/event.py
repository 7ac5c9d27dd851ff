"""The event-driven backend vs dense onnxruntime, side by side in one process (interleaved medians):
latency at batch 1 and 8, resident weight bytes, spike exactness, spike rates. Goal: at ~97% weight sparsity,
event latency <= 0.3x dense onnxruntime at batch 1, spike-exact.

    .venv/bin/python bench/event.py                      # random-weight tickets of vgg5 1x28x28 and vgg16 3x32x32
    .venv/bin/python bench/event.py --tickets DIR [DIR...]  # trained tickets (level folders)

Random-weight tickets: magnitude masks at the IMP levels 68.4/90.0/95.8/97.6%, BN statistics taken from the
validation samples (BN at its initial statistics leaves a random net almost silent, which would flatter an
event-driven backend). Their spike rates are printed beside each row: latency of an event-driven backend
scales with them, so trained tickets are the figures that matter; pass them with --tickets.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from infer import random_ticket, time_interleaved  # noqa: E402

from edgeticket import api  # noqa: E402
from edgeticket.device.runners import open_runner  # noqa: E402
from edgeticket.formats import bundle  # noqa: E402
from edgeticket.errors import EdgeTicketError  # noqa: E402

LEVELS = {4: 0.6836, 8: 0.8999, 11: 0.9578, 13: 0.9762}  # 1 - 0.75**rounds


def measure(ticket: str, calib: str | None, data_dir: str | None, reps: int, tmp: str, log) -> dict:
    m = api.compile_ticket(ticket, "host", out=tmp, backend="onnxruntime,event", validation_data=calib, validation_n=16,
                           data_dir=data_dir, log=lambda s: None)
    sp = m["backends"]["event"]
    ort = open_runner(m["bundle_dir"], m, backend="onnxruntime")
    spr = open_runner(m["bundle_dir"], m, backend="event")
    x_all, _ = bundle.validation_samples(m["bundle_dir"])
    _, counts = ort.run(x_all)
    neurons = sum(int(np.prod(s)) for s in m["lif"]["state_shapes"])
    rate = sum(float(counts[n].sum()) for n in m["lif"]["layers"]) / (neurons * counts[m["lif"]["layers"][0]].size)
    row = {"arch": m["arch"], "sparsity": m["source_ticket"]["sparsity"], "rate": rate,
           "exact": sp["validation"]["spikes_equal"] and sp["validation"]["events_equal"],
           "event_bytes": sp["memory"]["weights_resident_bytes"], "packed_bytes": sp["memory"]["packed_onnx_weight_bytes"],
           "dense_bytes": m["memory_plan"]["weights_resident_bytes"], "default": m["backends"]["default"],
           "predicted_ratio": m["backends"]["predicted_latency_s"]["event"] / m["backends"]["predicted_latency_s"]["onnxruntime"]}
    for batch in (1, 8):
        x = np.concatenate([x_all] * (-(-batch // len(x_all))))[:batch]
        med = time_interleaved({"ort": lambda: ort.run(x, with_counts=False),
                                "event": lambda: spr.run(x, with_counts=False)}, reps)
        row[f"ort_b{batch}"], row[f"event_b{batch}"] = med["ort"], med["event"]
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", nargs="*", default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--nets", default="vgg5:1:28,vgg16:3:32")
    ap.add_argument("--levels", default=None, help="IMP rounds to run (default: 4,8,11,13)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="edgeticket-event-")
    header()
    jobs = []
    if a.tickets:
        jobs = [(t, None) for t in a.tickets]
    else:
        for spec in a.nets.split(","):
            arch, ch, size = spec.split(":")
            for r, s in LEVELS.items():
                if a.levels and r not in [int(v) for v in a.levels.split(",")]:
                    continue
                d = random_ticket(arch, int(ch), int(size), s, f"{tmp}/{arch}_{r}", bn_data_init=True)
                jobs.append((d, f"{tmp}/{arch}_{r}/validation.npz"))
    for t, calib in jobs:
        try:
            show(measure(t, calib, a.data_dir, a.reps, tmp, print))
        except EdgeTicketError as e:  # e.g. onnxruntime itself not spike-exact vs PyTorch on this ticket
            show({"name": t, "error": str(e)})
    print("goal: event <= 0.3x dense onnxruntime at batch 1 at ~97% sparsity, spike-exact; resident <= 1.2x packed")


def header():
    print("event-driven backend vs dense onnxruntime (host, T=5, interleaved medians, one process)")
    print(f"{'net':7s} {'sparsity':>8s} {'rate':>6s} {'exact':>5s} | {'ort b1':>9s} {'event b1':>9s} {'ratio':>6s} | "
          f"{'ort b8':>9s} {'event b8':>9s} {'ratio':>6s} | {'event B':>9s} {'/packed':>7s} {'/dense':>6s} | pred  pick")


def show(r):
    if "error" in r:
        print(f"{r['name']}: not measured: {r['error']}")
        return
    print(f"{r['arch']:7s} {100 * r['sparsity']:7.2f}% {r['rate']:6.3f} {str(r['exact']):>5s} | "
          f"{1e3 * r['ort_b1']:7.2f}ms {1e3 * r['event_b1']:7.2f}ms {r['event_b1'] / r['ort_b1']:5.2f}x | "
          f"{1e3 * r['ort_b8']:7.2f}ms {1e3 * r['event_b8']:7.2f}ms {r['event_b8'] / r['ort_b8']:5.2f}x | "
          f"{r['event_bytes']:9,d} {r['event_bytes'] / r['packed_bytes']:6.3f}x {r['event_bytes'] / r['dense_bytes']:5.3f}x | "
          f"{r['predicted_ratio']:4.2f}x {r['default']}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
