import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeticket import api
from edgeticket.device.calibration import newest_record
from edgeticket.cli import main
from edgeticket.device.targets import PACKAGED as PACKAGED_TARGETS

from conftest import tiny_cfg


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("p")
    cfg = tiny_cfg(rounds=1)
    api.search(cfg, out=root / "runs", device="cpu", quiet=True)
    run = root / "runs" / cfg.hashname()
    return {layout: api.compile_ticket(run, "host", out=root / "bundles", layout=layout, validation_n=32,
                                       log=lambda s: None)["bundle_dir"] for layout in ("time-folded", "streaming")}


@pytest.fixture
def calib_dir(tmp_path, monkeypatch):
    """An empty user calibration folder, and a board of our own (a copy of host.toml named bench-host) that no
    packaged record describes."""
    monkeypatch.setenv("EDGETICKET_CALIBRATION", str(tmp_path / "calibration"))
    (tmp_path / "targets").mkdir()
    host = (PACKAGED_TARGETS / "host.toml").read_text().replace('name = "host"', 'name = "bench-host"')
    (tmp_path / "targets" / "bench-host.toml").write_text(host)
    monkeypatch.setenv("EDGETICKET_TARGETS", str(tmp_path / "targets"))
    return tmp_path / "calibration"


def test_profile_both_layouts_report_the_same_snn_statistics(bundles, calib_dir):
    a = api.profile(bundles["time-folded"], runs=5, warmup=1, log=lambda s: None)
    b = api.profile(bundles["streaming"], runs=5, warmup=1, log=lambda s: None)
    for r in (a, b):
        lat = r["latency"]
        assert 0 < lat["min_s"] <= lat["p50_s"] <= lat["p90_s"] <= lat["p99_s"]
        assert r["memory"]["peak_rss_bytes"] >= r["memory"]["process_baseline_bytes"] > 0
        assert r["memory"]["verdict"] == "fits" and r["settings"]["inputs"] == "validation samples"
        assert r["device"]["cores"] and r["device"]["onnxruntime"]
        assert Path(r["profile_json"]).is_file()
    assert a["snn"]["spike_rates"] == b["snn"]["spike_rates"]
    assert a["snn"]["synops"] == b["snn"]["synops"]
    syn = a["snn"]["synops"]
    assert 0 < syn["synops_per_sample"] < syn["dense_macs_per_sample"]
    rates = a["snn"]["spike_rates"]
    assert all(0 <= v <= 1 for s in rates.values() for v in s["rate_per_timestep"])
    assert all(len(s["rate_per_timestep"]) == 4 for s in rates.values())


def test_calibrate_writes_a_record_that_predict_reads(bundles, calib_dir):
    assert newest_record("bench-host") is None
    r = CliRunner().invoke(main, ["predict", bundles["time-folded"], "--target", "bench-host", "--json"])
    assert r.exit_code == 0 and "no calibration record for bench-host" in r.output
    fallback = json.loads(r.stdout)
    assert not fallback["latency"]["calibrated"] and "datasheet roofline" in fallback["latency"]["source"]
    res = api.profile(bundles["time-folded"], runs=5, warmup=1, calibrate=True, target="bench-host", log=lambda s: None)
    rec = newest_record("bench-host")
    assert rec is not None and rec["conv_gflops"] > 0 and rec["gbytes_per_s"] > 0 and rec["node_overhead_s"] >= 0
    assert json.loads((calib_dir / "bench-host.json").read_text())["records"][-1]["date"] == rec["date"]
    # the bundle has the event backend: its rates are fit on the validation inputs, and the cost model reads them
    m = json.loads((Path(bundles["time-folded"]) / "manifest.json").read_text())
    assert m["backends"]["event"]["built"]
    assert rec["event_ns_per_synop"] > 0 and rec["event_ns_per_neuron_step"] >= 0 and rec["event_call_s"] >= 0
    assert len(rec["event_samples"]["seconds"]) == len(rec["event_samples"]["synops"]) == 32
    from edgeticket.device.profile.predict import predict_event

    assert predict_event(m, 1, rec)["source"] == "calibration record"
    assert "prediction" in res and res["prediction"]["measured_over_predicted"] > 0
    r = CliRunner().invoke(main, ["predict", bundles["streaming"], "--target", "bench-host", "--json"])
    pred = json.loads(r.stdout)
    assert pred["latency"]["calibrated"] and pred["memory"]["runtime_overhead_bytes"] == rec["runtime_overhead_bytes"]


def test_calibrating_for_another_architecture_is_refused(bundles, calib_dir):
    r = CliRunner().invoke(main, ["profile", bundles["time-folded"], "--runs", "2", "--calibrate", "--target", "rpi4"])
    assert r.exit_code == 2 and "target 'rpi4' is aarch64" in r.output and "Traceback" not in r.output


def test_check_answers_from_the_manifest(bundles, tmp_path):
    r = CliRunner().invoke(main, ["check", bundles["streaming"], "--target", "rpi-zero-2w"])
    assert r.exit_code == 0 and r.output.startswith("fits:")
    small = (PACKAGED_TARGETS / "rpi4.toml").read_text()
    small = small.replace('name = "rpi4"', 'name = "tiny-board"').replace("model_budget_bytes = 1073741824",
                                                                          "model_budget_bytes = 1000000")
    (tmp_path / "tiny-board.toml").write_text(small)
    r = CliRunner().invoke(main, ["check", bundles["streaming"], "--target", str(tmp_path / "tiny-board.toml")])
    assert r.exit_code == 1 and r.output.startswith("does not fit:")


def test_bad_bundles_get_one_line_errors(bundles, tmp_path):
    import shutil

    for case in ("missing", "altered", "version"):
        d = tmp_path / case
        shutil.copytree(bundles["time-folded"], d)
        if case == "missing":
            (d / "model.onnx").unlink()
        elif case == "altered":
            (d / "validation.npz").write_bytes(b"0" + (d / "validation.npz").read_bytes()[1:])
        else:
            m = json.loads((d / "manifest.json").read_text())
            m["format_version"] = 99
            (d / "manifest.json").write_text(json.dumps(m))
        r = CliRunner().invoke(main, ["profile", str(d), "--runs", "2"])
        assert r.exit_code == 2 and "Traceback" not in r.output
        assert len(r.output.strip().splitlines()) == 1
        needle = {"missing": "bundle file model.onnx is missing", "altered": "validation.npz", "version": "format_version 99"}
        assert needle[case] in r.output


def test_profile_cli_runs_without_torch(bundles, tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "from edgeticket.cli import main\n"
            f"main(['profile', {bundles['streaming']!r}, '--runs', '3', '--json', '--out', {str(tmp_path / 'p.json')!r}])\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout)
    assert r["bundle"]["layout"] == "streaming" and (tmp_path / "p.json").is_file()
