"""The tvm backend: the bundle's TVM library (a Relax VM executable) built for this CPU. Needs the TVM runtime
(the [tvm] extra) + numpy, no torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ...errors import require_extra
from ...formats.bundle import state_init, synaptic_layers
from ...formats.elf import check_library
from ..machine import machine_arch
from .base import Runner


def set_threads(threads: int | None = None) -> int:
    """TVM's thread pool size, fixed when the pool first runs a parallel kernel. Without TVM_NUM_THREADS the
    runtime takes half the logical CPUs on x86 (it assumes hyper-threading): 1 thread on a 2-vCPU machine, where
    onnxruntime uses 2. So: every logical CPU, like onnxruntime, unless the caller or the environment says."""
    if threads:
        os.environ["TVM_NUM_THREADS"] = str(int(threads))
    else:
        os.environ.setdefault("TVM_NUM_THREADS", str(os.cpu_count() or 1))
    return int(os.environ["TVM_NUM_THREADS"])


class TvmRunner(Runner):
    name = "tvm"

    def __init__(self, library: Path, layout: str, timesteps: int, lif_layers: list[str], syn_layers: list[str],
                 state_shapes: list, threads: int | None = None, v_init: Sequence[float] | None = None):
        super().__init__(layout, timesteps, lif_layers, syn_layers, v_init)
        self.threads = set_threads(threads)
        require_extra("tvm", "the tvm backend")
        import tvm
        from tvm import relax

        self.tvm = tvm
        self.dev = tvm.cpu()
        check_library(library, machine_arch())  # a truncated library is mapped past its end: SIGBUS, not an error
        self.vm = relax.VirtualMachine(tvm.runtime.load_module(str(library)), self.dev)
        self.state_shapes = [tuple(s) for s in state_shapes]

    @classmethod
    def open(cls, bundle_dir: Path, manifest: dict, threads: int | None = None):
        tv = manifest["backends"]["tvm"]
        return cls(Path(bundle_dir) / tv["library"], manifest["layout"], manifest["timesteps"],
                   manifest["lif"]["layers"], synaptic_layers(manifest), manifest["lif"]["state_shapes"],
                   threads=threads, v_init=state_init(manifest))

    def prepare(self, x):
        return self.tvm.runtime.tensor(x, self.dev)

    def run_folded(self, x, with_counts):
        out = list(self.vm["main"](x))
        return out[0].numpy(), ([c.numpy() for c in out[1:]] if with_counts else [])

    def initial_states(self, batch):
        # the membrane states stay TVM tensors from one step to the next (no numpy round trip)
        return [self.tvm.runtime.tensor(a, self.dev) for a in self.state_arrays(batch, self.state_shapes)]

    def step(self, x, states, with_counts):
        out = list(self.vm["main"](x, *states))
        L = len(states)
        return out[0].numpy(), out[1:1 + L], ([c.numpy() for c in out[1 + L:]] if with_counts else [])
