"""The sparse backend on the device: an .etsp network file (compressed weights, the resident form) run by the
native event-driven kernels (edgeticket/native/etsparse.c) through ctypes. numpy only, no torch.

The file format (little-endian; written by `write_etsp`, read by et_load in C):
  header, 12 x u32: magic "ETSP", version 1, nlayers, in_c, in_h, in_w, timesteps, tau (f32), v_th (f32),
                    num_classes, 0, 0
  per layer, 13 x u32: kind (0 conv on the image, 1 conv on spikes, 2 max-pool, 3 linear on spikes), cin, hin,
                    win, cout, hout, wout, k, stride, pad, lif (1: a LIF follows), ncols, nnz
  then, unless a max-pool: colptr i32 [ncols + 1], gaps u8 [nnz] (zero-padded to 4 bytes), values f32 [nnz],
                    bias f32 [cout]
A layer's weights form a CSC matrix: column = input channel x kernel offset (conv, (c * k + ky) * k + kx) or
input feature in HWC order (linear); row = output channel, delta-coded: row = previous row + gap, the first
from -1; gaps over 255 are bridged by fillers of value 0 (adding 0.0 changes no sum).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from .errors import EdgeTicketError

MAGIC = 0x50535445
VERSION = 1
CONV_IMAGE, CONV_SPIKES, MAXPOOL, LINEAR_SPIKES = 0, 1, 2, 3


def csc_delta8(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m [ncols, rows] -> (colptr int32 [ncols + 1], gaps uint8, values float32), fillers included."""
    m = np.ascontiguousarray(m, dtype=np.float32)
    cols, rows = np.nonzero(m)
    vals = m[cols, rows]
    prev = np.empty_like(rows)
    if len(rows):
        prev[0] = -1
        same = cols[1:] == cols[:-1]
        prev[1:] = np.where(same, rows[:-1], -1)
    gaps = rows - prev
    n_fill = (gaps - 1) // 255
    slot = np.cumsum(n_fill + 1) - 1  # where each real entry lands
    total = int(slot[-1]) + 1 if len(slot) else 0
    out_g = np.full(total, 255, np.uint8)
    out_v = np.zeros(total, np.float32)
    out_g[slot] = (gaps - 255 * n_fill).astype(np.uint8)
    out_v[slot] = vals
    per_col = np.bincount(cols, weights=(n_fill + 1), minlength=m.shape[0]).astype(np.int64)
    colptr = np.concatenate([[0], np.cumsum(per_col)]).astype(np.int32)
    return colptr, out_g, out_v


def write_etsp(path: Path, input_shape: tuple[int, int, int], timesteps: int, tau: float, v_th: float,
               num_classes: int, layers: list[dict]) -> int:
    """layers: dicts with kind, cin, hin, win, cout, hout, wout, k, stride, pad, lif and, unless a max-pool,
    `matrix` [ncols, cout] (float32) and `bias` [cout]. Returns the bytes written."""
    parts = [np.array([MAGIC, VERSION, len(layers), *input_shape, timesteps], np.uint32).tobytes(),
             np.array([tau, v_th], np.float32).tobytes(), np.array([num_classes, 0, 0], np.uint32).tobytes()]
    for L in layers:
        if L["kind"] == MAXPOOL:
            ncols = nnz = 0
        else:
            colptr, gaps, vals = csc_delta8(L["matrix"])
            ncols, nnz = len(colptr) - 1, len(gaps)
        parts.append(np.array([L["kind"], L["cin"], L["hin"], L["win"], L["cout"], L["hout"], L["wout"], L["k"],
                               L["stride"], L["pad"], int(L["lif"]), ncols, nnz], np.uint32).tobytes())
        if L["kind"] != MAXPOOL:
            pad = (-nnz) % 4
            parts += [colptr.tobytes(), gaps.tobytes() + b"\0" * pad, vals.tobytes(),
                      np.asarray(L["bias"], np.float32).tobytes()]
    data = b"".join(parts)
    Path(path).write_bytes(data)
    return len(data)


class SparseRunner:
    """Same interface as runtime.OnnxRunner: run(x) -> (logits summed over T [B, K], counts {key: [T, B]}).
    `layout` only changes how the steps are issued (time-folded: one call of T steps; streaming: T calls of
    one step with the membrane states passed back in); the arithmetic is the same."""

    def __init__(self, net_path: Path, layout: str, timesteps: int, lif_layers: list[str], syn_layers: list[str],
                 library: Path | None = None, threads: int | None = None):
        from .native import load_library

        self.L = load_library(library)
        err = ctypes.create_string_buffer(512)
        self.net = self.L.lib.et_load(str(net_path).encode(), err, 512)
        if not self.net:
            raise EdgeTicketError(f"sparse backend: {err.value.decode()}")
        self.layout, self.timesteps = layout, int(timesteps)
        self.layers = list(lif_layers)
        self.synapses = list(syn_layers)
        nlif, nsyn = self.L.lib.et_num_lif(self.net), self.L.lib.et_num_syn(self.net)
        if nlif != len(self.layers) or nsyn != len(self.synapses):
            raise EdgeTicketError(f"sparse backend: {net_path} has {nlif} LIF / {nsyn} synaptic layers, the manifest "
                                  f"names {len(self.layers)} / {len(self.synapses)}: re-compile the bundle")
        self.state_floats = int(self.L.lib.et_state_floats(self.net))
        self.resident_bytes = int(self.L.lib.et_resident_bytes(self.net))
        self.threads = threads

    def __del__(self):
        net = getattr(self, "net", None)
        if net:
            self.L.lib.et_free(net)
            self.net = None

    def _call(self, x, nsteps, state, K):
        B = x.shape[0]
        logits = np.zeros((B, K), np.float32)
        spikes = np.zeros((len(self.layers), nsteps, B), np.float32)
        events = np.zeros((len(self.synapses), nsteps, B), np.float32)
        threads = self.threads or max(1, min(B, _cores()))
        p = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
        rc = self.L.lib.et_run(self.net, B, p(x), nsteps, p(state), p(logits), p(spikes), p(events), int(threads))
        if rc != 0:
            raise EdgeTicketError("sparse backend: out of memory for the scratch buffers")
        return logits, spikes, events

    def run(self, x: np.ndarray, with_counts: bool = True):
        x = np.ascontiguousarray(x, dtype=np.float32)
        B = x.shape[0]
        K = self._classes()
        state = np.zeros((B, self.state_floats), np.float32)
        if self.layout == "time-folded":
            logits, spikes, events = self._call(x, self.timesteps, state, K)
        else:
            logits = np.zeros((B, K), np.float32)
            sp, ev = [], []
            for _ in range(self.timesteps):
                lg, s, e = self._call(x, 1, state, K)
                logits += lg
                sp.append(s)
                ev.append(e)
            spikes, events = np.concatenate(sp, axis=1), np.concatenate(ev, axis=1)
        if not with_counts:
            return logits, {}
        counts = {n: spikes[i] for i, n in enumerate(self.layers)}
        counts.update({f"events__{n}": events[i] for i, n in enumerate(self.synapses)})
        return logits, counts

    def _classes(self) -> int:
        return int(self.L.lib.et_num_classes(self.net))


def _cores() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
