"""Build the edgeticket wheel (or sdist) from this checkout without writing into it: the sources are copied to a
scratch folder first (setuptools writes build/ and *.egg-info beside the sources). Used by
tests/test_base_install.py and bench/install.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _sources(work: Path) -> Path:
    src = Path(work) / "src"
    shutil.copytree(ROOT / "edgeticket", src / "edgeticket", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    return src


def build_wheel(work: Path) -> Path:
    out = Path(work) / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(_sources(work))], check=True, capture_output=True)
    return next(out.glob("edgeticket-*.whl"))


def build_sdist(work: Path) -> Path:
    out = Path(work) / "sdist"
    code = f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=str(_sources(work)))
    return next(out.glob("edgeticket-*.tar.gz"))
