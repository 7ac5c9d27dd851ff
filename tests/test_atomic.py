"""Replacing a bundle folder is atomic: a reader of its path finds the whole old folder or the whole new one at
every moment, a kill -9 at any moment leaves one of the two whole there, and the next run removes the temp
folders a killed writer left (and never those of a writer still alive)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from edgeticket import store


def _bundle(d: Path, version: str) -> Path:
    d.mkdir(parents=True)
    for name in ("manifest.json", "model.onnx", "validation.npz"):
        (d / name).write_text(version)
    return d


def test_replace_dir_swaps_the_whole_folder_and_leaves_no_temp(tmp_path):
    final = _bundle(tmp_path / "b", "old")
    new = store.temp_dir(tmp_path, ".b.")
    for name in ("manifest.json", "model.onnx", "validation.npz"):
        (new / name).write_text("new")
    store.replace_dir(new, final)
    assert {p.read_text() for p in final.iterdir()} == {"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    fresh = store.temp_dir(tmp_path, ".c.")
    (fresh / "manifest.json").write_text("first")
    store.replace_dir(fresh, tmp_path / "c")  # nothing there yet: a plain rename
    assert (tmp_path / "c" / "manifest.json").read_text() == "first"


SWAPPER = r"""
import sys, itertools
from pathlib import Path
from edgeticket import store
out = Path(sys.argv[1])
for i in itertools.count():
    new = store.temp_dir(out, ".b.")
    for name in ("manifest.json", "model.onnx", "validation.npz"):
        (new / name).write_text(str(i))
    store.replace_dir(new, out / "b")
"""


def test_kill_9_while_swapping_never_leaves_the_bundle_missing_or_mixed(tmp_path):
    _bundle(tmp_path / "b", "start")
    seen = 0
    for attempt in range(6):
        child = subprocess.Popen([sys.executable, "-c", SWAPPER, str(tmp_path)])
        deadline = time.time() + 0.4 + 0.1 * attempt
        while time.time() < deadline:  # a reader, meanwhile: always one whole version
            try:
                versions = {(tmp_path / "b" / n).read_text() for n in ("manifest.json", "model.onnx",
                                                                        "validation.npz")}
            except FileNotFoundError:  # a file of a folder swapped away between two reads: read again
                continue
            assert (tmp_path / "b").is_dir()
            seen += len(versions) == 1
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert len({(tmp_path / "b" / n).read_text() for n in ("manifest.json", "model.onnx", "validation.npz")}) == 1
        store.remove_stale_temps(tmp_path, ".b.")  # what the next compile does first
        assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert seen > 0


def test_stale_temps_of_a_live_writer_stay(tmp_path):
    mine = store.temp_dir(tmp_path, ".b.")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    gone = tmp_path / f".b.{dead}.abcd1234"
    gone.mkdir()
    other_bundle = tmp_path / f".b.5.{os.getpid()}.abcd1234"  # the temp of a bundle named "b.5": not ours
    other_bundle.mkdir()
    assert store.remove_stale_temps(tmp_path, ".b.") == [gone]
    assert mine.is_dir() and other_bundle.is_dir()
