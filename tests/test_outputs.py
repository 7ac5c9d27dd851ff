"""What the commands print: every command takes --json (one JSON document on stdout, notes on stderr), -q (errors
only) and -v (the runtimes' own C++ logs); progress bars only on a terminal; TVM's log captured unless -v;
profile runs the bundle's recorded default backend and says so."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeticket import api, console
from edgeticket.cli import main


def test_every_command_takes_json_quiet_and_verbose():
    for name, cmd in main.commands.items():
        params = {p.name for p in cmd.params}
        assert {"as_json", "quiet", "verbose"} <= params, name
        flags = {o for p in cmd.params for o in p.opts}
        assert {"--json", "-q", "--quiet", "-v", "--verbose"} <= flags, name


@pytest.fixture(scope="module")
def bundle(ticket, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles")
    return api.compile_ticket(ticket, "host", out=out, name="b", backend="onnxruntime,event", validation_n=16,
                              log=lambda s: None)


def test_json_is_one_document_on_stdout_and_quiet_prints_nothing(bundle):
    b = bundle["bundle_dir"]
    for args in (["targets"], ["machine"], ["inspect", b], ["check", b, "--target", "rpi4"],
                 ["predict", b, "--target", "rpi4"], ["profile", b, "--runs", "2", "--warmup", "0"]):
        r = CliRunner().invoke(main, [*args, "--json"])
        assert r.exit_code == 0, (args, r.output)
        json.loads(r.stdout)  # the whole of stdout is one JSON document
        r = CliRunner().invoke(main, [*args, "-q"])
        assert r.exit_code == 0 and r.output == "", (args, r.output)  # errors only
        r = CliRunner().invoke(main, [*args, "-q", "--json"])
        assert r.exit_code == 0 and r.stderr == "" and json.loads(r.stdout) is not None, args
    r = CliRunner().invoke(main, ["check", b, "--target", "rpi4", "--json"])
    assert json.loads(r.stdout)["fits"] is True
    r = CliRunner().invoke(main, ["inspect", "/nonexistent", "-q"])
    assert r.exit_code == 2 and r.output.startswith("Error: ")  # errors still show when quiet
    assert "EDGETICKET_QUIET" not in os.environ  # the level was put back after each command


def test_profile_runs_the_recorded_default_and_no_progress_in_pipes(bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETICKET_CALIBRATION", str(tmp_path / "calibration"))  # this record is not the suite's
    b = bundle["bundle_dir"]
    default = bundle["backends"]["default"]
    r = CliRunner().invoke(main, ["profile", b, "--runs", "20", "--warmup", "0", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["backend"] == default
    assert f"backend: {default} (the bundle's default" in r.stderr
    assert "runs" not in r.stderr.replace("timed runs", "")  # no progress lines into a pipe
    r = CliRunner().invoke(main, ["profile", b, "--runs", "2", "--warmup", "0", "--calibrate", "--json",
                                  "--target", "host"])
    assert r.exit_code == 0 and json.loads(r.stdout)["backend"] == "onnxruntime"  # calibration measures onnxruntime


def test_progress_bars_only_where_asked(monkeypatch):
    items = [1, 2, 3]
    monkeypatch.setenv("EDGETICKET_PROGRESS", "0")
    assert console.progress(items, 3) is items
    monkeypatch.setenv("EDGETICKET_PROGRESS", "1")
    assert console.progress(items, 3) is not items and list(console.progress(items, 3)) == items
    with console.level(quiet=True):
        assert console.progress(items, 3) is items  # quiet wins
    assert os.environ.get("EDGETICKET_QUIET") is None


def test_native_logs_are_captured_unless_verbose(capfd):
    import ctypes

    libc = ctypes.CDLL(None)
    with console.native_output("lib"):
        libc.write(2, b"C++ says hello\n", 15)
        print("python note", flush=True)
    out, err = capfd.readouterr()
    assert "C++ says hello" not in err and "python note" in out
    with console.level(verbose=True), console.native_output("lib"):
        libc.write(2, b"C++ says hello\n", 15)
    assert "[lib] C++ says hello" in capfd.readouterr().err


tvm = pytest.importorskip("tvm") if os.environ.get("EDGETICKET_REQUIRE_TVM") != "1" else __import__("tvm")


def test_compile_keeps_tvm_s_log_out_of_the_output_unless_verbose(ticket, tmp_path, capfd):
    r = CliRunner().invoke(main, ["compile", str(ticket), "--target", "host", "--out", str(tmp_path), "--name", "t",
                                  "--backend", "onnxruntime,tvm", "--validation-n", "8"])
    assert r.exit_code == 0, r.output
    assert "Fast mode segfaults" not in r.output + capfd.readouterr().err
    r = CliRunner().invoke(main, ["compile", str(ticket), "--target", "host", "--out", str(tmp_path), "--name", "t",
                                  "--backend", "onnxruntime,tvm", "--validation-n", "8", "-v"])
    assert r.exit_code == 0 and "[tvm] " in r.stderr
    r = CliRunner().invoke(main, ["compile", str(ticket), "--target", "host", "--out", str(tmp_path), "--name", "t",
                                  "--backend", "onnxruntime,tvm", "--validation-n", "8", "-q"])
    assert r.exit_code == 0 and r.output == "" and Path(tmp_path / "t" / "manifest.json").is_file()


def test_inspect_and_report_write_self_contained_pages(bundle, ticket, tmp_path, monkeypatch):
    page = tmp_path / "bundle.html"
    r = CliRunner().invoke(main, ["inspect", bundle["bundle_dir"], "--html", str(page)])
    assert r.exit_code == 0 and f"page       {page}" in r.stdout
    text = page.read_text()
    assert text.count("<svg") >= 2 and "<table" in text and "http://" not in text and "https://" not in text
    monkeypatch.chdir(tmp_path)
    run_dir = Path(ticket).parent
    r = CliRunner().invoke(main, ["report", str(run_dir), "--html", "results.html", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"html": "results.html"} and (tmp_path / "results.html").is_file()
    assert not (tmp_path / "docs").exists()  # --html alone writes no markdown report
    r = CliRunner().invoke(main, ["report", str(tmp_path), "--html", "x.html"])
    assert r.exit_code == 2 and "run.json" in r.output and not (tmp_path / "x.html").exists()
