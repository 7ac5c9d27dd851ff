"""Default CPU schedules for the TVM (Relax) build, without tuning.

TVM 0.27's CPU pipeline legalizes every operator to plain TensorIR loops and schedules none of them: each
conv2d runs as seven serial scalar loops on one core, which is why an untuned build ran ~16-25x slower than
onnxruntime. This module rewrites the convs and gives every PrimFunc a schedule before lowering, in the style
of TVM's dlight rules (docs/tvm-notes.md has what each step gave):

- `to_nhwc`: every conv2d computed in NHWC; constant weights re-laid out at build time as [F/16, KH, KW, C, 16]
  blocks, so the 16-channel slice a register tile multiplies by is one contiguous stream.
- `Conv2dNHWC` rule: output-channel tile outermost (its weight slice stays in cache while every image, row and
  column of the batch x timesteps passes under it), a register tile of rows x columns x channels
  (`_conv_tile`), the reduction outside the tile, the bias and the transposition back to NCHW applied when the
  tile leaves the registers, output-channel tiles x images x row tiles in parallel.
- `Elementwise` rule: everything else (the LIF arithmetic, transposes, pooling, spike counts, the classifier).
  Single-use spatial blocks are inlined into their consumer; a chain of blocks ending in one output (the LIF over
  T steps, ending in the stacked spikes) is computed channel-plane by channel-plane under one parallel loop;
  otherwise each block gets parallel rows and a vectorized contiguous inner loop.
"""

from __future__ import annotations

import functools
import math

VECTOR_BITS_DEFAULT = 128


@functools.lru_cache(maxsize=1)
def _host_vector_bits() -> int | None:
    """Widest vector the host CPU executes natively (LLVM reports 512 for AMD Zen 3, which has no AVX-512)."""
    try:
        flags = next((ln for ln in open("/proc/cpuinfo") if ln.startswith(("flags", "Features"))), "").split()
    except OSError:
        return None
    if "avx512f" in flags:
        return 512
    if "avx2" in flags or "avx" in flags:
        return 256
    return 128 if flags else None


def _lanes(target, bits: int = 32) -> int:
    from tvm.target.codegen import llvm_get_vector_width

    try:
        width = int(llvm_get_vector_width(target))
    except Exception:  # noqa: BLE001 - cross targets without a vector width attribute
        width = -1
    width = width if width > 0 else VECTOR_BITS_DEFAULT
    if not str(target.attrs.get("mtriple", "")):  # built for this machine: what it really runs
        width = min(width, _host_vector_bits() or width)
    return max(width // bits, 1)


def _extent(sch, loop):
    from tvm import tirx

    ext = sch.get(loop).extent
    return int(ext.value) if isinstance(ext, tirx.IntImm) else None


ACCUMULATORS = 12  # vector registers a conv register tile may hold (16 on AVX2 and 32 on NEON, minus operands)


def _conv_tile(F: int, H: int, W: int, lanes: int) -> tuple[int, int, int]:
    """(output channels, rows, columns) of the conv register tile: at most ACCUMULATORS vectors, exact divisors
    (no tail predicates), the most multiply-adds per value loaded (weights vectors + input broadcasts)."""
    best = None
    for fi in (2 * lanes, lanes, 4, 2, 1):
        if F % fi or fi > F:
            continue
        vecs = max(fi // lanes, 1)
        positions = max(ACCUMULATORS // vecs, 1)
        xi = next(d for d in range(min(W, positions), 0, -1) if W % d == 0)
        yi = next(d for d in range(min(H, positions // xi), 0, -1) if H % d == 0)
        score = (vecs * xi * yi) / (vecs + xi * yi)
        if best is None or score > best[0] + 1e-9:
            best = (score, fi, yi, xi)
    return best[1:]


def _rules():
    from tvm import s_tir
    from tvm.s_tir import dlight as dl
    from tvm.s_tir.dlight.analysis import normalize_prim_func

    class _CpuRule(dl.ScheduleRule):
        """llvm targets only; `schedule(sch, infos, target)` returns the schedule or None (rule does not apply)."""

        def is_target_available(self, target) -> bool:
            return target.kind.name == "llvm"

        def apply(self, func, target, _tunable):
            if not self.is_target_available(target):
                return None
            sch = s_tir.Schedule(func)
            infos = normalize_prim_func(sch)
            return None if infos is None else self.schedule(sch, infos, target)

    class Conv2dNHWC(_CpuRule):
        def schedule(self, sch, infos, target):
            convs = [b for b in infos
                     if b.dom_kind() == "SSSSRRR" and sch.get(b.block_rv).name_hint.startswith("conv2d_nhwc")]
            if len(convs) != 1:
                return None
            conv = convs[0].block_rv
            # the padding stays a block of its own (inlined, its bounds test sits in the innermost loop; measured
            # no faster) and gets a parallel, vectorized loop nest below
            n, y, x, f, ry, rx, c = sch.get_loops(conv)
            F, H, W = _extent(sch, f), _extent(sch, y), _extent(sch, x)
            if F is None or W is None or H is None:
                return None
            lanes = _lanes(target)
            fi, yi, xi = _conv_tile(F, H, W, lanes)
            f_o, f_i = sch.split(f, [None, fi])
            y_o, y_i = sch.split(y, [None, yi])
            x_o, x_i = sch.split(x, [None, xi])
            # output-channel tile outermost: its slice of the weights (kh*kw*C*fi floats) stays in cache while
            # every image, row and column tile of the batch x timesteps passes under it
            sch.reorder(f_o, n, y_o, x_o, ry, rx, c, y_i, x_i, f_i)
            acc = sch.cache_write(conv, 0, "local")
            sch.reverse_compute_at(acc, x_o, preserve_unit_loops=True)
            # the epilogue (bias add, ...) runs on the tile as it leaves the registers
            consumers = sch.get_consumers(acc)
            while len(consumers) == 1:
                try:
                    sch.reverse_compute_inline(consumers[0])
                except Exception:  # noqa: BLE001
                    break
                consumers = sch.get_consumers(acc)
            outer = sch.fuse(f_o, n, y_o)
            sch.parallel(outer)
            sch.unroll(y_i)
            sch.unroll(x_i)
            sch.vectorize(f_i)
            init = sch.decompose_reduction(conv, ry)
            iloops = sch.get_loops(init)
            sch.vectorize(iloops[-1])
            wloops = sch.get_loops(acc)
            sch.vectorize(wloops[-1])
            for b in sch.get_consumers(acc):  # an epilogue that would not inline: its own parallel loop nest
                _parallel_vectorize(sch, b, lanes)
            for b in sch.get_producers(conv):  # the padding
                if not sch.get(b).name_hint.startswith(("conv2d", "root")):
                    try:
                        _parallel_vectorize(sch, b, lanes)
                    except Exception:  # noqa: BLE001
                        pass
            return sch

    class Elementwise(_CpuRule):
        def schedule(self, sch, infos, target):
            remaining = _inline_single_use(sch, infos)
            lanes = _lanes(target)
            if len(remaining) > 1 and all(b.is_injective() for b in remaining):
                trial = sch.copy()
                if _anchor_planes(trial, [b.block_rv for b in remaining], lanes):
                    return trial
            for b in remaining:
                _parallel_vectorize(sch, b.block_rv, lanes, b.dom_kind())
            return sch

    return Conv2dNHWC(), Elementwise()


def _inline_single_use(sch, infos):
    """Inlines spatial blocks into their consumer where that duplicates no work: blocks with one consumer, and
    blocks that read no buffer of the function's size (broadcast constants). A block the LIF recurrence reads
    twice (the membrane potential feeds both the spike and the next step) keeps its buffer, otherwise every
    timestep would recompute all earlier ones."""
    remaining = []
    for b in infos:
        blk = sch.get(b.block_rv)
        if not b.is_injective() or not sch.get_consumers(b.block_rv):
            remaining.append(b)
            continue
        cheap = all(all(int(getattr(d, "value", 2)) == 1 for d in r.source.shape) for r in blk.reads)
        if len(sch.get_consumers(b.block_rv)) == 1 or cheap:
            try:
                sch.compute_inline(b.block_rv)
                continue
            except Exception:  # noqa: BLE001
                pass
        remaining.append(b)
    return remaining


MIN_PARALLEL = 4096  # iterations below which a loop nest stays on one thread (thread start-up costs more)


SMALL_OUTER = 8  # a leading loop this short (the timestep axis of a stacked output) moves inside the parallel one


def _anchor_planes(sch, blocks, lanes: int) -> bool:
    """A chain of elementwise blocks (the LIF over T steps, ending in the stacked spikes) computed plane by plane:
    the last block's loops except its last two (and except short ones such as the timestep axis) run in parallel,
    and every earlier block is computed under that loop, so intermediates live in cache instead of memory and
    there is one parallel region instead of one per block. False (schedule unusable) where a block cannot move."""
    anchor = blocks[-1]
    loops = sch.get_loops(anchor)
    if len(loops) < 3:
        return False
    outer, plane = list(loops[:-2]), list(loops[-2:])
    small = [lp for lp in outer if (_extent(sch, lp) or SMALL_OUTER + 1) <= SMALL_OUTER]
    big = [lp for lp in outer if not any(lp.same_as(q) for q in small)]
    if not big:
        return False
    try:
        sch.reorder(*big, *small, *plane)
        par = sch.fuse(*big) if len(big) > 1 else big[0]
        for b in reversed(blocks[:-1]):
            sch.compute_at(b, par, preserve_unit_loops=True)
        sch.parallel(par)
        for b in blocks:
            lps = sch.get_loops(b)
            inner = [lp for lp in lps[1:] if (_extent(sch, lp) or 0) > 1]
            if not inner:
                continue
            i_pl = sch.fuse(*lps[-2:])
            ext = _extent(sch, i_pl)
            if ext is not None and ext >= lanes:
                _, vec = sch.split(i_pl, [None, lanes])
                sch.vectorize(vec)
    except Exception:  # noqa: BLE001 - any primitive refusing means this shape does not fit the pattern
        return False
    return True


def _parallel_vectorize(sch, block, lanes: int, dom_kind: str | None = None):
    loops = sch.get_loops(block)
    if not loops:
        return
    kinds = dom_kind if dom_kind is not None and len(dom_kind) == len(loops) else None
    n_spatial = len(loops) if kinds is None else len(kinds) - len(kinds.lstrip("S"))
    if kinds is not None and n_spatial == 0:
        return
    spatial = loops[:n_spatial]
    exts = [_extent(sch, lp) for lp in spatial]
    total = None if any(e is None for e in exts) else math.prod(exts)
    if kinds is None or n_spatial == len(loops):  # injective: rows in parallel, a contiguous vector inside
        k, inner_ext = len(spatial) - 1, exts[-1]
        while k > 0 and inner_ext is not None and inner_ext < 4 * lanes and exts[k - 1] is not None:
            k -= 1
            inner_ext *= exts[k]
        inner = sch.fuse(*spatial[k:]) if len(spatial) - k > 1 else spatial[k]
        v = next((w for w in (lanes, lanes // 2, lanes // 4, 2) if w >= 2 and inner_ext and inner_ext % w == 0), None)
        if v is not None:
            _, vec = sch.split(inner, [None, v])
            sch.vectorize(vec)
        if k > 0 and (total is None or total >= MIN_PARALLEL):
            sch.parallel(sch.fuse(*spatial[:k]) if k > 1 else spatial[0])
        return
    fused = sch.fuse(*spatial) if len(spatial) > 1 else spatial[0]
    if total is None or total >= MIN_PARALLEL // 16:
        sch.parallel(fused)


def pipeline(target):
    """The Relax pipeline for a CPU target: TVM's default CPU passes with these schedules applied between
    legalization and lowering."""
    import tvm
    from tvm.relax.backend.cpu_generic import pipeline as cpu
    from tvm.s_tir import dlight as dl

    conv, elementwise = _rules()

    @tvm.transform.module_pass(opt_level=0, name="EdgeticketCPUPipeline")
    def _pipeline(mod, _ctx):
        with target:
            passes = cpu.library_dispatch_passes(target) + cpu.legalize_passes(target)
            passes.append(dl.ApplyDefaultSchedule(conv, elementwise))
            passes += cpu.dataflow_lower_passes(target) + cpu.finalize_passes(target)
            return tvm.transform.Sequential(passes)(mod)

    return _pipeline


BLOCK_F = 16  # output channels per weight block (two AVX2 / four NEON vectors of float32)


def _blocked_conv_te(x, w5, strides, padding, fi):
    """NHWC conv with weights blocked as [F/fi, KH, KW, C, fi]: the fi-channel slice the register tile uses is
    one contiguous stream."""
    from tvm import te, topi

    n_, h_, w_, c_ = x.shape
    fo, kh, kw, _, _ = w5.shape
    pt, pl, pb, pr = (int(v) for v in padding)
    sh, sw = (int(v) for v in strides)
    pad = topi.nn.pad(x, [0, pt, pl, 0], [0, pb, pr, 0], name="pad_temp") if (pt or pl or pb or pr) else x
    oh = (h_ + pt + pb - kh) // sh + 1
    ow = (w_ + pl + pr - kw) // sw + 1
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")
    rc = te.reduce_axis((0, c_), name="rc")
    return te.compute((n_, oh, ow, fo * fi),
                      lambda n, y, xx, f: te.sum(pad[n, y * sh + ry, xx * sw + rx, rc] * w5[f // fi, ry, rx, rc, f % fi],
                                                 axis=[ry, rx, rc]),
                      name="conv2d_nhwc")


def to_nhwc(mod, block_f: int = BLOCK_F):
    """Each conv2d computed in NHWC: the input is transposed before it, the output back after it (that
    transposition fuses into the conv's write-back). Constant weights are re-laid out at build time as
    [F/fi, KH, KW, C, fi] blocks; computed ones (a decode subgraph) as HWIO by a transposition. Done per call
    rather than with Relax's ConvertLayout, which refuses some of our graphs."""
    import numpy as np
    import tvm
    from tvm import relax

    @relax.expr_functor.mutator
    class _Nhwc(relax.PyExprMutator):
        def visit_call_(self, call):
            call = super().visit_call_(call)
            a = getattr(call, "attrs", None)
            if not (isinstance(call.op, tvm.ir.Op) and call.op.name == "relax.nn.conv2d" and a.data_layout == "NCHW"
                    and a.kernel_layout == "OIHW" and a.out_layout == "NCHW" and a.groups == 1):
                return call
            x, w = call.args
            xt = self.builder_.emit(relax.op.permute_dims(x, [0, 2, 3, 1]))
            dil = [int(d) for d in a.dilation]
            if isinstance(w, tvm.ir.expr.Constant) and dil == [1, 1] and w.value.shape[0] % block_f == 0 and \
                    str(w.value.dtype) == "float32" and not (a.out_dtype and str(a.out_dtype) not in ("", "float32")):
                wn = w.value.numpy()
                F, C, KH, KW = wn.shape
                w5 = np.ascontiguousarray(wn.reshape(F // block_f, block_f, C, KH, KW).transpose(0, 3, 4, 2, 1))
                y = self.builder_.emit_te(_blocked_conv_te, xt, relax.const(w5), [int(v) for v in a.strides],
                                          [int(v) for v in a.padding], block_f, primfunc_name_hint="conv2d_blocked")
            else:
                wt = self.builder_.emit(relax.op.permute_dims(w, [2, 3, 1, 0]))
                y = self.builder_.emit(relax.op.nn.conv2d(xt, wt, strides=a.strides, padding=a.padding,
                                                          dilation=a.dilation, groups=1, data_layout="NHWC",
                                                          kernel_layout="HWIO", out_layout="NHWC",
                                                          out_dtype=a.out_dtype or None))
            return relax.op.permute_dims(y, [0, 3, 1, 2])

    m = _Nhwc(mod)
    for gv, func in mod.functions_items():
        if isinstance(func, relax.Function):
            m.builder_.update_func(gv, m.visit_expr(func))
    return m.builder_.get()
