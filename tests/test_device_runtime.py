"""The device runtime: formats/ and device/ import without the torch side, the runner registry, user state
(calibration folder, target folders, file modes, durable writes), missing extras, bad bundles."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeticket import api, store
from edgeticket.cli import main
from edgeticket.device import calibration, runners, targets
from edgeticket.errors import EdgeTicketError

PKG = Path(api.__file__).resolve().parent
BLOCKED = ("torch", "spikingjelly", "onnx", "tvm", "sklearn", "matplotlib")


def _blocked_python(code: str, *args: str) -> subprocess.CompletedProcess:
    pre = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in BLOCKED)
    return subprocess.run([sys.executable, "-c", pre + code, *args], capture_output=True, text=True)


def test_formats_and_device_import_without_the_torch_side():
    mods = sorted("edgeticket." + ".".join(p.relative_to(PKG).with_suffix("").parts).replace(".__init__", "")
                  for sub in ("formats", "device") for p in (PKG / sub).rglob("*.py") if p.name != "__main__.py")
    assert "edgeticket.device.runners.tvm_runner" in mods and "edgeticket.formats.bundle" in mods
    r = _blocked_python("import importlib\nfor m in sys.argv[1:]: importlib.import_module(m)\nprint('ok')", *mods)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_every_backend_is_a_runner_and_the_old_name_is_explained():
    for name in runners.BACKENDS:
        cls = runners.runner_class(name)
        assert issubclass(cls, runners.Runner) and cls.name == name
    with pytest.raises(EdgeTicketError, match="backend 'sparse' is now called 'event'"):
        runners.check_backend("sparse")


def test_one_streaming_loop_sums_logits_and_stacks_counts():
    def step(states):
        (v,) = states
        return np.full((2, 3), v, np.float32), [v + 1], [np.array([v, 2 * v])]

    total, counts = runners.stream(step, [1.0], 3)
    assert np.array_equal(total, np.full((2, 3), 1 + 2 + 3)) and counts[0].tolist() == [[1, 2], [2, 4], [3, 6]]


class _Io:
    def __init__(self, name, shape=None):
        self.name, self.shape = name, shape


class _StreamingSession:
    """An onnxruntime session's face for a streaming graph of two LIF layers `a` [3] and `b` [2, 2]: each call
    returns logits 0, every state + 1 and spike counts 0, and records the states it was fed."""

    def __init__(self):
        self.fed = []

    def get_inputs(self):
        return [_Io("input", ["batch", 1, 2, 2]), _Io("v__a", ["batch", 3]), _Io("v__b", ["batch", 2, 2])]

    def get_outputs(self):
        return [_Io(n) for n in ("logits", "v_out__a", "v_out__b", "spikes__a", "spikes__b")]

    def get_providers(self):
        return ["CPUExecutionProvider"]

    def run(self, wanted, feed):
        self.fed.append([feed["v__a"].copy(), feed["v__b"].copy()])
        b = len(feed["input"])
        out = {"logits": np.zeros((b, 4), np.float32), "v_out__a": feed["v__a"] + 1, "v_out__b": feed["v__b"] + 1,
               "spikes__a": np.zeros(b, np.float32), "spikes__b": np.zeros(b, np.float32)}
        return [out[n] for n in wanted]


def test_streaming_states_start_at_each_layers_resting_value(tmp_path, monkeypatch):
    """v_init (the manifest's lif.neurons: v_reset, 0 for a soft reset) is where every runner's membrane states
    start; without it they are zeros, the arrays they always were."""
    from edgeticket.device.runners import onnx_runner
    from edgeticket.device.runners.onnx_runner import OnnxRunner
    from edgeticket.formats import bundle

    zeros = OnnxRunner(_StreamingSession(), "streaming", 3).initial_states(2)
    assert [s.dtype for s in zeros] == [np.float32] * 2 and [s.shape for s in zeros] == [(2, 3), (2, 2, 2)]
    assert all(np.array_equal(s, np.zeros_like(s)) and not np.signbit(s).any() for s in zeros)
    assert OnnxRunner(_StreamingSession(), "streaming", 3, v_init=[0.0, -0.0]).initial_states(2)[1].tobytes() == \
        zeros[1].tobytes()

    sess = _StreamingSession()
    r = OnnxRunner(sess, "streaming", 3, v_init=[0.5, -0.25])
    a, b = r.initial_states(2)
    assert a.dtype == b.dtype == np.float32 and (a == 0.5).all() and (b == -0.25).all() and b.shape == (2, 2, 2)
    r.run(np.zeros((2, 1, 2, 2), np.float32))
    assert [(f[0][0, 0], f[1][0, 0, 0]) for f in sess.fed] == [(0.5, -0.25), (1.5, 0.75), (2.5, 1.75)]

    # open(bundle_dir, manifest) takes them from the manifest (formats.bundle.state_init)
    manifest = {"layout": "streaming", "timesteps": 3, "target": {},
                "lif": {"layers": ["a", "b"], "neurons": [
                    {"kind": "lif", "v_threshold": 1.0, "v_reset": 0.5, "tau": 2.0, "k": None, "decay_input": True},
                    {"kind": "if", "v_threshold": 1.0, "v_reset": None, "tau": None, "k": None,
                     "decay_input": True}]}}
    assert bundle.state_init(manifest) == [0.5, 0.0]
    monkeypatch.setattr(onnx_runner, "make_session", lambda *a, **k: _StreamingSession())
    assert OnnxRunner.open(tmp_path, manifest).v_init == [0.5, 0.0]

    class Plain(runners.Runner):  # any backend: the base class holds v_init and fills the arrays
        name = "plain"

    p = Plain("streaming", 2, ["x.lif", "y.lif"], ["y"], v_init=[1, 0])
    got = p.state_arrays(3, [(2,), (1, 2)])
    assert p.v_init == [1.0, 0.0] and (got[0] == 1).all() and (got[1] == 0).all() and got[1].shape == (3, 1, 2)
    with pytest.raises(EdgeTicketError, match="plain: 1 initial membrane values for 2 LIF layers"):
        Plain("streaming", 2, ["x.lif", "y.lif"], ["y"], v_init=[1.0])


def test_event_kernels_take_their_states_at_each_layers_resting_value(tmp_path):
    """The event runner's flat state [batch, all LIF layers' floats] starts at each layer's v_init, and the
    kernels run from there: a stem current of 1.2 (tau 4/3, threshold 1) fires at t = 0 from 0.6, not from 0."""
    from edgeticket.device.runners.event_runner import EventRunner
    from edgeticket.formats import etsp

    stem = {"kind": etsp.CONV_IMAGE, "cin": 1, "hin": 4, "win": 4, "cout": 2, "hout": 4, "wout": 4, "k": 3,
            "stride": 1, "pad": 1, "lif": 1, "matrix": np.zeros((9, 2), np.float32), "bias": [1.2, 1.2]}
    conv = {"kind": etsp.CONV_SPIKES, "cin": 2, "hin": 4, "win": 4, "cout": 3, "hout": 4, "wout": 4, "k": 3,
            "stride": 1, "pad": 1, "lif": 1, "matrix": np.zeros((18, 3), np.float32), "bias": [0.0] * 3}
    fc = {"kind": etsp.LINEAR_SPIKES, "cin": 48, "hin": 1, "win": 1, "cout": 3, "hout": 1, "wout": 1, "k": 1,
          "stride": 1, "pad": 0, "lif": 0, "matrix": np.zeros((48, 3), np.float32), "bias": [0.0] * 3}
    p = tmp_path / "m.etsp"
    etsp.write_etsp(p, (1, 4, 4), 2, 4 / 3, 1.0, 3, [stem, conv, fc])
    assert etsp.check_header(p)["lif_sizes"] == [32, 48]
    x = np.zeros((2, 1, 4, 4), np.float32)
    zero = EventRunner(p, "streaming", 2, ["stem", "conv"], ["conv", "fc"])
    assert zero.initial_states(2)[0].tobytes() == np.zeros((2, 80), np.float32).tobytes()
    r = EventRunner(p, "streaming", 2, ["stem", "conv"], ["conv", "fc"], v_init=[0.6, -0.5])
    (state,) = r.initial_states(2)
    assert state.shape == (2, 80) and state.flags.c_contiguous and state.flags.writeable
    assert (state[:, :32] == np.float32(0.6)).all() and (state[:, 32:] == -0.5).all()
    for layout in ("streaming", "time-folded"):
        _, c0 = EventRunner(p, layout, 2, ["stem", "conv"], ["conv", "fc"]).run(x)
        _, c6 = EventRunner(p, layout, 2, ["stem", "conv"], ["conv", "fc"], v_init=[0.6, 0.0]).run(x)
        assert c0["stem"][0].tolist() == [0, 0] and c6["stem"][0].tolist() == [32, 32], layout


def test_tiny_onnx_writer_is_valid_onnx_and_runs():
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort

    from edgeticket.device.profile.tiny_onnx import initializer, model, node, value_info

    w = np.random.RandomState(0).randn(4, 3, 3, 3).astype(np.float32)
    data = model([node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [value_info("x", [2, 3, 5, 5])],
                 [value_info("y", [2, 4, 5, 5])], [initializer("w", w)])
    m = onnx.load_from_string(data)
    onnx.checker.check_model(m, full_check=True)
    assert [n.op_type for n in m.graph.node] == ["Conv"] and list(m.graph.node[0].attribute[0].ints) == [1, 1, 1, 1]
    x = np.random.RandomState(1).randn(2, 3, 5, 5).astype(np.float32)
    y = ort.InferenceSession(data).run(None, {"x": x})[0]
    ref = np.zeros((2, 4, 5, 5), np.float32)  # direct convolution
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for i in range(5):
        for j in range(5):
            ref[:, :, i, j] = np.einsum("bchw,ochw->bo", xp[:, :, i:i + 3, j:j + 3], w)
    assert np.allclose(y, ref, atol=1e-4)


def test_a_missing_extra_is_one_line_naming_the_pip_command(tmp_path):
    r = _blocked_python("from edgeticket.cli import main\nmain(sys.argv[1:])", "search", "--out", str(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "pip install 'edgeticket[search]' && pip install --no-deps spikingjelly==2.0.0" in r.stderr
    assert not list(tmp_path.iterdir())


def test_written_files_and_folders_follow_the_umask(ticket, tmp_path):
    old = os.umask(0o022)
    try:
        m = api.compile_ticket(ticket, "host", out=tmp_path / "b", name="u", backend="onnxruntime,event",
                               validation_n=8, log=lambda s: None)
        p = store.write_json(tmp_path / "x" / "r.json", {"a": 1})
        os.umask(0o027)
        q = store.write_json(tmp_path / "y.json", {"a": 1})
    finally:
        os.umask(old)
    d = Path(m["bundle_dir"])
    modes = {str(f.relative_to(d)): stat.S_IMODE(f.stat().st_mode) for f in [d, *d.rglob("*")]}
    assert modes["."] == 0o755 and modes["manifest.json"] == 0o644 and modes["model.onnx"] == 0o644
    assert modes["event"] == 0o755 and modes["event/model.etsp"] == 0o644
    assert all(mode & 0o044 == 0o044 for mode in modes.values()), modes  # readable by group and others
    assert stat.S_IMODE(p.stat().st_mode) == 0o644 and stat.S_IMODE(q.stat().st_mode) == 0o640


def test_atomic_writes_fsync_the_folder_after_the_rename(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(store, "fsync_dir", lambda d: synced.append((Path(d), (tmp_path / "f.json").exists())))
    store.write_json(tmp_path / "f.json", {})
    assert synced == [(tmp_path, True)]


def test_calibration_records_go_to_the_user_folder_with_packaged_ones_beneath(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGETICKET_CALIBRATION", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    user = tmp_path / "data" / "edgeticket" / "calibration"
    assert calibration.user_dir() == user
    packaged = calibration.PACKAGED / "host.json"
    before = packaged.read_bytes()
    shipped = calibration.newest_record("host")
    assert shipped is not None and shipped["target"] == "host"  # read beneath the (empty) user folder
    newer = dict(shipped, date="2999-01-01T00:00:00Z")
    path = calibration.append_record("host", newer)
    assert path == user / "host.json" and packaged.read_bytes() == before  # nothing written into the install
    assert calibration.newest_record("host")["date"] == newer["date"]
    assert len(json.loads(path.read_text())["records"]) == 1  # the packaged records are not copied
    other = tmp_path / "elsewhere"
    assert calibration.append_record("host", newer, other) == other / "host.json"
    monkeypatch.setenv("EDGETICKET_CALIBRATION", str(other))
    assert calibration.user_dir() == other
    (tmp_path / "a-file").write_text("")
    with pytest.raises(EdgeTicketError, match="cannot write the calibration record.*--calibration-dir"):
        calibration.append_record("host", newer, tmp_path / "a-file" / "sub")


def test_a_users_target_folder_adds_boards_and_replaces_shipped_ones(tmp_path, monkeypatch):
    rpi4 = (targets.PACKAGED / "rpi4.toml").read_text()
    (tmp_path / "rpi4.toml").write_text(rpi4.replace('description = "', 'description = "MINE '))
    (tmp_path / "my-board.toml").write_text(rpi4.replace('name = "rpi4"', 'name = "my-board"'))
    monkeypatch.setenv("EDGETICKET_TARGETS", str(tmp_path))
    assert {"my-board", "rpi4", "host"} <= set(targets.available())
    assert targets.load_target("rpi4").description.startswith("MINE ")
    r = CliRunner().invoke(main, ["targets"])
    assert r.exit_code == 0 and "my-board" in r.output
    with pytest.raises(EdgeTicketError, match="unknown target 'nope'.*looked in"):
        targets.load_target("nope")


@pytest.fixture(scope="module")
def host_bundle(ticket, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles")
    return Path(api.compile_ticket(ticket, "host", out=out, name="h", backend="onnxruntime,event", validation_n=8,
                                   log=lambda s: None)["bundle_dir"])


def _profile_refused(bundle: Path, *args: str) -> str:
    before = sorted(p.name for p in bundle.rglob("*"))
    r = CliRunner().invoke(main, ["profile", str(bundle), "--runs", "2", *args])
    assert r.exit_code == 2 and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert sorted(p.name for p in bundle.rglob("*")) == before  # nothing written
    return r.output


def test_backend_libraries_that_cannot_run_here_are_one_line_errors(host_bundle, tmp_path, monkeypatch):
    d = tmp_path / "copy"
    shutil.copytree(host_bundle, d)
    m = json.loads((d / "manifest.json").read_text())
    # a TVM library for another CPU
    m["backends"]["tvm"] = {"built": True, "library": "tvm/rpi4.so", "arch": "aarch64"}
    (d / "tvm").mkdir()
    (d / "tvm" / "rpi4.so").write_bytes(b"\x7fELF an aarch64 library")
    m["files"]["tvm/rpi4.so"] = hashlib.sha256((d / "tvm" / "rpi4.so").read_bytes()).hexdigest()  # listed, as compile does
    (d / "manifest.json").write_text(json.dumps(m))
    out = _profile_refused(d, "--backend", "tvm")
    assert "built for aarch64" in out and "--target host" in out
    # no event backend in the bundle
    m["backends"]["event"] = {"built": False, "reason": "resnet"}
    (d / "manifest.json").write_text(json.dumps(m))
    assert "re-compile it with --backend event" in _profile_refused(d, "--backend", "event")
    # the event library missing from the folder
    (host_bundle.parent / "gone").mkdir()
    e = host_bundle.parent / "gone" / "h"
    shutil.copytree(host_bundle, e)
    lib = next((e / "event").glob("*.so"))
    lib.unlink()
    assert f"{lib.relative_to(e)} is missing" in _profile_refused(e, "--backend", "event")
    # kernels built for another CPU, and no compiler here to build them
    ev = m["backends"]["event"] = json.loads((host_bundle / "manifest.json").read_text())["backends"]["event"]
    ev["library"] = dict(ev["library"], arch="aarch64")
    (d / "manifest.json").write_text(json.dumps(m))
    monkeypatch.setenv("EDGETICKET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    out = _profile_refused(d, "--backend", "event")
    assert "built for aarch64" in out and "install a C compiler" in out and "--target host" in out


def test_event_kernels_built_for_another_cpu_are_rebuilt_here_from_the_package_source(ticket, tmp_path, monkeypatch):
    """A bundle for an ARM board still runs its event backend on this machine: the .etsp file is the same on
    every CPU, and the kernels are built here from the packaged C source when the bundle's build is for
    another CPU (or was not cross-built)."""
    m = api.compile_ticket(ticket, "rpi4", out=tmp_path, name="arm", backend="onnxruntime,event", validation_n=8,
                           log=lambda s: None)
    lib = m["backends"]["event"]["library"]
    assert lib is None or lib["arch"] == "aarch64"
    monkeypatch.setenv("EDGETICKET_CACHE", str(tmp_path / "cache"))
    here = api.profile(m["bundle_dir"], backend="event", runs=2, warmup=0, out=tmp_path / "e.json",
                       log=lambda s: None)
    ref = api.profile(m["bundle_dir"], runs=2, warmup=0, out=tmp_path / "o.json", log=lambda s: None)
    assert here["snn"]["spike_rates"] == ref["snn"]["spike_rates"]
    assert list((tmp_path / "cache").glob("libetevent-*.so"))  # built here, into the user cache


def test_bad_profile_settings_and_unwritable_places_are_one_line_errors(host_bundle, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    for args, needle in ((["--threads", "0"], "--threads must be >= 1"),
                         (["--out", str(tmp_path / "a-file" / "p.json")], "give a writable file with --out"),
                         (["--out", str(tmp_path / "a-file" / "sub" / "p.json")], "give a writable file with --out")):
        assert needle in _profile_refused(host_bundle, *args)
    r = CliRunner().invoke(main, ["predict", str(host_bundle), "--target", "host", "--batch", "0"])
    assert r.exit_code == 2 and "--batch must be >= 1" in r.output
    bad = tmp_path / "cal"
    bad.mkdir()
    (bad / "host.json").write_text(json.dumps({"format_version": 1, "target": "host", "records": [1, 2]}))
    r = CliRunner().invoke(main, ["check", str(host_bundle), "--target", "host", "--calibration-dir", str(bad)])
    assert r.exit_code == 2 and "not a calibration file" in r.output and "Traceback" not in r.output
    from edgeticket.device.native import build

    with pytest.raises(EdgeTicketError, match="EDGETICKET_CACHE to a writable folder"):
        build(tmp_path / "a-file" / "cache" / "lib.so")
