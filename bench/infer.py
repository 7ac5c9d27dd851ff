"""Inference latency: the bundle in onnxruntime (both layouts) vs the PyTorch ticket in eager mode, batch 1 and 32,
timed interleaved in one process (medians). Goal: bundle >= 4x faster than eager at batch 1.

    .venv/bin/python bench/infer.py TICKET_DIR [--reps 30]
    .venv/bin/python bench/infer.py --arch vgg9 --size 32 --channels 3     # a fresh random ticket of that shape
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch

from edgeticket import api
from edgeticket.device.runners import open_runner


def time_blocks(fns: dict, reps: int, rounds: int = 4, pause_s: float = 0.2) -> dict:
    """Like time_interleaved, but in alternating blocks of reps // rounds calls with a pause between blocks:
    runtimes whose worker threads spin after a call (onnxruntime, TVM) otherwise steal the cores from each other
    when their calls alternate one by one. Median per function over all blocks."""
    times = {k: [] for k in fns}
    per = max(reps // rounds, 1)
    for _ in range(rounds):
        for k, f in fns.items():
            time.sleep(pause_s)
            f()  # warm
            for _ in range(per):
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def time_interleaved(fns: dict, reps: int) -> dict:
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def random_ticket(arch: str, channels: int, size: int, sparsity: float, out: str, bn_data_init: bool = False) -> str:
    """A ticket folder with random weights at a given sparsity (for shapes the bundled data cannot train).
    bn_data_init: BN statistics taken from the (random) calibration inputs, scale 1, shift 0, so that each layer
    fires at a realistic rate (~10-20%) instead of the near-silence of BN at its initial statistics."""
    import numpy as _np

    from edgeticket import store
    from edgeticket.formats import names
    from edgeticket.hparams import SearchConfig, iter_fields
    from edgeticket.models import REGISTRY
    from edgeticket.pruning import Mask, apply_mask, mask_at_sparsity
    from edgeticket.pruning.scoring import magnitude
    from edgeticket.formats import ticket

    flat = {f.name: f.default for _, f in iter_fields()}
    flat.update(arch=arch, dataset="npz")
    cfg = SearchConfig.from_flat(flat)
    torch.manual_seed(0)
    m = REGISTRY[arch](10, channels, size)
    m.eval()
    sd = m.state_dict()
    mask = mask_at_sparsity(magnitude({n: sd[n] for n in m.prunable()}), sparsity)
    apply_mask(m, mask)
    if bn_data_init:
        xs = torch.from_numpy(_np.random.RandomState(0).randn(16, channels, size, size).astype(_np.float32))
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.momentum = 1.0  # running stats := this batch's
        m.train()
        with torch.no_grad():
            m(xs)
        m.eval()
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.momentum = 0.1
    d = f"{out}/level_0"
    Mask(mask).save(f"{d}/{names.MASK}")
    store.save_tensors(f"{d}/{names.REWIND}", m.state_dict())
    store.save_tensors(f"{d}/{names.TRAINED}", m.state_dict())
    ticket.write(d, {"kind": "ticket", "run": "random", "level": 0, "branch": "ticket", "hparams": cfg.to_dict(),
                     "arch": arch, "dataset": {"name": "random", "num_classes": 10, "input_shape": [channels, size, size],
                                               "mean": [0.0] * channels, "std": [1.0] * channels},
                     "sparsity": {"global": mask.sparsity(), "layers": mask.layer_sparsity()}, "nnz": mask.nnz(),
                     "numel": mask.numel(), "timesteps": {"search": 5, "trained": 5, "deploy": 5},
                     "accuracy": {"final": float("nan"), "best": float("nan")},
                     "cost": {"wall_s": 0, "timestep_epochs": 0, "epochs": 0}})
    x = _np.random.RandomState(0).randn(16, channels, size, size).astype(_np.float32)
    _np.savez(f"{out}/validation.npz", x=x, y=_np.zeros(16, _np.int64))
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ticket", nargs="?")
    ap.add_argument("--arch", default="vgg9")
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="edgeticket-infer-")
    calib = None
    if a.ticket is None:
        a.ticket = random_ticket(a.arch, a.channels, a.size, a.sparsity, tmp)
        calib = f"{tmp}/validation.npz"
    model, _, info = api.load_ticket(a.ticket)
    model.eval()
    T = int(info["timesteps"]["deploy"])
    model.timesteps = T
    shape = tuple(info["dataset"]["input_shape"])
    runners = {}
    for layout in ("time-folded", "streaming"):
        m = api.compile_ticket(a.ticket, "host", out=tmp, layout=layout, validation_data=calib, validation_n=16,
                               log=lambda s: None)
        runners[layout] = open_runner(m["bundle_dir"], m, threads=a.threads)
    print(f"inference latency, {info['arch']} {list(shape)} T={T}, sparsity {100 * info['sparsity']['global']:.1f}%, "
          f"{torch.get_num_threads()} threads, median of {a.reps} interleaved reps")
    for batch in (1, 32):
        x = np.random.RandomState(0).randn(batch, *shape).astype(np.float32)
        xt = torch.from_numpy(x)

        def eager():
            with torch.no_grad():
                model(xt)

        fns = {"pytorch eager": eager}
        for layout, r in runners.items():
            fns[f"onnxruntime {layout}"] = (lambda r=r: r.run(x, with_counts=False))
        med = time_interleaved(fns, a.reps if batch == 1 else max(5, a.reps // 3))
        base = med["pytorch eager"]
        for k, t in med.items():
            print(f"  batch {batch:2d}  {k:26s} {1000 * t:9.2f} ms   {base / t:5.2f}x vs eager")
    print("goal: bundle >= 4x faster than eager at batch 1")


if __name__ == "__main__":
    main()
