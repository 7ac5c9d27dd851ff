import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import helper

from edgeticket import api
from edgeticket.device.runners import open_runner
from edgeticket.formats import bundle
from edgeticket.formats import names
from edgeticket.cli import main
from edgeticket.compile.packing import apply_storage, entropy_floor_bits, storage_summary
from edgeticket.device.targets import PACKAGED as PACKAGED_TARGETS
from edgeticket.errors import EdgeTicketError
from edgeticket.device.runners.onnx_runner import make_session

from conftest import tiny_cfg


@pytest.mark.parametrize("layout", ["time-folded", "streaming"])
@pytest.mark.parametrize("weights", ["fp32", "fp16", "int8"])
def test_compile_validates_every_layout_and_weight_format(ticket, tmp_path, layout, weights):
    m = api.compile_ticket(ticket, "rpi4", out=tmp_path, layout=layout, weights=weights, validation_n=32, log=lambda s: None)
    v = m["validation"]
    assert v["passed"] and v["spikes_equal"] and v["total_spikes"] > 0
    assert v["inputs"] == 32 and v["logits_max_abs_diff"] <= 1e-4 * v["logits_scale"]
    assert m["layout"] == layout and m["weights"]["format"] == weights
    if weights != "fp32":
        assert v["quantization"]["passed"]
    d = Path(m["bundle_dir"])
    ev = m["backends"]["event"]  # auto: the event backend is built for the tiny VGG, fp16/int8 included
    assert ev["built"] and (ev["library"] or "make cross-tools" in ev["library_note"])
    tv = m["backends"]["tvm"]  # auto: built where apache-tvm and the cross compiler are there, else a reason
    assert tv["built"] or tv["reason"]
    assert {p.name for p in d.iterdir()} == {"manifest.json", "model.onnx", "validation.npz", "event"} | \
        ({"tvm"} if tv["built"] else set())
    man = bundle.load(d)  # sha256s verified
    assert man["timesteps"] == 4 and man["memory_plan"]["fits"]
    layer_nnz = {l["name"]: l["nnz"] for l in man["weights"]["layers"]}
    info = json.loads((ticket / names.TICKET_JSON).read_text())
    assert sum(layer_nnz.values()) <= info["nnz"]  # folded weights keep the mask


def test_streaming_and_time_folded_bundles_agree(ticket, tmp_path):
    a = api.compile_ticket(ticket, "host", out=tmp_path, layout="time-folded", log=lambda s: None)
    b = api.compile_ticket(ticket, "host", out=tmp_path, layout="streaming", log=lambda s: None)
    x, _ = bundle.validation_samples(a["bundle_dir"])
    la, ca = open_runner(a["bundle_dir"], a).run(x)
    lb, cb = open_runner(b["bundle_dir"], b).run(x)
    assert np.allclose(la, lb, atol=1e-5)
    assert all(np.array_equal(ca[k], cb[k]) for k in ca)
    assert b["memory_plan"]["state_bytes"] > 0 and a["memory_plan"]["state_bytes"] == 0


def test_bundle_loads_and_runs_without_torch(ticket, tmp_path):
    m = api.compile_ticket(ticket, "rpi4", out=tmp_path, log=lambda s: None)
    code = ("import sys; sys.modules['torch'] = None\n"  # any torch import would fail
            "from edgeticket.formats import bundle\nfrom edgeticket.device.runners import open_runner\n"
            f"d = {m['bundle_dir']!r}\n"
            "man = bundle.load(d); x, y = bundle.validation_samples(d)\n"
            "logits, counts = open_runner(d, man).run(x)\n"
            "print(logits.shape, len(counts))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "(64, 10)" in p.stdout


def test_jetson_nano_gets_its_tensorrt_opset(ticket, tmp_path):
    m = api.compile_ticket(ticket, "jetson-nano", out=tmp_path, log=lambda s: None)
    model = onnx.load(Path(m["bundle_dir"]) / "model.onnx")
    assert m["opset"] == 13 and model.opset_import[0].version == 13


def budget_target(tmp_path, budget):
    src = PACKAGED_TARGETS / "rpi4.toml"
    text = src.read_text().replace('name = "rpi4"', 'name = "small"')
    text = text.replace("model_budget_bytes = 1073741824", f"model_budget_bytes = {budget}")
    p = tmp_path / "small.toml"
    p.write_text(text)
    return p


def test_over_budget_is_refused_with_numbers_and_forced_with_a_warning(ticket, tmp_path):
    tgt = budget_target(tmp_path, 1_000_000)  # 1 MB: the runtime alone exceeds it
    with pytest.raises(EdgeTicketError, match=r"does not fit small's model budget: plan .* MiB .* > budget 1.0 MiB"):
        api.compile_ticket(ticket, str(tgt), out=tmp_path / "b", log=lambda s: None)
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    m = api.compile_ticket(ticket, str(tgt), out=tmp_path / "b", force=True, log=lambda s: None)
    assert m["budget_check"]["forced"] and m["warnings"]


def test_refusal_names_what_would_fit(ticket, tmp_path):
    # a budget between the streaming and the time-folded plans at batch 256, planned for the same target file
    roomy = budget_target(tmp_path, 2**32)
    a = api.compile_ticket(ticket, str(roomy), out=tmp_path, layout="time-folded", batch=256, log=lambda s: None)
    b = api.compile_ticket(ticket, str(roomy), out=tmp_path, layout="streaming", batch=256, log=lambda s: None)
    lo, hi = b["memory_plan"]["total_bytes"], a["memory_plan"]["total_bytes"]
    assert lo < hi
    tgt = budget_target(tmp_path, (lo + hi) // 2)
    with pytest.raises(EdgeTicketError, match="would fit: --layout streaming --weights fp32"):
        api.compile_ticket(ticket, str(tgt), out=tmp_path, layout="time-folded", batch=256, log=lambda s: None)
    auto = api.compile_ticket(ticket, str(tgt), out=tmp_path, batch=256, log=lambda s: None)
    assert auto["layout"] == "streaming"  # auto picks the layout whose plan fits


def test_corrupted_ticket_files_are_named(ticket, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(ticket, bad)
    data = (bad / names.TRAINED).read_bytes()
    (bad / names.TRAINED).write_bytes(data[:-10])
    with pytest.raises(EdgeTicketError, match="trained.safetensors .*does not match its recorded sha256"):
        api.compile_ticket(bad, "rpi4", out=tmp_path, log=lambda s: None)
    shutil.copy(ticket / names.TRAINED, bad / names.TRAINED)
    (bad / names.TICKET_JSON).write_text("{ not json")
    with pytest.raises(EdgeTicketError, match="not valid JSON"):
        api.compile_ticket(bad, "rpi4", out=tmp_path, log=lambda s: None)


def test_altered_bundle_is_detected(ticket, tmp_path):
    m = api.compile_ticket(ticket, "rpi4", out=tmp_path, log=lambda s: None)
    p = Path(m["bundle_dir"]) / "model.onnx"
    p.write_bytes(p.read_bytes() + b"\0")
    r = CliRunner().invoke(main, ["inspect", m["bundle_dir"]])
    assert r.exit_code == 2 and "model.onnx" in r.output and "sha256" in r.output and "Traceback" not in r.output


def _weight_graph(w: np.ndarray):
    """A graph whose output is the weight itself, to check the decode bit for bit."""
    init = onnx.numpy_helper.from_array(w, "w")
    g = helper.make_graph([helper.make_node("Identity", ["w"], ["out"])], "g", [],
                          [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, list(w.shape))], [init])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("density", [0.0, 0.001, 0.03, 0.3, 0.9])
@pytest.mark.parametrize("fmt", ["fp32", "fp16", "int8"])
def test_packed_storage_decodes_exactly(density, fmt):
    from edgeticket.compile.packing import dequantize

    rng = np.random.RandomState(1)
    w = (rng.randn(64, 32, 3, 3) * (rng.rand(64, 32, 3, 3) < density)).astype(np.float32)
    w[3] = 0.0  # an all-zero output channel
    model = _weight_graph(w)
    layers = apply_storage(model, ["w"], "packed", fmt)
    onnx.checker.check_model(model, full_check=True)
    got = make_session(model.SerializeToString()).run(None, {})[0]
    assert np.array_equal(got, dequantize(w, fmt))
    if 0 < density < 0.01:
        assert layers[0].code == "delta8"  # long gaps: fillers bridge gaps over 255


def test_packed_fp32_is_within_1_1x_of_entropy_floor_at_97_percent():
    rng = np.random.RandomState(0)
    w = (rng.randn(256, 256, 3, 3) * (rng.rand(256, 256, 3, 3) < 0.03)).astype(np.float32)
    layers = apply_storage(_weight_graph(w), ["w"], "packed", "fp32")
    s = storage_summary(layers)
    nnz = int(np.count_nonzero(w))
    assert s["entropy_floor_bytes"] == pytest.approx(entropy_floor_bits(w.size, nnz) / 8, rel=1e-6)
    assert s["ratio_to_floor"] <= 1.1


def test_targets_list_and_errors(tmp_path):
    r = CliRunner().invoke(main, ["targets", "--json"])
    assert r.exit_code == 0
    names = {t["name"] for t in json.loads(r.stdout)}
    assert names == {"rpi4", "rpi5", "rpi-zero-2w", "jetson-nano", "jetson-orin-nano", "arm-cortex-a53", "host"}
    bad = budget_target(tmp_path, 1000).read_text().replace("ram_bytes = 4294967296", 'ram_bytes = "lots"')
    (tmp_path / "small.toml").write_text(bad)
    r = CliRunner().invoke(main, ["compile", str(tmp_path), "--target", str(tmp_path / "small.toml")])
    assert r.exit_code == 2 and "field 'memory.ram_bytes' must be a positive integer" in r.output
    r = CliRunner().invoke(main, ["compile", str(tmp_path), "--target", "rpi9"])
    assert "unknown target 'rpi9'; valid: arm-cortex-a53, host, jetson-nano" in r.output


def test_compile_and_inspect_cli(ticket, tmp_path):
    r = CliRunner().invoke(main, ["compile", str(ticket), "--target", "rpi4", "--out", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)  # notes go to stderr
    r2 = CliRunner().invoke(main, ["inspect", m["bundle_dir"]])
    assert r2.exit_code == 0 and "validation passed" in r2.output and "entropy floor" in r2.output


def test_a_search_ticket_compiles_for_every_target(ticket, tmp_path):
    from edgeticket.device.targets import available

    for name in available():
        m = api.compile_ticket(ticket, name, out=tmp_path, validation_n=8, log=lambda s: None)
        assert m["validation"]["passed"] and m["target"]["name"] == name
        assert m["prediction"]["latency_s"] > 0 and m["prediction"]["source"]
