"""The one protobuf field walker of the torch-free ONNX readers (formats/onnx_metadata.py, formats/onnx_graph.py):
it reads only the fields asked for and seeks past the rest, so a model's weights are never read. Standard library
only: the device install has no `onnx` package."""

from __future__ import annotations

import io

VARINT, I64, LEN, I32 = 0, 1, 2, 5  # protobuf wire types


def _varint(f, end: int) -> int:
    shift = result = 0
    while True:
        if f.tell() >= end:
            raise ValueError("truncated varint")
        b = f.read(1)
        if not b:
            raise ValueError("truncated varint")
        result |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(f, start: int, end: int, read=frozenset(), span=frozenset(), varints=frozenset()):
    """(field number, value) of the message in [start, end) of the seekable file `f`: the bytes of the
    length-delimited fields numbered in `read`, (offset, length) of those in `span` (a nested message to walk in
    turn without reading it whole), the integer of the varint fields in `varints`; every other field is skipped.
    ValueError for a truncated or malformed message."""
    f.seek(start)
    while f.tell() < end:
        tag = _varint(f, end)
        num, wire = tag >> 3, tag & 7
        if wire == VARINT:
            value = _varint(f, end)
            if num in varints:
                yield num, value
        elif wire in (I64, I32):
            f.seek(8 if wire == I64 else 4, 1)
        elif wire == LEN:
            n = _varint(f, end)
            at = f.tell()
            if at + n > end:
                raise ValueError("truncated field")
            if num in read:
                data = f.read(n)
                if len(data) != n:
                    raise ValueError("truncated field")
                yield num, data
            elif num in span:
                yield num, (at, n)
                f.seek(at + n)
            else:
                f.seek(n, 1)
        else:
            raise ValueError(f"unsupported wire type {wire} (field {num})")
        if f.tell() > end:
            raise ValueError("truncated field")


def message_fields(data: bytes, read=frozenset(), varints=frozenset()):
    """`fields` of a message held in memory."""
    return fields(io.BytesIO(data), 0, len(data), read=read, varints=varints)
