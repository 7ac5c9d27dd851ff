"""The base install (`pip install edgeticket`: the device runtime) built as a wheel and installed into a fresh
venv of the oldest Python found (>= 3.8, as on Raspberry Pi OS bullseye / JetPack 5), then run on a bundle the
full toolkit compiled: every device command works there, torch is not importable, and a command that needs an
extra says which pip command to run. Skipped where no such interpreter exists (set EDGETICKET_OLD_PYTHON to
one), required in CI (EDGETICKET_REQUIRE_OLD_PYTHON=1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeticket import api

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from build_wheel import build_sdist, build_wheel  # noqa: E402


def test_wheel_and_sdist_carry_targets_calibration_records_and_c_sources(tmp_path):
    import tarfile
    import zipfile

    from edgeticket.device import calibration, targets

    wanted = {f"edgeticket/targets/{p.name}" for p in targets.PACKAGED.glob("*.toml")} | \
        {f"edgeticket/calibration/{p.name}" for p in calibration.PACKAGED.glob("*.json")} | \
        {"edgeticket/device/native/etevent.c", "edgeticket/device/native/etevent_main.c"}
    assert len(wanted) >= 10
    in_wheel = set(zipfile.ZipFile(build_wheel(tmp_path / "w")).namelist())
    with tarfile.open(build_sdist(tmp_path / "s")) as t:
        in_sdist = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert wanted <= in_wheel and wanted <= in_sdist, (wanted - in_wheel, wanted - in_sdist)


def _run(venv: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    return subprocess.run([str(venv / "bin" / "edgeticket"), *args], capture_output=True, text=True, env=env,
                          cwd=str(venv.parent))


def test_the_base_install_runs_every_device_command_on_an_old_python(base_venv, ticket, tmp_path):
    py = str(base_venv / "bin" / "python")
    r = subprocess.run([py, "-c", "import sys; print(sys.version_info[:2]); import torch"], capture_output=True,
                       text=True)
    assert r.returncode != 0 and "No module named 'torch'" in r.stderr
    m = api.compile_ticket(ticket, "host", out=tmp_path, name="h", validation_n=16, log=lambda s: None)
    b = m["bundle_dir"]
    carried = [n for n in ("event", "tvm") if m["backends"].get(n, {}).get("built")]
    assert "event" in carried

    r = subprocess.run([py, "-c", "from edgeticket.device import native; print(native.SOURCE.is_file(), "
                        "native.DRIVER.is_file())"], capture_output=True, text=True)
    assert r.stdout.split() == ["True", "True"], r.stderr  # the C sources are package data
    r = _run(base_venv, "targets", "--json")
    assert r.returncode == 0 and "rpi4" in {t["name"] for t in json.loads(r.stdout)}  # packaged target files
    r = _run(base_venv, "inspect", b)
    assert r.returncode == 0 and "validation passed" in r.stdout
    r = _run(base_venv, "check", b, "--target", "rpi4")
    assert r.returncode == 0 and r.stdout.startswith("fits:")
    r = _run(base_venv, "predict", b, "--target", "host", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["latency"]["calibrated"]  # the packaged host record
    here = api.profile(b, runs=2, warmup=0, out=tmp_path / "here.json", log=lambda s: None)
    for backend in ("onnxruntime", "event"):
        r = _run(base_venv, "profile", b, "--backend", backend, "--runs", "3", "--json", "--out",
                 str(tmp_path / f"{backend}.json"))
        assert r.returncode == 0, r.stderr[-2000:]
        there = json.loads(r.stdout)
        assert there["device"]["python"].startswith("3.") and there["backend"] == backend
        assert there["snn"]["spike_rates"] == here["snn"]["spike_rates"]
        assert there["snn"]["synops"] == here["snn"]["synops"]

    if "tvm" in carried:  # the library is there, its runtime is not: one line naming the extra
        r = _run(base_venv, "profile", b, "--backend", "tvm", "--runs", "2")
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [
            f"Error: {b}: the tvm backend needs the TVM runtime, which is not installed: pip install 'edgeticket[tvm]'"]
    r = _run(base_venv, "search")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "Python >= 3.10" in r.stderr
    r = _run(base_venv, "compile", str(ticket), "--target", "host")
    assert r.returncode == 2 and "Python >= 3.10" in r.stderr and not (base_venv.parent / "bundles").exists()
