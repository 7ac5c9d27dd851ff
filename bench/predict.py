"""Predicted vs measured latency on this host for several bundles, using the newest calibration record of the
`host` target (the user's calibration folder, else the packaged edgeticket/calibration/host.json). Goal: every prediction within 2x of the measured p50.

    .venv/bin/python bench/predict.py [--runs 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from edgeticket import api
from edgeticket.formats import bundle
from edgeticket.device.calibration import newest_record
from edgeticket.hparams import SearchConfig, iter_fields
from edgeticket.device.profile.predict import predict_latency
from edgeticket.device.targets import load_target

sys.path.insert(0, str(Path(__file__).resolve().parent))
from infer import random_ticket  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    a = ap.parse_args()
    rec = newest_record("host")
    if rec is None:
        raise SystemExit("no calibration record for host: run `edgeticket profile BUNDLE --calibrate --target host`")
    tmp = Path(tempfile.mkdtemp(prefix="edgeticket-predict-"))
    flat = {f.name: f.default for _, f in iter_fields()}
    flat.update(epochs=2, rounds=1)
    cfg = SearchConfig.from_flat(flat)
    api.search(cfg, out=tmp / "runs", device="cpu", quiet=True)
    digits = tmp / "runs" / cfg.hashname()
    cases = []
    for layout in ("time-folded", "streaming"):
        cases.append((f"vgg5 digits {layout}", digits, None, layout, 1))
    cases.append(("vgg5 digits time-folded b32", digits, None, "time-folded", 32))
    for arch, layout in (("vgg9", "time-folded"), ("vgg9", "streaming"), ("resnet8", "time-folded"),
                         ("vgg11", "time-folded")):
        d = tmp / f"{arch}-random"
        if not d.exists():
            random_ticket(arch, 3, 32, 0.9, str(d))
        cases.append((f"{arch} 3x32x32 90% {layout}", d / "level_0", str(d / "validation.npz"), layout, 1))
    target = load_target("host")
    print(f"calibration record: host, {rec['date']} (conv {rec['conv_gflops']:.1f} GFLOP/s, gemm "
          f"{rec['gemm_gflops']:.1f} GFLOP/s, {rec['gbytes_per_s']:.1f} GB/s, {1e6 * rec['node_overhead_s']:.2f} us/node, "
          f"{1e6 * rec['call_overhead_s']:.1f} us/call)")
    print(f"{'bundle':34s} {'batch':>5s} {'predicted':>10s} {'measured':>10s} {'meas/pred':>9s}")
    worst = 1.0
    for name, ticket, calib, layout, batch in cases:
        m = api.compile_ticket(ticket, "host", out=tmp / "bundles", layout=layout, validation_data=calib, validation_n=16,
                               log=lambda s: None)
        pred = predict_latency(bundle.load(m["bundle_dir"]), batch, target, rec)["latency_s"]
        meas = api.profile(m["bundle_dir"], runs=a.runs, warmup=3, batch=batch, out=tmp / "p.json", log=lambda s: None)
        p50 = meas["latency"]["p50_s"]
        ratio = p50 / pred
        worst = max(worst, ratio, 1 / ratio)
        print(f"{name:34s} {batch:5d} {1000 * pred:8.2f}ms {1000 * p50:8.2f}ms {ratio:8.2f}x")
    print(f"worst disagreement {worst:.2f}x (goal: within 2x)")


if __name__ == "__main__":
    main()
