"""model.onnx describes itself: edgeticket.* metadata_props and a doc_string (formats/onnx_metadata.py), read
back by onnxruntime, by onnx and by edgeticket's own torch-free reader, and shown by `edgeticket inspect`."""

import json
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner

import edgeticket
from edgeticket import api, store
from edgeticket.cli import main
from edgeticket.data.classes import CIFAR100, class_names
from edgeticket.errors import EdgeTicketError
from edgeticket.formats import names
from edgeticket.formats import onnx_metadata as K

QUIET = dict(log=lambda s: None, backend="onnxruntime", validation_n=16)


def three_ways(path: Path) -> dict:
    """metadata_props as onnxruntime, onnx and edgeticket's reader see them (all three must agree)."""
    via_ort = dict(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                   .get_modelmeta().custom_metadata_map)
    via_onnx = {e.key: e.value for e in onnx.load(str(path)).metadata_props}
    ours = K.read(path)
    assert via_ort == via_onnx == ours
    return ours


@pytest.fixture(scope="module")
def host_bundle(ticket, tmp_path_factory):
    return api.compile_ticket(ticket, "host", out=tmp_path_factory.mktemp("bundles"), layout="time-folded", **QUIET)


def test_model_onnx_carries_every_key(ticket, host_bundle):
    info = json.loads((ticket / names.TICKET_JSON).read_text())
    path = Path(host_bundle["bundle_dir"]) / names.MODEL
    p = three_ways(path)
    d = K.decode(p)
    assert d["metadata_version"] == 1 and d["version"] == edgeticket.__version__
    assert d["ticket_id"] == store.sha256_file(ticket / names.TICKET_JSON) == \
        host_bundle["source_ticket"]["ticket_json_sha256"]
    assert d["bundle_id"] == host_bundle["id"]
    assert d["ticket"] == {"run": info["run"], "level": 2, "branch": info["branch"]}
    assert d["sparsity"] == info["sparsity"]["global"] and 0 < d["sparsity"] < 1  # a fraction
    assert d["arch"] == "tiny" and d["dataset"] == "digits" and d["num_classes"] == 10
    assert d["timesteps"] == 4 == host_bundle["timesteps"]
    assert d["layout"] == "time-folded" and d["target"] == "host"
    assert d["input_name"] == "input" and d["input_shape"] == ["batch", 1, 8, 8] and d["input_layout"] == "NCHW"
    assert d["normalization"]["mean"] == info["dataset"]["mean"] == host_bundle["input"]["mean"]
    assert d["normalization"]["std"] == info["dataset"]["std"] and "[0, 1]" in d["normalization"]["note"]
    assert d["class_names"] == [str(i) for i in range(10)]
    assert d["weight_format"] == "fp32" and d["weight_storage"] == "packed"
    assert set(d["outputs"]) == {"logits", "spikes__<layer>", "events__<layer>"}
    assert d["lif"]["tau"] == pytest.approx(4 / 3) and d["lif"]["v_threshold"] == 1.0
    assert d["graph"] == names.MODEL
    assert all(k.startswith("edgeticket.") and isinstance(v, str) for k, v in p.items())
    # the metadata is in the bytes manifest.files hashes and the bundle was validated with
    assert host_bundle["files"][names.MODEL] == store.sha256_file(path)
    doc = K.read_model_info(path)[1]
    assert doc == onnx.load(str(path)).doc_string and host_bundle["id"] in doc
    assert "digits" in doc and "One call runs all 4 timesteps" in doc
    assert onnx.load(str(path)).producer_version == edgeticket.__version__


def test_streaming_int8_metadata(ticket, tmp_path):
    m = api.compile_ticket(ticket, "rpi4", out=tmp_path, layout="streaming", weights="int8", **QUIET)
    d = K.decode(three_ways(Path(m["bundle_dir"]) / names.MODEL))
    assert d["layout"] == "streaming" and d["weight_format"] == "int8" and d["target"] == "rpi4"
    assert "v_out__<layer>" in d["outputs"] and "sum" in d["outputs"]["logits"]
    assert d["bundle_id"] == m["id"]


def test_inspect_prints_the_metadata(host_bundle):
    b = host_bundle["bundle_dir"]
    r = CliRunner().invoke(main, ["inspect", b])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "onnx meta  model.onnx metadata_props" in out
    for key in ("edgeticket.version", "edgeticket.ticket_id", "edgeticket.sparsity", "edgeticket.timesteps",
                "edgeticket.layout", "edgeticket.input_shape", "edgeticket.input_layout", "edgeticket.normalization",
                "edgeticket.class_names", "edgeticket.weight_format"):
        assert key in out, key
    assert "0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in out and "mean [" in out
    r = CliRunner().invoke(main, ["inspect", b, "--json"])
    assert r.exit_code == 0, r.output
    js = json.loads(r.stdout)
    assert js["onnx_metadata"] == K.read(Path(b) / names.MODEL)
    assert json.loads(js["onnx_metadata"]["edgeticket.class_names"]) == [str(i) for i in range(10)]


def test_inspect_of_a_bundle_without_metadata_says_so(host_bundle, tmp_path):
    from edgeticket.device.views import describe

    m = api.inspect(host_bundle["bundle_dir"])
    assert "edgeticket.layout" in describe(m)
    m["onnx_metadata"] = {}
    assert "no metadata_props" in describe(m) and "re-compile" in describe(m)
    bare = tmp_path / "bare.onnx"
    model = onnx.load(str(Path(host_bundle["bundle_dir"]) / names.MODEL))
    del model.metadata_props[:]
    model.doc_string = ""
    onnx.save(model, str(bare))
    assert K.read(bare) == {} and K.read_model_info(bare) == ({}, "")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x0f\xff\xff")
    with pytest.raises(EdgeTicketError, match="not a readable ONNX model"):
        K.read(junk)


def test_tensorrt_graph_carries_the_metadata(ticket, tmp_path):
    m = api.compile_ticket(ticket, "jetson-nano", out=tmp_path, name="jn", **QUIET)
    b = Path(m["bundle_dir"])
    main_p = three_ways(b / names.MODEL)
    trt_p = three_ways(b / names.TENSORRT_MODEL)
    assert K.decode(trt_p)["graph"] == names.TENSORRT_MODEL and K.decode(trt_p)["weight_storage"] == "dense"
    same = {k for k in main_p if k not in (K.GRAPH, K.WEIGHT_STORAGE)}
    assert {k: trt_p[k] for k in same} == {k: main_p[k] for k in same}
    assert K.decode(main_p)["target"] == "jetson-nano"
    assert "tensorrt/model.onnx" in K.read_model_info(b / names.TENSORRT_MODEL)[1]


def test_class_names_per_dataset(tmp_path):
    assert class_names("digits", 10) == class_names("mnist", 10) == class_names("svhn", 10) == list("0123456789")
    assert class_names("fashion-mnist", 10)[0] == "T-shirt/top" and class_names("fashion-mnist", 10)[9] == "Ankle boot"
    assert class_names("cifar10", 10)[:2] == ["airplane", "automobile"]
    # CIFAR-100's fine labels: its meta file lists them alphabetically, label i is the i-th
    assert len(CIFAR100) == 100 == len(set(CIFAR100)) and CIFAR100 == sorted(CIFAR100)
    assert class_names("cifar100", 100) == CIFAR100
    assert class_names("npz", 3) is None and class_names("digits", 7) is None  # no names / a count that differs
    assert class_names("tiny-imagenet", 2, None) is None
    root = tmp_path / "tiny-imagenet-200"
    root.mkdir()
    (root / "wnids.txt").write_text("n02124075\nn04067472\n")
    assert class_names("tiny-imagenet", 2, str(tmp_path)) == ["n02124075", "n04067472"]
