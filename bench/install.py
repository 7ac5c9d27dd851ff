"""The base install (the device runtime: `pip install edgeticket`) vs the full install (`edgeticket[all]` +
spikingjelly), each in a fresh venv built here from this checkout's wheel: bytes installed and the cold wall time
of `edgeticket profile --help` (a fresh process each call, the two venvs alternating), side by side.
Goals: base install <= 0.1x the full install's bytes; profile's cold start <= 0.5 s.

    .venv/bin/python bench/install.py [--python python3.8] [--calls 7] [--keep DIR]

Needs the package registry (pip downloads the dependencies); torch is pinned like the Makefile (TORCH=...).
Both venvs use one interpreter: the full install needs Python >= 3.10 (run the base install alone on older ones
with tests/test_base_install.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from build_wheel import build_wheel  # noqa: E402


def sh(*cmd: str) -> None:
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise SystemExit(f"{' '.join(cmd[:6])} ... failed: {last}")


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def make_venv(python: str, venv: Path, *requirements: str, nodeps: tuple[str, ...] = ()) -> int:
    """Creates the venv, installs; returns the bytes the installs added to site-packages."""
    sh(python, "-m", "venv", str(venv))
    empty = tree_bytes(site_packages(venv))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--prefer-binary"]
    sh(*pip, *requirements)
    if nodeps:
        sh(*pip, "--no-deps", *nodeps)
    return tree_bytes(site_packages(venv)) - empty


def cold_start(venv: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(venv / "bin" / "edgeticket"), "profile", "--help"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter of both venvs")
    ap.add_argument("--calls", type=int, default=7, help="fresh processes per venv")
    ap.add_argument("--keep", default=None, help="build the venvs here and keep them")
    ap.add_argument("--torch", default=os.environ.get("TORCH", "torch==2.13.0"))
    a = ap.parse_args()
    work = Path(a.keep or tempfile.mkdtemp(prefix="edgeticket-install-"))
    work.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(work)
    t0 = time.perf_counter()
    base = make_venv(a.python, work / "base", str(wheel))
    t_base = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = make_venv(a.python, work / "full", a.torch, f"edgeticket[all] @ {wheel.as_uri()}",
                     nodeps=("spikingjelly==2.0.0",))
    t_full = time.perf_counter() - t0
    times: dict[str, list[float]] = {"base": [], "full": []}
    for _ in range(a.calls):
        for name in times:
            times[name].append(cold_start(work / name))
    py = subprocess.run([a.python, "-c", "import platform; print(platform.python_version())"], capture_output=True,
                        text=True).stdout.strip()
    print(f"edgeticket {wheel.name}, Python {py}, venvs in {work}")
    print(f"  {'install':8s} {'bytes installed':>16s} {'pip time':>9s} {'profile --help: first':>22s} {'median':>8s}")
    for name, nbytes, t in (("base", base, t_base), ("full", full, t_full)):
        ts = times[name]
        print(f"  {name:8s} {nbytes / 2**20:12.1f} MiB {t:8.1f}s {ts[0]:21.3f}s {statistics.median(ts):7.3f}s")
    ratio = base / full
    cold = statistics.median(times["base"])
    print(f"base/full bytes {ratio:.3f}x (goal <= 0.1x: {'met' if ratio <= 0.1 else 'NOT met'}); "
          f"base profile cold start median {cold:.3f} s over {a.calls} calls (goal <= 0.5 s: "
          f"{'met' if cold <= 0.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
