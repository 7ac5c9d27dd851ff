"""The event backend's network file (.etsp): the ticket's compressed weights in their resident form, read by
the native event-driven kernels (edgeticket/device/native/etevent.c). numpy only.

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

from pathlib import Path

import numpy as np

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
