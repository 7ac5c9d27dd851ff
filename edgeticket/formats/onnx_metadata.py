"""The self-description compile writes into a bundle's ONNX graphs (model.onnx, tensorrt/model.onnx): ONNX
`metadata_props` (string -> string; structured values are JSON) under the `edgeticket.` prefix, plus a one-paragraph
`doc_string`. docs/bundle-format.md "ONNX metadata" lists the keys.

Reading needs neither the onnx package nor an onnxruntime session: `read` walks the top-level fields of the
ModelProto in the file and skips the graph (weights included) by its length, so it is as cheap on a board for a
VGG16 as for the tiny net. onnxruntime's `InferenceSession(path).get_modelmeta().custom_metadata_map` and
`onnx.load(path).metadata_props` read the same pairs.
"""

from __future__ import annotations

import json
from pathlib import Path

PREFIX = "edgeticket."
FORMAT_VERSION = 1  # of this key set; `edgeticket.metadata_version`

METADATA_VERSION = PREFIX + "metadata_version"
VERSION = PREFIX + "version"
BUNDLE_ID = PREFIX + "bundle_id"
TICKET_ID = PREFIX + "ticket_id"
TICKET = PREFIX + "ticket"
SPARSITY = PREFIX + "sparsity"
ARCH = PREFIX + "arch"
DATASET = PREFIX + "dataset"
NUM_CLASSES = PREFIX + "num_classes"
CLASS_NAMES = PREFIX + "class_names"
TIMESTEPS = PREFIX + "timesteps"
LAYOUT = PREFIX + "layout"
TARGET = PREFIX + "target"
INPUT_NAME = PREFIX + "input_name"
INPUT_SHAPE = PREFIX + "input_shape"
INPUT_LAYOUT = PREFIX + "input_layout"
NORMALIZATION = PREFIX + "normalization"
WEIGHT_FORMAT = PREFIX + "weight_format"
WEIGHT_STORAGE = PREFIX + "weight_storage"
OUTPUTS = PREFIX + "outputs"
LIF = PREFIX + "lif"
GRAPH = PREFIX + "graph"

# values that are JSON documents (the others are plain strings; numbers are their JSON spelling)
JSON_KEYS = (TICKET, SPARSITY, NUM_CLASSES, CLASS_NAMES, TIMESTEPS, INPUT_SHAPE, NORMALIZATION, OUTPUTS, LIF,
             METADATA_VERSION)

# ModelProto field numbers (onnx.proto) and protobuf wire types
_DOC_STRING, _METADATA_PROPS = 6, 14
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class _Reader:
    def __init__(self, f):
        self.f = f

    def varint(self) -> int | None:
        shift = result = 0
        while True:
            b = self.f.read(1)
            if not b:
                if shift:
                    raise ValueError("truncated varint")
                return None  # clean end of file
            result |= (b[0] & 0x7F) << shift
            if not b[0] & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def exact(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise ValueError("truncated field")
        return data


def _fields(f, wanted: set[int]):
    """(field number, bytes) of the length-delimited fields numbered in `wanted` of the protobuf message in the
    seekable file `f`; every other field is skipped without being read (a model's graph and weights)."""
    r = _Reader(f)
    while True:
        tag = r.varint()
        if tag is None:
            return
        num, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            r.varint()
        elif wire in (_I64, _I32):
            r.exact(8 if wire == _I64 else 4)
        elif wire == _LEN:
            n = r.varint()
            if n is None:
                raise ValueError("truncated field")
            if num in wanted:
                yield num, r.exact(n)
            else:
                f.seek(n, 1)
        else:
            raise ValueError(f"unsupported wire type {wire} (field {num})")


def read_model_info(path: str | Path) -> tuple[dict[str, str], str]:
    """(metadata_props as a dict, doc_string) of an ONNX file; ValueError when it is not a ModelProto."""
    import io

    props: dict[str, str] = {}
    doc = ""
    with open(path, "rb") as f:
        for num, data in _fields(f, {_METADATA_PROPS, _DOC_STRING}):
            if num == _DOC_STRING:
                doc = data.decode("utf-8")
            else:  # a StringStringEntryProto: key = 1, value = 2
                entry = dict(_fields(io.BytesIO(data), {1, 2}))
                props[entry.get(1, b"").decode("utf-8")] = entry.get(2, b"").decode("utf-8")
    return props, doc


def read(path: str | Path) -> dict[str, str]:
    """The metadata_props of an ONNX file (empty for a bundle compiled before they were written)."""
    from ..errors import EdgeTicketError

    try:
        return read_model_info(path)[0]
    except OSError as e:
        raise EdgeTicketError(f"{path}: cannot be read ({e.strerror})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise EdgeTicketError(f"{path} is not a readable ONNX model ({e}); copy the bundle again or re-compile") \
            from None


def decode(props: dict[str, str]) -> dict:
    """The edgeticket keys without their prefix, JSON values parsed (for notebooks and scripts)."""
    out = {}
    for k, v in props.items():
        if not k.startswith(PREFIX):
            continue
        out[k[len(PREFIX):]] = json.loads(v) if k in JSON_KEYS else v
    return out
