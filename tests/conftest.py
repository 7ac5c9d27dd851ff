import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
REQUIRE_OLD_PYTHON = os.environ.get("EDGETICKET_REQUIRE_OLD_PYTHON") == "1"

os.environ.setdefault("OMP_NUM_THREADS", "2")


def tiny_flat(**over):
    """CLI-style settings of a search that runs in seconds: tiny net, digits subset, few epochs."""
    flat = dict(arch="tiny", dataset="digits", train_subset=256, test_subset=128, epochs=3, rounds=2,
                rewind_epoch=1, batch_size=64, lr=0.1, seed=0, timesteps=4, et_candidates="2,3")
    flat.update(over)
    return flat


def tiny_cfg(**over):
    from edgeticket.hparams import SearchConfig, iter_fields

    flat = {f.name: f.default for _, f in iter_fields()}
    flat.update(tiny_flat(**over))
    return SearchConfig.from_flat(flat)


def cli_args(**over):
    args = []
    for k, v in tiny_flat(**over).items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    return args


@pytest.fixture
def tiny():
    return tiny_cfg


@pytest.fixture(scope="module")
def ticket(tmp_path_factory):
    """The last level of a tiny 2-round IMP search (one per test module)."""
    from edgeticket import api

    out = tmp_path_factory.mktemp("runs")
    cfg = tiny_cfg(rounds=2)
    api.search(cfg, out=out, device="cpu", quiet=True)
    return out / cfg.hashname() / "level_2"


@pytest.fixture(autouse=True, scope="session")
def _user_state_in_tmp(tmp_path_factory):
    """Calibration records written by tests go to a temp folder, never to the user's data folder."""
    if "EDGETICKET_CALIBRATION" not in os.environ:
        os.environ["EDGETICKET_CALIBRATION"] = str(tmp_path_factory.mktemp("calibration"))
    yield


def _version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
                             capture_output=True, text=True, timeout=30).stdout.split()
        return (int(out[0]), int(out[1])) if out else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def oldest_python() -> str | None:
    """$EDGETICKET_OLD_PYTHON, else the oldest interpreter >= 3.8 under ~/.pyenv/versions (or on PATH)."""
    if os.environ.get("EDGETICKET_OLD_PYTHON"):
        return os.environ["EDGETICKET_OLD_PYTHON"]
    found = {}
    cands = glob.glob(os.path.expanduser("~/.pyenv/versions/*/bin/python3")) + \
        [f"python3.{m}" for m in range(8, 14)]
    for c in cands:
        v = _version(c)
        if v and (3, 8) <= v < (3, 10):
            found.setdefault(v, c)
    return found[min(found)] if found else None


@pytest.fixture(scope="session")
def base_venv(tmp_path_factory):
    """A fresh venv of the oldest Python here holding the built wheel's base install (the device runtime)."""
    python = oldest_python()
    if python is None:
        if REQUIRE_OLD_PYTHON:
            pytest.fail("EDGETICKET_REQUIRE_OLD_PYTHON=1 but no Python 3.8/3.9 was found (set EDGETICKET_OLD_PYTHON)")
        pytest.skip("no Python 3.8 or 3.9 here (pyenv install 3.8, or set EDGETICKET_OLD_PYTHON)")
    from build_wheel import build_wheel

    root = tmp_path_factory.mktemp("base")
    wheel = build_wheel(root)
    venv = root / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--prefer-binary", str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return venv
