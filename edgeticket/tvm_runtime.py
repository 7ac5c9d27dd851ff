"""Run a bundle's TVM library (a Relax VM executable) on the device: needs the TVM runtime + numpy, no torch.
Same interface as runtime.OnnxRunner."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import EdgeTicketError


class TvmRunner:
    def __init__(self, library: Path, layout: str, timesteps: int, lif_layers: list[str], syn_layers: list[str],
                 state_shapes: list, num_classes: int | None):
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

    def _call(self, *arrays):
        args = [self.tvm.runtime.tensor(a, self.dev) for a in arrays]
        out = self.vm["main"](*args)
        return [o.numpy() for o in out]

    def run(self, x: np.ndarray, with_counts: bool = True):
        x = np.ascontiguousarray(x, dtype=np.float32)
        keys = self.layers + [f"events__{n}" for n in self.synapses]
        if self.layout == "time-folded":
            out = self._call(x)
            return out[0], ({k: c for k, c in zip(keys, out[1:])} if with_counts else {})
        B = x.shape[0]
        states = [np.zeros((B, *s), np.float32) for s in self.state_shapes]
        L = len(states)
        total, per_t = None, {k: [] for k in keys}
        for _ in range(self.timesteps):
            out = self._call(x, *states)
            total = out[0] if total is None else total + out[0]
            states = out[1:1 + L]
            for k, c in zip(keys, out[1 + L:]):
                per_t[k].append(c)
        return total, ({k: np.stack(c) for k, c in per_t.items()} if with_counts else {})
