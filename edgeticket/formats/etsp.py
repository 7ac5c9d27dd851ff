"""The event backend's network file (.etsp): the ticket's compressed weights, read by the native event-driven
kernels (edgeticket/device/native/etevent.c), which re-encode them at load. numpy only.

The file format (little-endian; written by `write_etsp`, read by et_load in C):
  header, 12 x u32: magic "ETSP", version 2, nlayers, in_c, in_h, in_w, timesteps, tau (f32), v_th (f32),
                    num_classes, 0, 0
  per layer, 16 x u32: kind, cin, hin, win, cout, hout, wout, k, stride, pad, lif (1: a LIF follows), ncols, nnz,
                    src (the layer it reads; NONE: the image), join (a layer whose output is added to this one's
                    before its LIF, or NONE), 0
  kinds: 0 conv on the image, 1 conv on spikes, 2 max-pool, 3 linear on spikes, 4 global average pool (spikes in,
         real values out), 5 linear on real values (a global average pool's)
  then, unless a pooling layer: colptr i32 [ncols + 1], gaps u8 [nnz] (zero-padded to 4 bytes), values f32 [nnz],
                    bias f32 [cout]
A layer's weights form a CSC matrix: column = input channel x kernel offset (conv, (c * k + ky) * k + kx) or
input feature in HWC order (linear); row = output channel, delta-coded: row = previous row + gap, the first
from -1; gaps over 255 are bridged by fillers of value 0 (adding 0.0 changes no sum).
A layer's output is spikes (a LIF follows it, or a max-pool) or real values (a conv or linear without LIF: a
shortcut joined into a later layer, or the last layer, the classifier; a global average pool). Version 1 files
(13 words a layer, each layer reading the one before, no joins) are still read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAGIC = 0x50535445
VERSION = 2
CONV_IMAGE, CONV_SPIKES, MAXPOOL, LINEAR_SPIKES, GLOBAL_AVGPOOL, LINEAR_REAL = 0, 1, 2, 3, 4, 5
POOLS = (MAXPOOL, GLOBAL_AVGPOOL)
NONE = 0xFFFFFFFF


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
    """layers: dicts with kind, cin, hin, win, cout, hout, wout, k, stride, pad, lif, optionally src and join (an
    earlier layer's index, or None: the image / no join; src defaults to the layer before) and, unless a pooling
    layer, `matrix` [ncols, cout] (float32)
    and `bias` [cout]. Returns the bytes written."""
    parts = [np.array([MAGIC, VERSION, len(layers), *input_shape, timesteps], np.uint32).tobytes(),
             np.array([tau, v_th], np.float32).tobytes(), np.array([num_classes, 0, 0], np.uint32).tobytes()]
    for i, L in enumerate(layers):
        if L["kind"] in POOLS:
            ncols = nnz = 0
        else:
            colptr, gaps, vals = csc_delta8(L["matrix"])
            ncols, nnz = len(colptr) - 1, len(gaps)
        src = L.get("src", i - 1 if i else None)  # a chain by default: each layer reads the one before
        src, join = (NONE if v is None else v for v in (src, L.get("join")))
        parts.append(np.array([L["kind"], L["cin"], L["hin"], L["win"], L["cout"], L["hout"], L["wout"], L["k"],
                               L["stride"], L["pad"], int(L["lif"]), ncols, nnz, src, join, 0], np.uint32).tobytes())
        if L["kind"] not in POOLS:
            pad = (-nnz) % 4
            parts += [colptr.tobytes(), gaps.tobytes() + b"\0" * pad, vals.tobytes(),
                      np.asarray(L["bias"], np.float32).tobytes()]
    data = b"".join(parts)
    Path(path).write_bytes(data)
    return len(data)


# ---- reading it back: the checks the C loader relies on ------------------------------------------------------
# et_load (etevent.c) trusts the layer count and the layer records: a tampered file with a huge layer count made
# it write through a failed allocation, and records whose sizes or shapes disagree send the kernels outside their
# buffers. `check_header` reads the file in Python first (one layer's index arrays at a time, never the values)
# and refuses anything the kernels could not run safely, in one line naming the file and the fix.

HEADER_WORDS = 12
LAYER_WORDS = {1: 13, 2: 16}  # by version
MAX_LAYERS = 4096
MAX_VALUES = 1 << 26  # neurons of one layer's output map (and of the input), far above any edge network
_FIX = "copy the whole bundle folder again, or re-compile the ticket"


def _fail(path, why: str):
    from ..errors import EdgeTicketError

    raise EdgeTicketError(f"{path}: {why}; {_FIX}")


def _expected(kind: int, r: dict, out: list, K: int, i: int, last: bool) -> str | None:
    """Why layer i's record does not follow from the layers it reads (None: it does). out[j] = (shape, is_spikes)
    of layer j's output; the image is (input shape, False)."""
    cin, hin, win, cout, hout, wout, k, stride, pad, lif, ncols, nnz = (r[f] for f in (
        "cin", "hin", "win", "cout", "hout", "wout", "k", "stride", "pad", "lif", "ncols", "nnz"))
    src = r["src"]
    shape, spikes = out[src] if src != NONE else (out[-1][0], False)
    c, h, w = shape
    reads = {CONV_IMAGE: src == NONE, LINEAR_REAL: src != NONE and not spikes}.get(kind, src != NONE and spikes)
    if not reads:
        return f"reads {'the image' if src == NONE else f'layer {src}'}, which a kind {kind} layer cannot read"
    if kind in (CONV_IMAGE, CONV_SPIKES):
        ok = (cin, hin, win) == shape and pad < k and ncols == cin * k * k and k <= min(hin, win) + 2 * pad \
            and (hout, wout) == ((hin + 2 * pad - k) // stride + 1, (win + 2 * pad - k) // stride + 1) \
            and (lif == 1 or (kind == CONV_SPIKES and not last))
    elif kind == MAXPOOL:
        ok = (cin, hin, win) == shape and cout == cin and pad == 0 and lif == 0 and ncols == nnz == 0 \
            and (hout, wout) == ((hin - k) // stride + 1, (win - k) // stride + 1) and k <= min(hin, win)
    elif kind == GLOBAL_AVGPOOL:
        ok = (cin, hin, win) == shape and cout == cin and (hout, wout) == (1, 1) and lif == 0 and ncols == nnz == 0
    else:  # linear on spikes (any map, HWC order) or on a global average pool's values
        ok = (cin, hin, win) == (c * h * w, 1, 1) and (hout, wout) == (1, 1) and ncols == cin
    if last:
        ok = ok and kind in (LINEAR_SPIKES, LINEAR_REAL) and cout == K and lif == 0
    if ok:
        return None
    what = "the classifier of the manifest's classes" if last else "its input"
    return (f"(kind {kind}) declares input {cin}x{hin}x{win}, output {cout}x{hout}x{wout}, k {k}, stride {stride}, "
            f"pad {pad}, lif {lif}, {ncols} columns: it does not follow from {what} ({c}x{h}x{w}, {K} classes)")


def check_header(path: Path, input_shape: tuple | None = None, timesteps: int | None = None,
                 num_classes: int | None = None, lif_layers: int | None = None,
                 synaptic_layers: int | None = None) -> dict:
    """Check an .etsp file before the C code loads it: magic and version, a bounded layer count, every section's
    declared size within the file and the file exactly as long as its header implies; each layer reads an earlier
    one (or the image: the first layer alone), and its shapes follow from what it reads (the last is the
    classifier of num_classes outputs); a joined layer is earlier and of the same output shape; its column
    pointers run from 0 to nnz without decreasing and every row index is below its output channels. The optional
    arguments are the manifest's values, compared with the file's. Returns the header (nlayers, input_shape,
    timesteps, num_classes, tau, v_th, lif_layers, synaptic_layers, lif_sizes: the state floats per sample of each
    LIF layer, in order, as the kernels lay them out one after the other)."""
    import os

    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        from ..errors import EdgeTicketError

        raise EdgeTicketError(f"{path}: cannot be read ({e.strerror}); {_FIX}") from None
    with f:
        size = os.fstat(f.fileno()).st_size

        def words(n: int, what: str) -> np.ndarray:
            data = f.read(4 * n)
            if len(data) != 4 * n:
                _fail(path, f"truncated: {size} bytes end inside {what}")
            return np.frombuffer(data, "<u4")

        if size < 4 * HEADER_WORDS:
            _fail(path, f"truncated: {size} bytes, shorter than the {4 * HEADER_WORDS}-byte header of an .etsp file")
        h = words(HEADER_WORDS, "the header")
        version = int(h[1])
        if int(h[0]) != MAGIC or version not in LAYER_WORDS:
            _fail(path, f"not an .etsp v1 or v{VERSION} network file (magic {int(h[0]):#010x}, version {version})")
        nwords = LAYER_WORDS[version]
        nlayers = int(h[2])
        shape = tuple(int(v) for v in h[3:6])
        T, K = int(h[6]), int(h[9])
        tau, v_th = (float(v) for v in np.frombuffer(h[7:9].tobytes(), "<f4"))
        if not 2 <= nlayers <= MAX_LAYERS or 4 * (HEADER_WORDS + nwords * nlayers) > size:
            _fail(path, f"its header declares {nlayers} layers (at most {MAX_LAYERS}, at least the stem and the "
                        f"classifier, and their records must fit the file's {size} bytes)")
        if min(shape) < 1 or int(np.prod([float(v) for v in shape])) > MAX_VALUES or T < 1 or K < 1:
            _fail(path, f"its header declares input {list(shape)}, T={T}, {K} classes: not a network's")
        if not (np.isfinite(tau) and tau > 0 and np.isfinite(v_th)):
            _fail(path, f"its header declares tau {tau}, v_threshold {v_th}: not a LIF neuron's")
        for name, mine, theirs in (("input shape", input_shape, shape), ("timesteps", timesteps, T),
                                   ("classes", num_classes, K)):
            if mine is not None and tuple(np.atleast_1d(mine).tolist()) != tuple(np.atleast_1d(theirs).tolist()):
                _fail(path, f"its {name} {theirs} disagrees with the manifest's {mine}")
        off, nlif, nsyn, lif_sizes = 4 * HEADER_WORDS, 0, 0, []
        out = [(shape, False)]  # out[j]: (output shape, spikes?) of layer j; out[-1]: the image until replaced
        outs: list = []
        for i in range(nlayers):
            r = [int(v) for v in words(nwords, f"layer {i}'s record")]
            off += 4 * nwords
            if version == 1:
                r += [NONE if i == 0 else i - 1, NONE, 0]
            rec = dict(zip(("kind", "cin", "hin", "win", "cout", "hout", "wout", "k", "stride", "pad", "lif", "ncols",
                            "nnz", "src", "join", "zero"), r))
            kind, cout, hout, wout, lif = rec["kind"], rec["cout"], rec["hout"], rec["wout"], rec["lif"]
            at = f"layer {i}"
            last = i == nlayers - 1
            if kind not in (CONV_IMAGE, CONV_SPIKES, MAXPOOL, LINEAR_SPIKES, GLOBAL_AVGPOOL, LINEAR_REAL) \
                    or (kind == CONV_IMAGE) != (i == 0):
                _fail(path, f"{at} has kind {kind}: the first layer must be the image conv (0), the others convs on "
                            "spikes (1), max-pools (2), linear layers (3, 5) or a global average pool (4)")
            if min(rec["k"], rec["stride"]) < 1 or min(cout, hout, wout) < 1 or lif not in (0, 1) or rec["zero"]:
                _fail(path, f"{at} declares k {rec['k']}, stride {rec['stride']}, output {cout}x{hout}x{wout}, "
                            f"lif {lif}")
            if (rec["src"] == NONE) != (i == 0) or (rec["src"] != NONE and rec["src"] >= i):
                _fail(path, f"{at} reads layer {rec['src']}: each layer but the first reads an earlier one")
            why = _expected(kind, rec, outs + [out[0]], K, i, last)
            if why:
                _fail(path, f"{at} {why}")
            if cout * hout * wout > MAX_VALUES:
                _fail(path, f"{at} declares {cout * hout * wout} outputs (at most {MAX_VALUES})")
            j = rec["join"]
            if j != NONE and not (j < i and lif == 1 and kind in (CONV_SPIKES, LINEAR_SPIKES, LINEAR_REAL)
                                  and outs[j][0] == (cout, hout, wout) and j not in (rec["src"],)):
                _fail(path, f"{at} joins layer {j}: a joined layer is an earlier one of the same output shape, added "
                            "before this layer's LIF")
            outs.append(((cout, hout, wout), bool(lif) or kind == MAXPOOL))
            nlif += lif
            if lif:
                lif_sizes.append(cout * hout * wout)
            if kind in POOLS:
                continue
            nsyn += kind != CONV_IMAGE
            ncols, nnz = rec["ncols"], rec["nnz"]
            need = 4 * (ncols + 1) + nnz + (-nnz) % 4 + 4 * nnz + 4 * cout
            if off + need > size:
                _fail(path, f"truncated: {at} declares {need} bytes of weights at offset {off}, the file has {size}")
            colptr = np.frombuffer(f.read(4 * (ncols + 1)), "<i4").astype(np.int64)
            gaps = np.frombuffer(f.read(nnz), np.uint8).astype(np.int64)
            if colptr[0] != 0 or colptr[-1] != nnz or np.any(np.diff(colptr) < 0):
                _fail(path, f"{at}'s column pointers do not run from 0 to its {nnz} weights without decreasing")
            if nnz:
                if gaps.min() < 1:
                    _fail(path, f"{at} has a row gap of 0 (rows are delta-coded from -1, each gap at least 1)")
                ends = np.cumsum(gaps)
                before = np.concatenate([[0], ends])
                full = colptr[1:] > colptr[:-1]
                last_row = ends[colptr[1:][full] - 1] - before[colptr[:-1][full]] - 1
                if last_row.size and int(last_row.max()) >= cout:
                    _fail(path, f"{at} has a row index {int(last_row.max())} beyond its {cout} output channels")
            off += need
            f.seek(off)
        if off != size:
            _fail(path, f"the file has {size} bytes, its header and layer records imply {off}")
        for name, mine, theirs in (("LIF layers", lif_layers, nlif), ("synaptic layers", synaptic_layers, nsyn)):
            if mine is not None and mine != theirs:
                _fail(path, f"it has {theirs} {name}, the manifest names {mine}")
    return {"nlayers": nlayers, "input_shape": shape, "timesteps": T, "num_classes": K, "tau": tau, "v_th": v_th,
            "lif_layers": nlif, "synaptic_layers": nsyn, "lif_sizes": lif_sizes, "version": version}
