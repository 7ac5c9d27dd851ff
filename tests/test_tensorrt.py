"""Every bundle for a TensorRT target (Jetson) carries a graph TensorRT's ONNX parser takes: each operator in
onnx-tensorrt's support table of the target's TensorRT version (tests/data/onnx_tensorrt_ops.toml, copied from
onnx/onnx-tensorrt docs/operators.md: see its header), tensor types TensorRT has, the opset within the parser's
range, and the constant inputs the table's restrictions ask for. Checked for every layout, weight format and
storage; the graph reproduces model.onnx's spikes."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto

from edgeticket import api
from edgeticket.compile import tensorrt
from edgeticket.compile.build import CompileSettings, _build
from edgeticket.compile.deploy import LAYOUTS, to_deploy
from edgeticket.compile.onnx_export import DEFAULT_OPSET
from edgeticket.device.targets import load_all
from edgeticket.device.views import describe
from edgeticket.formats import names

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

TABLE = tomllib.loads((Path(__file__).parent / "data" / "onnx_tensorrt_ops.toml").read_text())["trt"]
ONNX_TO_TRT_TYPE = {"FLOAT": "FLOAT32", "FLOAT16": "FLOAT16", "DOUBLE": "DOUBLE", "INT8": "INT8", "BOOL": "BOOL",
                    "INT32": "INT32", "INT64": "INT64", "UINT8": "UINT8"}
# weight formats x storages compile accepts (dense stores fp32 only)
WEIGHTS = [("fp32", "packed"), ("fp16", "packed"), ("int8", "packed"), ("fp32", "sparse-initializer"),
           ("int8", "sparse-initializer"), ("fp32", "dense")]
# inputs that the table's restrictions say must be constant: op -> input positions
CONSTANT_INPUTS = {"Conv": (1,), "Slice": (1, 2, 3, 4), "Unsqueeze": (1,), "Squeeze": (1,), "CumSum": (1,)}


def tensorrt_targets():
    return [t for t in load_all() if tensorrt.wanted(t)]


def problems(model: onnx.ModelProto, version: str) -> list[str]:
    """What TensorRT `version`'s ONNX parser would refuse in `model`, per onnx-tensorrt's table."""
    table = TABLE[version]
    ok_types = set(table["types"]) | set(table["limited_types"])
    out = []
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset > table["max_opset"]:
        out.append(f"opset {opset} > {table['max_opset']}")
    if len(model.graph.sparse_initializer):
        out.append("sparse_initializer")
    constants = {i.name for i in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    types = [(f"initializer {i.name}", i.data_type) for i in model.graph.initializer]
    for n in model.graph.node:
        if n.op_type not in table["supported"]:
            out.append(f"operator {n.op_type} ({n.name})")
        for a in n.attribute:
            if n.op_type == "Cast" and a.name == "to":
                types.append((f"Cast {n.name}", a.i))
            if n.op_type == "Constant" and a.name == "value":
                types.append((f"Constant {n.name}", a.t.data_type))
        for pos in CONSTANT_INPUTS.get(n.op_type, ()):
            if pos < len(n.input) and n.input[pos] and n.input[pos] not in constants:
                out.append(f"{n.op_type} {n.name} input {pos} is not a constant")
    for io in list(model.graph.input) + list(model.graph.output):
        types.append((f"graph tensor {io.name}", io.type.tensor_type.elem_type))
    for what, t in types:
        name = ONNX_TO_TRT_TYPE.get(TensorProto.DataType.Name(t), TensorProto.DataType.Name(t))
        if name not in ok_types:
            out.append(f"{what} has type {name}")
    return out


def test_the_table_covers_every_tensorrt_target():
    targets = tensorrt_targets()
    assert {t.name for t in targets} >= {"jetson-nano", "jetson-orin-nano"}
    for t in targets:
        assert t.tensorrt_version in TABLE, (t.name, t.tensorrt_version)
        assert t.max_opset <= TABLE[t.tensorrt_version]["max_opset"], t.name
    assert "BitShift" in TABLE["8.2"]["unsupported"] and "Conv" in TABLE["8.2"]["supported"]


@pytest.fixture(scope="module")
def ticket_net(ticket):
    from edgeticket.compile.ticket_source import load

    model, mask, info = load(Path(ticket), verify=True)
    return model, list(mask), info


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_and_weight_format_parses_in_the_targets_tensorrt(ticket_net, layout):
    model, prunable, info = ticket_net
    for target in tensorrt_targets():
        opset = min(DEFAULT_OPSET, target.max_opset)
        for fmt, storage in WEIGHTS:
            settings = CompileSettings(layout=layout, weights=fmt, storage=storage)
            proto, _ = _build(to_deploy(model, tuple(info["dataset"]["input_shape"])), layout, info, prunable, settings, opset)
            packed = problems(proto, target.tensorrt_version)
            folded = onnx.load_from_string(tensorrt.fold_weights(proto.SerializeToString()))
            assert problems(folded, target.tensorrt_version) == [], (target.name, layout, fmt, storage)
            if storage == "packed":  # the check sees what TensorRT would refuse in model.onnx itself
                assert any("BitShift" in p or "UINT8" in p for p in packed), (target.name, fmt, packed)


def test_a_jetson_bundle_carries_its_tensorrt_graph_spike_exact(ticket, tmp_path):
    m = api.compile_ticket(ticket, "jetson-nano", out=tmp_path, name="jn", backend="onnxruntime", validation_n=16,
                           log=lambda s: None)
    b = Path(m["bundle_dir"])
    assert names.TENSORRT_MODEL in m["files"] and (b / names.TENSORRT_MODEL).is_file()
    trt = m["tensorrt"]
    assert trt["validation"]["spikes_equal"] and trt["validation"]["logits_max_abs_diff"] < 1e-4
    assert "BitShift" not in trt["op_types"] and "BitShift" in onnx_ops(b / names.MODEL)
    assert problems(onnx.load(str(b / names.TENSORRT_MODEL)), "8.2") == []
    assert "tensorrt   tensorrt/model.onnx" in describe(json.loads((b / names.MANIFEST).read_text()))
    host = api.compile_ticket(ticket, "host", out=tmp_path, name="h", backend="onnxruntime", validation_n=16,
                              log=lambda s: None)
    assert "tensorrt" not in host and names.TENSORRT_MODEL not in host["files"]  # only for TensorRT targets


def onnx_ops(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}
