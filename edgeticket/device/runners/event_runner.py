"""The event backend: the bundle's .etsp network file (compressed weights, the resident form; formats/etsp.py)
run by the native event-driven kernels (device/native/etevent.c) through ctypes. numpy only, no torch.
`layout` only changes how the steps are issued (time-folded: one call of T steps; streaming: T calls of one
step with the membrane states passed back in); the arithmetic is the same."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import EdgeTicketError
from ...formats import names
from ...formats.etsp import check_header
from ..machine import machine_arch
from ...formats.bundle import state_init, synaptic_layers
from .base import Runner


class EventRunner(Runner):
    name = "event"

    def __init__(self, net_path: Path, layout: str, timesteps: int, lif_layers: list[str], syn_layers: list[str],
                 library: Path | None = None, threads: int | None = None, expect: dict | None = None,
                 v_init: Sequence[float] | None = None):
        """expect: the manifest's input_shape, timesteps, num_classes, compared with the .etsp file's header.
        v_init: each LIF layer's first membrane value (None: 0), in both layouts (the kernels take the states)."""
        from ..native import load_library

        super().__init__(layout, timesteps, lif_layers, syn_layers, v_init)
        # the C loader trusts the file's sizes and shapes: checked in Python first (formats/etsp.py)
        self.header = check_header(net_path, lif_layers=len(self.layers), synaptic_layers=len(self.synapses),
                                   **(expect or {}))
        self.L = load_library(library)
        err = ctypes.create_string_buffer(512)
        self.net = self.L.lib.et_load(str(net_path).encode(), err, 512)
        if not self.net:
            raise EdgeTicketError(f"event backend: {err.value.decode()}")
        nlif, nsyn = self.L.lib.et_num_lif(self.net), self.L.lib.et_num_syn(self.net)
        if nlif != len(self.layers) or nsyn != len(self.synapses):
            raise EdgeTicketError(f"event backend: {net_path} has {nlif} LIF / {nsyn} synaptic layers, the manifest "
                                  f"names {len(self.layers)} / {len(self.synapses)}: re-compile the bundle")
        self.state_floats = int(self.L.lib.et_state_floats(self.net))
        self.resident_bytes = int(self.L.lib.et_resident_bytes(self.net))
        self.num_classes = int(self.L.lib.et_num_classes(self.net))
        self.threads = threads

    @classmethod
    def open(cls, bundle_dir: Path, manifest: dict, threads: int | None = None):
        ev = manifest["backends"]["event"]
        lib = ev.get("library") or {}
        # the bundle's build where it is for this CPU; otherwise the kernels built here from the package source
        path = Path(bundle_dir) / lib["file"] if lib.get("arch") == machine_arch() else None
        if path is None:
            from ..native import host_library

            try:
                path = host_library()
            except EdgeTicketError as e:
                built = f"built for {lib['arch']}" if lib.get("arch") else "not built for any CPU"
                raise EdgeTicketError(f"the bundle's event kernels are {built} and this {machine_arch()} machine "
                                      f"cannot build them ({e}); or compile the bundle for a target of this machine "
                                      "(`--target host` on this one)") from None
        expect = {"input_shape": tuple(manifest["input"]["shape"][1:]), "timesteps": manifest["timesteps"],
                  "num_classes": manifest["num_classes"]}
        return cls(Path(bundle_dir) / names.EVENT_NET, manifest["layout"], manifest["timesteps"],
                   manifest["lif"]["layers"], synaptic_layers(manifest), library=path, threads=threads, expect=expect,
                   v_init=state_init(manifest))

    def __del__(self):
        net = getattr(self, "net", None)
        if net:
            self.L.lib.et_free(net)
            self.net = None

    def _call(self, x, nsteps, state):
        if x.ndim != 4 or tuple(x.shape[1:]) != self.header["input_shape"] or x.dtype != np.float32 \
                or not x.flags.c_contiguous:
            raise EdgeTicketError(f"event backend: inputs {list(x.shape)} ({x.dtype}), the network takes "
                                  f"[batch, {', '.join(map(str, self.header['input_shape']))}] float32")
        B = x.shape[0]
        logits = np.zeros((B, self.num_classes), np.float32)
        spikes = np.zeros((len(self.layers), nsteps, B), np.float32)
        events = np.zeros((len(self.synapses), nsteps, B), np.float32)
        threads = self.threads or _cores()  # below the batch: the kernels share each sample among them
        p = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
        rc = self.L.lib.et_run(self.net, B, p(x), nsteps, p(state), p(logits), p(spikes), p(events), int(threads))
        if rc != 0:
            raise EdgeTicketError("event backend: out of memory for the scratch buffers")
        return logits, [*spikes, *events]

    def run_folded(self, x, with_counts):
        logits, counts = self._call(x, self.timesteps, self.initial_states(len(x))[0])
        return logits, (counts if with_counts else [])

    def initial_states(self, batch):
        # [batch, state_floats], each sample the LIF layers' states one after the other; updated in place by the
        # kernels
        if not any(self.v_init):
            return [np.zeros((batch, self.state_floats), np.float32)]
        row = np.concatenate([np.full(n, v, np.float32) for n, v in zip(self.header["lif_sizes"], self.v_init)])
        return [np.ascontiguousarray(np.broadcast_to(row, (batch, self.state_floats)))]

    def step(self, x, states, with_counts):
        logits, counts = self._call(x, 1, states[0])
        return logits, states, ([c[0] for c in counts] if with_counts else [])


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
