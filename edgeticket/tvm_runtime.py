"""Run a bundle's TVM library (a Relax VM executable) on the device: needs the TVM runtime + numpy, no torch.
Same interface as runtime.OnnxRunner."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import EdgeTicketError


def set_threads(threads: int | None = None) -> int:
    """TVM's thread pool size, fixed when the pool first runs a parallel kernel. Without TVM_NUM_THREADS the
    runtime takes half the logical CPUs on x86 (it assumes hyper-threading): 1 thread on a 2-vCPU machine, where
    onnxruntime uses 2. So: every logical CPU, like onnxruntime, unless the caller or the environment says."""
    if threads:
        os.environ["TVM_NUM_THREADS"] = str(int(threads))
    else:
        os.environ.setdefault("TVM_NUM_THREADS", str(os.cpu_count() or 1))
    return int(os.environ["TVM_NUM_THREADS"])


class TvmRunner:
    def __init__(self, library: Path, layout: str, timesteps: int, lif_layers: list[str], syn_layers: list[str],
                 state_shapes: list, num_classes: int | None, threads: int | None = None):
        self.threads = set_threads(threads)
        try:
            import tvm
            from tvm import relax
        except ImportError as e:
            raise EdgeTicketError(f"the TVM runtime is not installed ({e}): pip install 'apache-tvm==0.27.0.post1' "
                                  "'apache-tvm-ffi==0.1.14.post1'") from None
        self.tvm = tvm
        self.dev = tvm.cpu()
        self.vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), self.dev)
        self.layout, self.timesteps = layout, int(timesteps)
        self.layers, self.synapses = list(lif_layers), list(syn_layers)
        self.state_shapes = [tuple(s) for s in state_shapes]

    def run(self, x: np.ndarray, with_counts: bool = True):
        x = np.ascontiguousarray(x, dtype=np.float32)
        keys = self.layers + [f"events__{n}" for n in self.synapses]
        xt = self.tvm.runtime.tensor(x, self.dev)
        if self.layout == "time-folded":
            out = self.vm["main"](xt)
            return out[0].numpy(), ({k: c.numpy() for k, c in zip(keys, list(out)[1:])} if with_counts else {})
        # streaming: the membrane states stay TVM tensors from one step to the next (no numpy round trip)
        B = x.shape[0]
        states = [self.tvm.runtime.tensor(np.zeros((B, *s), np.float32), self.dev) for s in self.state_shapes]
        L = len(states)
        logits, per_t = [], {k: [] for k in keys}
        for _ in range(self.timesteps):
            out = list(self.vm["main"](xt, *states))
            logits.append(out[0])
            states = out[1:1 + L]
            if with_counts:
                for k, c in zip(keys, out[1 + L:]):
                    per_t[k].append(c)
        total = logits[0].numpy()
        for lg in logits[1:]:
            total = total + lg.numpy()
        return total, ({k: np.stack([c.numpy() for c in v]) for k, v in per_t.items()} if with_counts else {})
