"""Sparse weight storage inside the ONNX file. Pruned weights are not stored; plain ONNX ops rebuild the dense
tensor at load (onnxruntime constant-folds the rebuild, so only file/transfer size shrinks).

Per prunable weight, the smaller of two exact position codes is chosen:
- `delta8`: values + uint8 gaps between consecutive kept positions (gap 1..255). A gap over 255 is bridged by
  a filler entry of value 0 (rare above ~70% sparsity). Rebuild: CumSum(gaps) - 1 -> ScatterElements.
- `bitmask`: values + one bit per position (uint8-packed, MSB first). Rebuild: BitShift + Mod unpack,
  CumSum of the bits indexes the values (Gather), times the bits.
Values are fp32, fp16 (Cast back at load) or int8 (symmetric, per output channel, DequantizeLinear).
`sparse-initializer` uses ONNX's own sparse_initializer (COO, int64 indices) instead, and `dense` stores
everything dense (for comparison).

Sizes are compared with the entropy floor of a layer: nnz * value_bits + N * H(nnz / N) bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STORAGES = ("packed", "sparse-initializer", "dense")
WEIGHT_FORMATS = ("fp32", "fp16", "int8")
VALUE_BITS = {"fp32": 32, "fp16": 16, "int8": 8}


def binary_entropy(p: float) -> float:
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def entropy_floor_bits(n: int, nnz: int, value_bits: int = 32) -> float:
    return nnz * value_bits + n * binary_entropy(nnz / n if n else 0.0)


def quantize_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel int8: q = round(w / s), s = max|w_c| / 127 (s = 1 for an all-zero channel)."""
    flat = w.reshape(w.shape[0], -1)
    amax = np.abs(flat).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(flat / scale[:, None]), -127, 127).astype(np.int8).reshape(w.shape)
    return q, scale


def dequantize(w: np.ndarray, fmt: str) -> np.ndarray:
    """The float weights the graph will compute with for a weight format (the validation reference uses them)."""
    if fmt == "fp32":
        return w.astype(np.float32)
    if fmt == "fp16":
        return w.astype(np.float16).astype(np.float32)
    q, scale = quantize_int8(w)
    # DequantizeLinear computes (q - 0) * scale in float32, per axis 0
    return (q.astype(np.float32) * scale.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)


def delta8_code(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 gaps with fillers. Returns (gaps uint8, index into the original positions or -1 for a filler).
    A gap g > 255 becomes (g - 1) // 255 fillers of 255 followed by the remainder."""
    positions = np.asarray(positions, dtype=np.int64)
    gaps = np.diff(np.concatenate([[-1], positions]))
    n_fill = (gaps - 1) // 255
    real = np.cumsum(n_fill + 1) - 1  # where each real entry lands in the output
    total = int(real[-1]) + 1 if len(real) else 0
    out = np.full(total, 255, dtype=np.uint8)
    out[real] = (gaps - 255 * n_fill).astype(np.uint8)
    src = np.full(total, -1, dtype=np.int64)
    src[real] = np.arange(len(positions))
    return out, src


@dataclass
class LayerStorage:
    name: str
    shape: list
    numel: int
    nnz: int
    code: str  # delta8 | bitmask | coo | dense
    value_bytes: int
    index_bytes: int
    floor_bytes: float
    decode_transient_bytes: int = 0  # intermediate tensors of the decode subgraph when onnxruntime folds it

    @property
    def stored_bytes(self) -> int:
        return self.value_bytes + self.index_bytes

    def as_dict(self) -> dict:
        return {"name": self.name, "shape": self.shape, "numel": self.numel, "nnz": self.nnz, "code": self.code,
                "value_bytes": self.value_bytes, "index_bytes": self.index_bytes, "stored_bytes": self.stored_bytes,
                "entropy_floor_bytes": round(self.floor_bytes, 1),
                "decode_transient_bytes": self.decode_transient_bytes,
                "ratio_to_floor": round(self.stored_bytes / self.floor_bytes, 4) if self.floor_bytes else None}


def _values_and_decode(name: str, vals: np.ndarray, fmt: str, scale: np.ndarray | None, shape: tuple,
                       nodes: list, inits: list) -> tuple[str, int]:
    """Add the value initializer; returns (name of a float32 (or int8 for int8) 1-D tensor of values, bytes)."""
    if fmt == "fp16":
        inits.append(numpy_helper.from_array(vals.astype(np.float16), f"{name}__values"))
        nodes.append(helper.make_node("Cast", [f"{name}__values"], [f"{name}__values_f"], to=TensorProto.FLOAT))
        return f"{name}__values_f", vals.size * 2
    if fmt == "int8":
        inits.append(numpy_helper.from_array(vals.astype(np.int8), f"{name}__values"))
        return f"{name}__values", vals.size
    inits.append(numpy_helper.from_array(vals.astype(np.float32), f"{name}__values"))
    return f"{name}__values", vals.size * 4


def encode_weight(name: str, w: np.ndarray, fmt: str, nodes: list, inits: list) -> LayerStorage:
    """Add initializers + nodes that rebuild tensor `name` (the dense float weight the graph consumes)."""
    shape = tuple(w.shape)
    n = int(w.size)
    scale = None
    if fmt == "int8":
        q, scale = quantize_int8(w)
        flat = q.reshape(-1)
    else:
        flat = w.reshape(-1)
    positions = np.flatnonzero(flat)
    nnz = int(positions.size)
    vals = flat[positions]
    floor = entropy_floor_bits(n, nnz, VALUE_BITS[fmt]) / 8
    target = f"{name}__q" if fmt == "int8" else name
    extra = 0
    if nnz == 0:
        zero = numpy_helper.from_array(np.zeros(1, np.int8 if fmt == "int8" else np.float32))
        inits.append(numpy_helper.from_array(np.asarray(shape, np.int64), f"{name}__shape"))
        nodes.append(helper.make_node("ConstantOfShape", [f"{name}__shape"], [target], value=zero))
        code, vbytes, ibytes = "empty", 0, 8 * len(shape)
        transient = (1 if fmt == "int8" else 4) * n
    else:
        gaps, src = delta8_code(positions)
        delta_bytes = gaps.size * (1 + VALUE_BITS[fmt] // 8)
        bitmask_bytes = (n + 7) // 8 + nnz * (VALUE_BITS[fmt] // 8)
        inits.append(numpy_helper.from_array(np.asarray(shape, np.int64), f"{name}__shape"))
        if delta_bytes <= bitmask_bytes:
            code = "delta8"
            filled = np.where(src >= 0, vals[np.maximum(src, 0)], 0).astype(vals.dtype)
            vname, vbytes = _values_and_decode(name, filled, fmt, scale, shape, nodes, inits)
            inits.append(numpy_helper.from_array(gaps, f"{name}__gaps"))
            inits.append(numpy_helper.from_array(np.asarray([n], np.int64), f"{name}__n"))
            zero = numpy_helper.from_array(np.zeros(1, np.int8 if fmt == "int8" else np.float32))
            nodes += [
                helper.make_node("Cast", [f"{name}__gaps"], [f"{name}__gaps32"], to=TensorProto.INT32),
                helper.make_node("CumSum", [f"{name}__gaps32", f"{name}__axis0"], [f"{name}__pos1"]),
                helper.make_node("Sub", [f"{name}__pos1", f"{name}__one"], [f"{name}__pos"]),
                helper.make_node("ConstantOfShape", [f"{name}__n"], [f"{name}__zeros"], value=zero),
                helper.make_node("ScatterElements", [f"{name}__zeros", f"{name}__pos", vname], [f"{name}__flat"],
                                 axis=0),
                helper.make_node("Reshape", [f"{name}__flat", f"{name}__shape"], [target]),
            ]
            inits += [numpy_helper.from_array(np.asarray(0, np.int32), f"{name}__axis0"),
                      numpy_helper.from_array(np.asarray([1], np.int32), f"{name}__one")]
            ibytes = gaps.size
            vb = 1 if fmt == "int8" else 4
            transient = 12 * gaps.size + 2 * vb * n + (4 * nnz if fmt == "fp16" else 0)
        else:
            code = "bitmask"
            bits = np.zeros(n, np.uint8)
            bits[positions] = 1
            packed = np.packbits(bits)  # MSB first
            vname, vbytes = _values_and_decode(name, vals, fmt, scale, shape, nodes, inits)
            m = packed.size
            inits += [numpy_helper.from_array(packed.reshape(m, 1), f"{name}__bits"),
                      numpy_helper.from_array(np.arange(7, -1, -1, dtype=np.uint8).reshape(1, 8), f"{name}__shifts"),
                      numpy_helper.from_array(np.asarray([2], np.uint8), f"{name}__two"),
                      numpy_helper.from_array(np.asarray([m * 8], np.int64), f"{name}__m8"),
                      numpy_helper.from_array(np.asarray([0], np.int64), f"{name}__zero1"),
                      numpy_helper.from_array(np.asarray([0], np.int32), f"{name}__zero32"),
                      numpy_helper.from_array(np.asarray([n], np.int64), f"{name}__n"),
                      numpy_helper.from_array(np.asarray(0, np.int32), f"{name}__axis0"),
                      numpy_helper.from_array(np.asarray([1], np.int32), f"{name}__one")]
            zero = numpy_helper.from_array(np.zeros(1, np.int8 if fmt == "int8" else np.float32))
            nodes += [
                helper.make_node("BitShift", [f"{name}__bits", f"{name}__shifts"], [f"{name}__sh"], direction="RIGHT"),
                helper.make_node("Mod", [f"{name}__sh", f"{name}__two"], [f"{name}__b8"]),
                helper.make_node("Reshape", [f"{name}__b8", f"{name}__m8"], [f"{name}__ball"]),
                helper.make_node("Slice", [f"{name}__ball", f"{name}__zero1", f"{name}__n"], [f"{name}__bu"]),
                helper.make_node("Cast", [f"{name}__bu"], [f"{name}__b32"], to=TensorProto.INT32),
                helper.make_node("CumSum", [f"{name}__b32", f"{name}__axis0"], [f"{name}__cs"]),
                helper.make_node("Sub", [f"{name}__cs", f"{name}__one"], [f"{name}__idx1"]),
                helper.make_node("Max", [f"{name}__idx1", f"{name}__zero32"], [f"{name}__idx"]),
                helper.make_node("Gather", [vname, f"{name}__idx"], [f"{name}__g"], axis=0),
                helper.make_node("Cast", [f"{name}__bu"], [f"{name}__bb"], to=TensorProto.BOOL),
                helper.make_node("ConstantOfShape", [f"{name}__n"], [f"{name}__zeros"], value=zero),
                helper.make_node("Where", [f"{name}__bb", f"{name}__g", f"{name}__zeros"], [f"{name}__flat"]),
                helper.make_node("Reshape", [f"{name}__flat", f"{name}__shape"], [target]),
            ]
            ibytes = m
            vb = 1 if fmt == "int8" else 4
            transient = 5 * n + 16 * n + 4 * vb * n + (4 * nnz if fmt == "fp16" else 0)
        extra = 8 * len(shape)
    if fmt == "int8":
        inits += [numpy_helper.from_array(scale.astype(np.float32), f"{name}__scale"),
                  numpy_helper.from_array(np.zeros(shape[0], np.int8), f"{name}__zp")]
        nodes.append(helper.make_node("DequantizeLinear", [target, f"{name}__scale", f"{name}__zp"], [name], axis=0))
        extra += shape[0] * 5
        transient += 4 * n
    return LayerStorage(name, list(shape), n, nnz, code, vbytes, ibytes + extra, floor, transient)


def apply_storage(model: onnx.ModelProto, prunable: list[str], storage: str, fmt: str) -> list[LayerStorage]:
    """Rewrite the prunable weight initializers of an exported model in place."""
    g = model.graph
    by_name = {init.name: init for init in g.initializer}
    missing = [n for n in prunable if n not in by_name]
    if missing:
        raise ValueError(f"exported graph lacks initializers {missing}")
    layers = []
    new_nodes, new_inits = [], []
    for name in prunable:
        init = by_name[name]
        w = numpy_helper.to_array(init).astype(np.float32)
        g.initializer.remove(init)
        if storage == "dense" and fmt == "fp32":
            g.initializer.append(numpy_helper.from_array(w, name))
            nnz = int(np.count_nonzero(w))
            layers.append(LayerStorage(name, list(w.shape), w.size, nnz, "dense", w.size * 4, 0,
                                       entropy_floor_bits(w.size, nnz) / 8))
        elif storage == "sparse-initializer":
            flat = dequantize(w, fmt).reshape(-1)  # ONNX sparse tensors hold float values here
            pos = np.flatnonzero(flat)
            values = numpy_helper.from_array(flat[pos].astype(np.float32), name)
            indices = numpy_helper.from_array(pos.astype(np.int64), f"{name}__indices")
            g.sparse_initializer.append(helper.make_sparse_tensor(values, indices, list(w.shape)))
            layers.append(LayerStorage(name, list(w.shape), w.size, int(pos.size), "coo", pos.size * 4,
                                       pos.size * 8, entropy_floor_bits(w.size, int(pos.size)) / 8))
        else:
            layers.append(encode_weight(name, w, fmt, new_nodes, new_inits))
    g.initializer.extend(new_inits)
    # decode nodes go first: they only read initializers
    old = list(g.node)
    del g.node[:]
    g.node.extend(new_nodes + old)
    return layers


def storage_summary(layers: list[LayerStorage]) -> dict:
    stored = sum(l.stored_bytes for l in layers)
    floor = sum(l.floor_bytes for l in layers)
    numel = sum(l.numel for l in layers)
    nnz = sum(l.nnz for l in layers)
    return {"layers": [l.as_dict() for l in layers], "prunable_numel": numel, "prunable_nnz": nnz,
            "sparsity": 1 - nnz / numel if numel else 0.0, "stored_bytes": stored,
            "dense_fp32_bytes": numel * 4, "entropy_floor_bytes": round(floor, 1),
            "decode_transient_bytes": sum(l.decode_transient_bytes for l in layers),
            "ratio_to_floor": round(stored / floor, 4) if floor else None}
