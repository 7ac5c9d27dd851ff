"""A minimal ONNX model writer for the calibration microbenchmarks (single Conv / MatMul / Add-chain graphs),
so calibrating a board needs onnxruntime but not the `onnx` package. It encodes the few protobuf fields such a
graph uses (onnx.proto: ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto);
tests/test_device_runtime.py checks its output against the onnx package's parser and checker."""

from __future__ import annotations

import numpy as np

IR_VERSION = 7  # the IR of opset 13
FLOAT = 1  # TensorProto.FLOAT
INTS = 7  # AttributeProto.INTS


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _int(field: int, n: int) -> bytes:
    return _varint(field << 3) + _varint(n)


def _bytes(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _str(field: int, s: str) -> bytes:
    return _bytes(field, s.encode())


def node(op_type: str, inputs: list[str], outputs: list[str], **ints_attrs: list[int]) -> bytes:
    """A NodeProto; keyword arguments are INTS attributes (e.g. pads=[1, 1, 1, 1])."""
    attrs = b"".join(_bytes(5, _str(1, k) + b"".join(_int(8, v) for v in vals) + _int(20, INTS))
                     for k, vals in ints_attrs.items())
    return b"".join(_str(1, i) for i in inputs) + b"".join(_str(2, o) for o in outputs) + _str(4, op_type) + attrs


def value_info(name: str, shape: list[int]) -> bytes:
    dims = b"".join(_bytes(1, _int(1, d)) for d in shape)
    tensor_type = _int(1, FLOAT) + _bytes(2, dims)
    return _str(1, name) + _bytes(2, _bytes(1, tensor_type))


def initializer(name: str, array: np.ndarray) -> bytes:
    a = np.ascontiguousarray(array, dtype="<f4")
    return b"".join(_int(1, d) for d in a.shape) + _int(2, FLOAT) + _str(8, name) + _bytes(9, a.tobytes())


def model(nodes: list[bytes], inputs: list[bytes], outputs: list[bytes], inits: list[bytes],
          opset: int = 13) -> bytes:
    """A serialized ModelProto of one graph (float32 tensors only)."""
    graph = (b"".join(_bytes(1, n) for n in nodes) + _str(2, "bench") + b"".join(_bytes(5, t) for t in inits)
             + b"".join(_bytes(11, v) for v in inputs) + b"".join(_bytes(12, v) for v in outputs))
    return (_int(1, IR_VERSION) + _str(2, "edgeticket") + _bytes(7, graph)
            + _bytes(8, _str(1, "") + _int(2, opset)))
