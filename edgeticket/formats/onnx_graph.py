"""The inputs and outputs of an ONNX file's graph (names, element types, dimensions), read without the onnx
package or an onnxruntime session: a protobuf field walker like formats/onnx_metadata.py's that seeks past
every field it does not need (nodes, initializers: a model's weights), so it is as cheap on a board for a VGG16
as for the tiny net. `formats.bundle.check_graph` compares them with a bundle's manifest before any runner
starts.

onnx.proto fields read: ModelProto.graph = 7; GraphProto.input = 11, .output = 12; ValueInfoProto.name = 1,
.type = 2; TypeProto.tensor_type = 1; TypeProto.Tensor.elem_type = 1, .shape = 2; TensorShapeProto.dim = 1;
Dimension.dim_value = 1, .dim_param = 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

FLOAT = 1  # TensorProto.FLOAT

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_GRAPH = 7
_INPUT, _OUTPUT = 11, 12
Dim = Union[int, str, None]  # a static size, a symbolic name (e.g. "batch"), or unknown


@dataclass
class Value:
    name: str = ""
    elem_type: int = 0  # TensorProto.DataType; 0: not a tensor / not said
    dims: Optional[list] = None  # list of Dim; None: no shape given

    def static(self, i: int) -> Optional[int]:
        """Dimension i where the graph fixes it, else None."""
        if self.dims is None or i >= len(self.dims):
            return None
        d = self.dims[i]
        return d if isinstance(d, int) else None


@dataclass
class Signature:
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)

    def input_names(self) -> list:
        return [v.name for v in self.inputs]

    def output_names(self) -> list:
        return [v.name for v in self.outputs]


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= end:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message held in memory: value is an int (varint) or the
    field's bytes (length-delimited)."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        num, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            v, pos = _varint(buf, pos, end)
            yield num, wire, v
        elif wire in (_I64, _I32):
            pos += 8 if wire == _I64 else 4
            if pos > end:
                raise ValueError("truncated field")
        elif wire == _LEN:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise ValueError("truncated field")
            yield num, wire, buf[pos:pos + n]
            pos += n
        else:
            raise ValueError(f"unsupported wire type {wire} (field {num})")


class _File:
    """Walks the length-delimited fields of a message stored in [start, end) of a seekable file, reading only
    the fields asked for and seeking past the rest."""

    def __init__(self, f, size: int):
        self.f, self.size = f, size

    def varint(self, end: int) -> int:
        shift = result = 0
        while True:
            if self.f.tell() >= end:
                raise ValueError("truncated varint")
            b = self.f.read(1)
            if not b:
                raise ValueError("truncated varint")
            result |= (b[0] & 0x7F) << shift
            if not b[0] & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def fields(self, start: int, end: int, read: set, span: set = frozenset()):
        """(field number, bytes) for the numbers in `read`; (field number, (offset, length)) for those in `span`
        (a nested message to walk in turn without reading it whole)."""
        self.f.seek(start)
        while self.f.tell() < end:
            tag = self.varint(end)
            num, wire = tag >> 3, tag & 7
            if wire == _VARINT:
                self.varint(end)
            elif wire in (_I64, _I32):
                self.f.seek(8 if wire == _I64 else 4, 1)
            elif wire == _LEN:
                n = self.varint(end)
                at = self.f.tell()
                if at + n > end:
                    raise ValueError("truncated field")
                if num in read:
                    data = self.f.read(n)
                    if len(data) != n:
                        raise ValueError("truncated field")
                    yield num, data
                elif num in span:
                    yield num, (at, n)
                    self.f.seek(at + n)
                else:
                    self.f.seek(n, 1)
            else:
                raise ValueError(f"unsupported wire type {wire} (field {num})")
            if self.f.tell() > end:
                raise ValueError("truncated field")


def _value(data: bytes) -> Value:
    v = Value()
    for num, wire, x in _fields(data):
        if num == 1 and wire == _LEN:
            v.name = x.decode("utf-8")
        elif num == 2 and wire == _LEN:  # TypeProto
            for tnum, twire, t in _fields(x):
                if tnum != 1 or twire != _LEN:  # not a tensor type (sequence, map, ...)
                    continue
                for knum, kwire, k in _fields(t):
                    if knum == 1 and kwire == _VARINT:
                        v.elem_type = k
                    elif knum == 2 and kwire == _LEN:  # TensorShapeProto
                        dims = []
                        for dnum, dwire, d in _fields(k):
                            if dnum != 1 or dwire != _LEN:
                                continue
                            dim: Dim = None
                            for anum, awire, a in _fields(d):
                                if anum == 1 and awire == _VARINT:
                                    dim = a if a < 1 << 63 else a - (1 << 64)  # int64
                                elif anum == 2 and awire == _LEN:
                                    dim = a.decode("utf-8")
                            dims.append(dim)
                        v.dims = dims
    return v


def read_signature(path: Union[str, Path]) -> Signature:
    """The graph inputs and outputs of an ONNX file; ValueError when it is not a readable ModelProto, OSError
    when it cannot be read."""
    sig = Signature()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        w = _File(f, size)
        graphs = [span for _, span in w.fields(0, size, set(), {_GRAPH})]
        if not graphs:
            raise ValueError("no graph")
        for at, n in graphs:  # a message repeated is merged: its repeated fields concatenate
            for num, data in w.fields(at, at + n, {_INPUT, _OUTPUT}):
                (sig.inputs if num == _INPUT else sig.outputs).append(_value(data))
    return sig
