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

# ModelProto field numbers (onnx.proto)
_DOC_STRING, _METADATA_PROPS = 6, 14


def read_model_info(path: str | Path) -> tuple[dict[str, str], str]:
    """(metadata_props as a dict, doc_string) of an ONNX file; ValueError when it is not a ModelProto."""
    import os

    from .protobuf import fields, message_fields

    props: dict[str, str] = {}
    doc = ""
    with open(path, "rb") as f:
        for num, data in fields(f, 0, os.fstat(f.fileno()).st_size, read={_METADATA_PROPS, _DOC_STRING}):
            if num == _DOC_STRING:
                doc = data.decode("utf-8")
            else:  # a StringStringEntryProto: key = 1, value = 2
                entry = dict(message_fields(data, read={1, 2}))
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
