"""Faults (issue 18, items 2, 6, 7, 8): resume checks what it reuses, kill -9 anywhere then rerun gives the
uninterrupted result bit for bit (control branches included), one writer per run folder and bundle, and a full or
read-only disk ends in one line naming the path while what is on disk stays whole and no temp file is left."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from edgeticket import store
from edgeticket.cli import main
from edgeticket.formats import names

from conftest import cli_args, tiny_cfg
from test_hostile import refused, snapshot

ROOT = Path(__file__).resolve().parent.parent


def _search(out, *extra, **over):
    return CliRunner().invoke(main, ["search", *cli_args(**over), "--device", "cpu", "--out", str(out), "-q", *extra])


def _tensors_equal(a_dir: Path, b_dir: Path) -> list[str]:
    """The safetensors files under a_dir whose tensors differ from b_dir's (or that b_dir lacks)."""
    differ = []
    for p in sorted(a_dir.rglob("*.safetensors")):
        q = b_dir / p.relative_to(a_dir)
        if not q.is_file():
            differ.append(str(p.relative_to(a_dir)))
            continue
        a, b = store.load_tensors(p), store.load_tensors(q)
        if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
            differ.append(str(p.relative_to(a_dir)))
    return differ


# ---- resume checks what it reuses (item 2) ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    r = _search(out, rounds=1)
    assert r.exit_code == 0, r.output
    return out / tiny_cfg(rounds=1).hashname()


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_resume_refuses_a_finished_level_whose_file_changed(finished_run, tmp_path):
    run = _copy(finished_run, tmp_path / "runs" / finished_run.name)
    rewind = run / "level_0" / names.REWIND
    data = bytearray(rewind.read_bytes())
    data[-3] ^= 0x01  # one bit of a weight: still a valid safetensors file
    rewind.write_bytes(bytes(data))
    before = snapshot(run)
    r = _search(tmp_path / "runs", rounds=1)
    refused(r, "does not match its recorded sha256")
    assert "level_0" in r.output and "rewind.safetensors" in r.output and "delete" in r.output
    assert snapshot(run) == before


def test_resume_refuses_an_unfinished_level_whose_mask_is_not_the_one_it_trained_with(finished_run, tmp_path):
    run = _copy(finished_run, tmp_path / "runs" / finished_run.name)
    level1 = run / "level_1"
    (level1 / names.TICKET_JSON).unlink()  # the level is unfinished again: resume recomputes its mask
    mask = store.load_tensors(level1 / names.MASK)
    name = next(iter(mask))
    mask[name] = ~mask[name]
    from edgeticket.pruning import Mask

    Mask(mask).save(level1 / names.MASK)
    before = snapshot(run)
    r = _search(tmp_path / "runs", rounds=1)
    refused(r, "differs from the mask this search computes")
    assert snapshot(run) == before


def test_temp_files_of_a_killed_writer_are_removed_by_the_next_run(finished_run, tmp_path):
    run = _copy(finished_run, tmp_path / "runs" / finished_run.name)
    left = run / "level_1" / ".checkpoint.pt.k3j4h5x9.tmp"  # atomic_write's temp name: .<name>.<8 random>.tmp
    left.write_bytes(b"half a checkpoint")
    mine = [run / ".notes.tmp", run / ".cache" / ".x.abcdefgh.tmp"]  # not ours: a user's file, a dot-folder's
    for p in mine:
        p.parent.mkdir(exist_ok=True)
        p.write_text("keep")
    r = _search(tmp_path / "runs", rounds=1)
    assert r.exit_code == 0, r.output
    assert not left.exists() and all(p.read_text() == "keep" for p in mine)


# ---- kill -9 anywhere, rerun: the uninterrupted result bit for bit (item 7) --------------------------------------

CONTROLS = ("--controls", "random-reinit,random-mask")


def _cmd(out):
    return [sys.executable, "-m", "edgeticket", "search", *cli_args(epochs=4, rounds=2), "--out", str(out),
            "--quiet", "--device", "cpu", *CONTROLS]


@pytest.fixture(scope="module")
def controls_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    subprocess.run(_cmd(out), env=dict(os.environ, OMP_NUM_THREADS="1"), check=True, capture_output=True)
    (run,) = [d for d in out.iterdir() if d.is_dir()]  # the controls are part of the settings' hash
    return run


@pytest.mark.parametrize("kill_at", ["level_1/branch_random-mask/checkpoint.pt",
                                     "level_2/branch_random-reinit/checkpoint.pt",
                                     "level_2/branch_random-mask/mask.safetensors"])
def test_sigkill_in_a_control_branch_then_rerun_is_bit_identical(controls_reference, tmp_path, kill_at):
    """The random-mask control drew its mask in the mask's layer order, which a finished level loaded from disk
    had lost (safetensors sorts names): the resumed branch trained another mask than the one it had saved."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = tmp_path / "killed"
    run = out / controls_reference.name
    proc = subprocess.Popen(_cmd(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while not (run / kill_at).exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the search finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not names.is_finished((run / kill_at).parent)
    subprocess.run(_cmd(out), env=env, check=True, capture_output=True)
    assert _tensors_equal(controls_reference, run) == []
    assert not list(run.rglob("*.tmp")) and not list(out.glob(".*.lock"))


# ---- one writer per folder (item 8) -------------------------------------------------------------------------------

def test_a_second_search_into_a_locked_run_folder_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "runs"
    run = out / tiny_cfg().hashname()
    with store.FolderLock(run, "search"):
        r = _search(out)
    refused(r, f"another edgeticket is writing {run} (pid {os.getpid()}")
    assert "wait for it to finish" in r.output
    assert not run.exists()


def test_two_identical_searches_at_once_one_trains_the_other_is_refused(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "edgeticket", "search", *cli_args(), "--out", str(tmp_path), "-q", "--device", "cpu"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = sorted((p.wait(timeout=300), p.stderr.read()) for p in procs)
    assert [rc for rc, _ in results] == [0, 2], results
    assert "another edgeticket is writing" in results[1][1] and "Traceback" not in results[1][1]
    assert len(results[1][1].strip().splitlines()) == 1


def test_a_lock_left_by_a_killed_search_is_taken_over(tmp_path):
    out = tmp_path / "runs"
    run = out / tiny_cfg().hashname()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from edgeticket import store\n"
        "store.FolderLock(sys.argv[1], 'search').__enter__(); print('held', flush=True); time.sleep(600)"), str(run)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert _search(out).exit_code == 2  # alive: refused
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert store.lock_path(run).is_file()  # a killed holder cannot remove its lock file
    r = CliRunner().invoke(main, ["search", *cli_args(), "--device", "cpu", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"taking over the lock of a search that is gone (pid {holder.pid}" in r.output
    assert not store.lock_path(run).exists()


def test_a_compile_into_a_locked_bundle_is_refused(ticket, tmp_path):
    with store.FolderLock(tmp_path / "b", "compile"):
        r = CliRunner().invoke(main, ["compile", str(ticket), "--target", "host", "--backend", "onnxruntime",
                                      "--out", str(tmp_path), "--name", "b", "-q"])
    refused(r, f"another edgeticket is writing {tmp_path / 'b'}")
    assert "--name" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ---- full and read-only disks (item 6) ----------------------------------------------------------------------------

def _tmpfs(path: Path, size: int, *options: str) -> None:
    required = os.environ.get("EDGETICKET_REQUIRE_TMPFS") == "1"  # set by .ci/run
    if os.geteuid() != 0:
        (pytest.fail if required else pytest.skip)("mounting a tiny tmpfs (a full or read-only disk) needs root")
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join((f"size={size}",) + options), "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        if required:
            pytest.fail(f"mount tmpfs failed: {r.stderr}")
        pytest.skip(f"this machine refuses a tmpfs mount ({r.stderr.strip()})")


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    _tmpfs(disk, 48 << 10)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_search_on_a_full_disk_is_one_line_and_leaves_no_temp_file(small_disk):
    r = _search(small_disk / "runs")
    refused(r, "No space left on device; free space on that disk or pass an --out on another")
    assert f"cannot write {small_disk}" in r.output
    assert not [p for p in small_disk.rglob(".*") if p.is_file()]  # no temp file, no lock file


def test_compile_rerun_on_a_full_disk_keeps_the_old_bundle_whole(ticket, tmp_path):
    import shutil

    args = ["compile", str(ticket), "--target", "host", "--backend", "onnxruntime", "--name", "b", "-q"]
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "first")])
    assert r.exit_code == 0, r.output
    old = tmp_path / "first" / "b"
    disk = tmp_path / "disk"
    _tmpfs(disk, sum(p.stat().st_size for p in old.iterdir()) + (24 << 10))  # room for the old bundle, not two
    try:
        shutil.copytree(old, disk / "b")
        before = snapshot(disk / "b")
        r = CliRunner().invoke(main, [*args, "--out", str(disk)])
        refused(r, "No space left on device")
        assert snapshot(disk / "b") == before
        assert sorted(p.name for p in disk.iterdir()) == ["b"]  # no temp folder, no lock file
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_writing_into_a_read_only_folder_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    if os.geteuid() == 0:  # root writes through permission bits: a read-only mount instead
        _tmpfs(ro, 48 << 10, "ro")
    else:
        ro.mkdir()
        ro.chmod(0o555)
    try:
        r = _search(ro / "runs")
        refused(r, str(ro / "runs"))
        assert ("cannot write" in r.output and "Read-only file system" in r.output) or \
            ("cannot access" in r.output and "Permission denied" in r.output)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(ro)], check=False)
        else:
            ro.chmod(0o755)


# ---- kill -9 during an experiment and at a compile rerun's swap (item 9) -------------------------------------------

EXPERIMENT = """
[experiment]
name = "k"
seeds = [0, 1]

[defaults]
arch = "tiny"
dataset = "digits"
train_subset = 128
test_subset = 64
epochs = 3
rounds = 1
rewind_epoch = 1
timesteps = 3

[[search]]
label = "imp"
method = "imp"
"""


def test_sigkill_during_an_experiment_then_rerun_is_bit_identical(tmp_path):
    config = tmp_path / "k.toml"
    config.write_text(EXPERIMENT)
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def cmd(out):
        return [sys.executable, "-m", "edgeticket", "experiment", str(config), "--out", str(out), "-q",
                "--device", "cpu"]

    subprocess.run(cmd(tmp_path / "ref"), env=env, check=True, capture_output=True)
    index = json.loads((tmp_path / "ref" / "k" / names.EXPERIMENT_JSON).read_text())
    second = Path(next(r["run_dir"] for r in index["runs"] if r["seed"] == 1))
    proc = subprocess.Popen(cmd(tmp_path / "killed"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = tmp_path / "killed" / "k" / second.name / "level_1" / names.CHECKPOINT  # the second seed, mid-level
    deadline = time.time() + 180
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the experiment finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "k" / names.EXPERIMENT_JSON).exists()
    subprocess.run(cmd(tmp_path / "killed"), env=env, check=True, capture_output=True)
    assert _tensors_equal(tmp_path / "ref" / "k", tmp_path / "killed" / "k") == []
    assert (tmp_path / "killed" / "k" / names.EXPERIMENT_JSON).is_file()


def test_sigkill_at_a_compile_reruns_swap_leaves_a_whole_bundle_and_the_next_run_cleans_up(ticket, tmp_path):
    from edgeticket.formats import bundle as bundle_fmt

    args = [sys.executable, "-m", "edgeticket", "compile", str(ticket), "--target", "host", "--backend",
            "onnxruntime", "--out", str(tmp_path), "--name", "b", "-q"]
    subprocess.run(args, check=True, capture_output=True)
    old = snapshot(tmp_path / "b")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while proc.poll() is None and time.time() < deadline:  # the new bundle's manifest is written last, then swapped
        if any((d / names.MANIFEST).is_file() for d in tmp_path.glob(".b.*") if d.is_dir()):
            break
        time.sleep(0.001)
    assert proc.poll() is None, "the compile finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    bundle_fmt.load(tmp_path / "b")  # whole: every file matches its manifest (the old bundle, or the new one)
    assert snapshot(tmp_path / "b")[names.MODEL] == old[names.MODEL]  # same ticket and settings: same graph
    subprocess.run(args, check=True, capture_output=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # temp folders and the stale lock removed


# ---- review fixes: lock and write-error edge cases ---------------------------------------------------------------

def test_a_filesystem_without_flock_falls_back_to_the_pid_in_the_lock_file(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with store.FolderLock(tmp_path / "run", "search"):
        other = store.FolderLock(tmp_path / "run", "search")
        other._pid_lock = lambda fd: False  # another live process's pid is in the file
        with pytest.raises(Exception, match="another edgeticket is writing"):
            other.__enter__()
    stale = store.lock_path(tmp_path / "run")
    stale.write_text("pid 999999999 on host, search started earlier\n")  # no such process: stale
    with store.FolderLock(tmp_path / "run", "search") as lock:
        assert lock.stale and "999999999" in lock.stale


def test_read_and_write_errors_are_named_for_what_they_are():
    import errno

    assert store.write_error_message(OSError(errno.EACCES, "Permission denied", "/d/x")).startswith(
        "cannot access /d/x: Permission denied; give this user access")
    assert store.write_error_message(OSError(errno.ENOSPC, "No space left on device", "/d/x")).startswith(
        "cannot write /d/x: No space left on device; free space")
    assert store.write_error_message(OSError(errno.ENOENT, "No such file", "/d/x")) is None  # not ours to word


def test_only_a_writers_own_failure_on_a_full_disk_becomes_enospc(tmp_path, monkeypatch):
    import errno

    monkeypatch.setattr(store, "disk_full", lambda folder, margin=0: True)

    def torch_like(p):
        raise RuntimeError("unexpected pos 83648 vs 83544")

    with pytest.raises(OSError) as e:
        store.atomic_write(tmp_path / "ck.pt", torch_like)
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / "ck.pt")
    assert isinstance(e.value.__cause__, RuntimeError)  # the writer's own message is kept

    def bug(p):
        raise TypeError("a bug, not a full disk")

    with pytest.raises(TypeError):
        store.atomic_write(tmp_path / "ck.pt", bug)
    assert list(tmp_path.iterdir()) == []  # no temp file left either way


def test_a_32_bit_userland_on_a_64_bit_kernel_expects_32_bit_libraries():
    from edgeticket.formats.elf import MACHINES, expected_machine

    assert expected_machine("aarch64", 8) == MACHINES["aarch64"]
    assert expected_machine("aarch64", 4) == MACHINES["arm"]  # Raspberry Pi OS 32-bit, 64-bit kernel
    assert expected_machine("x86_64", 4) == MACHINES["i386"]
    assert expected_machine("nosuch", 8) is None
