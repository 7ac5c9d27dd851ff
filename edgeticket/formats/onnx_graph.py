"""The inputs and outputs of an ONNX file's graph (names, element types, dimensions), read without the onnx
package or an onnxruntime session, through the protobuf walker formats/onnx_metadata.py uses too
(formats/protobuf.py), which seeks past every field it does not need (nodes, initializers: a model's weights), so it is as cheap on a board for a VGG16
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

from .protobuf import fields, message_fields

FLOAT = 1  # TensorProto.FLOAT

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


def _value(data: bytes) -> Value:
    """A ValueInfoProto: name = 1, type = 2 (TypeProto: tensor_type = 1 (elem_type = 1, shape = 2
    (TensorShapeProto: dim = 1 (dim_value = 1, dim_param = 2))))."""
    v = Value()
    for num, x in message_fields(data, read={1, 2}):
        if num == 1:
            v.name = x.decode("utf-8")
            continue
        for _, t in message_fields(x, read={1}):  # only a tensor type (not a sequence, map, ...)
            for knum, k in message_fields(t, read={2}, varints={1}):
                if knum == 1:
                    v.elem_type = k
                    continue
                dims = []
                for _, d in message_fields(k, read={1}):
                    dim: Dim = None
                    for anum, a in message_fields(d, read={2}, varints={1}):
                        dim = (a if a < 1 << 63 else a - (1 << 64)) if anum == 1 else a.decode("utf-8")  # int64
                    dims.append(dim)
                v.dims = dims
    return v


def read_signature(path: Union[str, Path]) -> Signature:
    """The graph inputs and outputs of an ONNX file; ValueError when it is not a readable ModelProto, OSError
    when it cannot be read."""
    sig = Signature()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        graphs = [at_n for _, at_n in fields(f, 0, size, span={_GRAPH})]
        if not graphs:
            raise ValueError("no graph")
        for at, n in graphs:  # a message repeated is merged: its repeated fields concatenate
            for num, data in fields(f, at, at + n, read={_INPUT, _OUTPUT}):
                (sig.inputs if num == _INPUT else sig.outputs).append(_value(data))
    return sig
