"""The event-driven backend (exactness against onnxruntime, aarch64 build under qemu-user, the cost
model's choice) and the TVM backend (host build validated, cross builds for every ARM target)."""

from __future__ import annotations

import json
from pathlib import Path
import os
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import tiny_cfg
from edgeticket import api
from edgeticket.device.runners import open_runner
from edgeticket.formats import bundle
from edgeticket.cli import main
from edgeticket.compile.deploy import lif_layers, synaptic_layers, to_deploy
from edgeticket.compile.eventnet import program
from edgeticket.compile.onnx_export import export
from edgeticket.device.runners.event_runner import EventRunner
from edgeticket.formats.etsp import csc_delta8, write_etsp
from edgeticket.models import REGISTRY
from edgeticket.device.runners.onnx_runner import OnnxRunner, make_session

REQUIRE_CROSS = os.environ.get("EDGETICKET_REQUIRE_CROSS") == "1"  # CI installs the tools: skipping is a failure
HAVE_CROSS = bool(shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64"))
needs_cross = pytest.mark.skipif(not HAVE_CROSS and not REQUIRE_CROSS,
                                 reason="needs gcc-aarch64-linux-gnu and qemu-user (make cross-tools)")


def _decode(colptr, gaps, vals, shape):
    m = np.zeros(shape, np.float32)
    for c in range(shape[0]):
        row = -1
        for j in range(colptr[c], colptr[c + 1]):
            row += int(gaps[j])
            m[c, row] += vals[j]
    return m


def test_csc_delta8_round_trips_with_fillers_and_empty_columns():
    rng = np.random.RandomState(0)
    m = rng.randn(40, 700).astype(np.float32) * (rng.rand(40, 700) < 0.02)
    m[3] = 0.0  # an all-zero column
    m[5, 699] = 1.5  # a first gap of 700: two fillers
    colptr, gaps, vals = csc_delta8(m)
    assert np.array_equal(_decode(colptr, gaps, vals, m.shape), m)
    assert colptr[4] == colptr[3]
    assert (vals[gaps == 255] == 0).any()  # fillers were needed and carry 0


def _net(arch, sparsity, seed, zero_channel=False, silent=False, in_ch=1, size=8):
    torch.manual_seed(seed)
    m = REGISTRY[arch](10, in_ch, size, timesteps=4)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.8, 1.6)
                mod.bias.uniform_(-0.1, 0.3)
        for n in m.prunable():
            w = dict(m.named_parameters())[n]
            k = int(sparsity * w.numel())
            if k:
                thr = w.abs().flatten().kthvalue(k).values
                w.mul_((w.abs() > thr).float())
        if zero_channel:  # an output channel with no weights at all (an all-zero row of the CSC matrices)
            next(f for f in m.features if hasattr(f, "conv")).conv.weight[1].zero_()
        if silent:
            m.stem.bn.bias.fill_(-50.0)  # no stem spikes at any timestep: every later layer sees no events
    m.eval()
    return m


def _both(model, layout, x, tmp_path, T=4):
    shape = tuple(x.shape[1:])
    net = to_deploy(model, shape)
    proto, _, _ = export(net, layout, T, shape, 17, model.prunable(), "packed", "fp32")
    ort = OnnxRunner(make_session(proto.SerializeToString()), layout, T)
    p = tmp_path / "m.etsp"
    lif = lif_layers(net)[0]
    write_etsp(p, shape, T, lif.tau, lif.v_threshold, 10, program(net, shape))
    sp = EventRunner(p, layout, T, [l.name.replace(".", "_") for l in lif_layers(net)],
                      [s.replace(".", "_") for s in synaptic_layers(net)])
    return ort.run(x), sp.run(x)


@pytest.mark.parametrize("layout", ["time-folded", "streaming"])
@pytest.mark.parametrize("arch,sparsity", [("tiny", 0.0), ("tiny", 0.5), ("tiny", 0.9), ("tiny", 0.98), ("vgg5", 0.9)])
def test_event_backend_is_spike_exact_against_onnxruntime(tmp_path, layout, arch, sparsity):
    model = _net(arch, sparsity, seed=1, zero_channel=True)
    x = torch.randn(6, 1, 8, 8).numpy() * 2
    (ol, oc), (sl, sc) = _both(model, layout, x, tmp_path)
    assert set(oc) == set(sc)
    total = 0
    for k in oc:
        assert np.array_equal(oc[k], sc[k]), k
        total += oc[k].sum()
    assert total > 0  # the comparison saw spikes
    assert np.abs(ol - sl).max() <= 1e-4 * max(1.0, np.abs(ol).max())


@pytest.mark.parametrize("layout", ["time-folded", "streaming"])
@pytest.mark.parametrize("arch,sparsity,size", [("resnet8", 0.0, 16), ("resnet8", 0.9, 16), ("resnet19", 0.95, 8)])
def test_event_backend_runs_resnets_spike_exact(tmp_path, layout, arch, sparsity, size):
    """Residual blocks: the shortcut conv's currents (downsampling blocks) or the block input's spikes (identity)
    added before the block's LIF; global average pooling; resnet19's hidden linear layer with a LIF on pooled
    values. Spike counts of every layer and step equal onnxruntime's in both layouts."""
    model = _net(arch, sparsity, seed=6, in_ch=3, size=size)
    prog = program(to_deploy(model, (3, size, size)), (3, size, size))
    assert any(r.get("join") is not None for r in prog) and prog[-1]["kind"] in (3, 5)
    x = torch.randn(5, 3, size, size).numpy() * 2
    (ol, oc), (sl, sc) = _both(model, layout, x, tmp_path)
    assert set(oc) == set(sc)
    assert all(np.array_equal(oc[k], sc[k]) for k in oc), [k for k in oc if not np.array_equal(oc[k], sc[k])]
    assert sum(oc[k].sum() for k in oc) > 0 and np.abs(ol - sl).max() <= 1e-4 * max(1.0, np.abs(ol).max())


@pytest.mark.parametrize("cout,density,starts", [(10, 0.1, 0), (10, 1.0, 0), (300, 0.15, 1), (300, 1.0, 1),
                                                  (2100, 1.0, 2)])
def test_every_column_start_form_and_encoding_adds_the_right_weights(tmp_path, cout, density, starts):
    """A classifier read by a numpy reference: every pixel of a 6x6 stem fires at steps 1 and 3 (bias 1.2, tau 4/3,
    threshold 1), so the logits are the bias at steps 0 and 2 and the bias plus all 36 columns at 1 and 3, each
    step's double sum rounded to float, summed over the steps in float. Covers the three forms of column starts
    (u8 counts, u16 offsets, u32: chosen by how many values a group of columns holds) and both encodings."""
    from edgeticket.formats import etsp

    rng = np.random.default_rng(7)
    W = (rng.standard_normal((36, cout)) * (rng.random((36, cout)) < density)).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    stem = {"kind": etsp.CONV_IMAGE, "cin": 1, "hin": 6, "win": 6, "cout": 1, "hout": 6, "wout": 6, "k": 1,
            "stride": 1, "pad": 0, "lif": 1, "matrix": np.zeros((1, 1), np.float32), "bias": [1.2]}
    fc = {"kind": etsp.LINEAR_SPIKES, "cin": 36, "hin": 1, "win": 1, "cout": cout, "hout": 1, "wout": 1, "k": 1,
          "stride": 1, "pad": 0, "lif": 0, "matrix": W, "bias": bias}
    p = tmp_path / "m.etsp"
    etsp.write_etsp(p, (1, 6, 6), 4, 4 / 3, 1.0, cout, [stem, fc])
    r = EventRunner(p, "time-folded", 4, ["stem"], ["fc"], threads=1)
    assert r.L.lib.et_layer_starts(r.net, 1) == starts
    assert r.L.lib.et_layer_encoding(r.net, 1) == (1 if density == 1.0 else 0)
    logits, counts = r.run(np.zeros((1, 1, 6, 6), np.float32))
    assert counts["stem"][:, 0].tolist() == [0, 36, 0, 36]
    quiet = bias.astype(np.float64)
    busy = quiet.copy()
    for j in range(36):  # the kernels' order: the bias, then the inputs in ascending order
        busy += W[j].astype(np.float64)
    want = np.zeros(cout, np.float32)
    for step in (quiet, busy, quiet, busy):
        want += step.astype(np.float32)
    assert np.array_equal(logits[0].view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("arch,size", [("vgg5", 16), ("resnet8", 16), ("resnet19", 8)])
def test_no_layer_writes_over_an_output_still_read(tmp_path, arch, size):
    """The kernels' buffer plan: a layer's output stays until its last reader (src or join) is done, and a conv's
    input also through the next layer (the conv clears its marks from those lists while the next layer runs: a
    resnet8 once crashed when the shortcut's input was overwritten under it). Pinned on the plan itself, since the
    overwrite only shows when the threads happen to interleave that way."""
    from edgeticket.formats import etsp

    prog = program(to_deploy(_net(arch, 0.9, seed=9, size=size), (1, size, size)), (1, size, size))
    p = tmp_path / "m.etsp"
    write_etsp(p, (1, size, size), 4, 4 / 3, 1.0, 10, prog)
    r = EventRunner(p, "time-folded", 4, [str(i) for i in range(sum(x["lif"] for x in prog))],
                    [str(i) for i in range(sum(x["kind"] in (1, 3, 5) for x in prog))])
    buf = [r.L.lib.et_layer_buffer(r.net, i) for i in range(len(prog))]
    for i, rec in enumerate(prog):
        reads = [j for j in (rec.get("src"), rec.get("join")) if j is not None]
        for j in reads:  # nothing between j and this reader (inclusive) writes j's buffer
            until = i + 1 if rec["kind"] == etsp.CONV_SPIKES and j == rec.get("src") else i
            assert all(buf[k] != buf[j] for k in range(j + 1, min(until, len(prog) - 1) + 1)), (i, j, buf)


def test_two_fully_pruned_layers_of_one_shape_export_and_run(tmp_path):
    """Global pruning at ~98% can empty two layers of one shape; torch's exporter merged their equal (all-zero)
    weights into one initializer and compile failed on the missing one (a traceback). Both stay, spike-exact."""
    model = _net("resnet8", 0.5, seed=10, in_ch=3, size=16)
    with torch.no_grad():
        model.layers[0].conv1.conv.weight.zero_()
        model.layers[0].conv2.weight.zero_()
    x = torch.randn(3, 3, 16, 16).numpy() * 2
    (ol, oc), (sl, sc) = _both(model, "time-folded", x, tmp_path)
    assert all(np.array_equal(oc[k], sc[k]) for k in oc) and sum(v.sum() for v in oc.values()) > 0


def test_a_join_that_does_not_fit_is_one_line(tmp_path):
    """The loader trusts the joins: a join to a later layer, or of another shape, is refused before it."""
    from edgeticket.errors import EdgeTicketError
    from edgeticket.formats import etsp

    model = _net("resnet8", 0.5, seed=6, in_ch=3, size=16)
    prog = program(to_deploy(model, (3, 16, 16)), (3, 16, 16))
    i = next(k for k, r in enumerate(prog) if r.get("join") is not None)
    for bad in (i + 1, next(k for k, r in enumerate(prog) if r["cout"] != prog[i]["cout"])):
        p = tmp_path / f"bad{bad}.etsp"
        etsp.write_etsp(p, (3, 16, 16), 4, 4 / 3, 1.0, 10, [dict(r, join=bad) if k == i else r
                                                              for k, r in enumerate(prog)])
        with pytest.raises(EdgeTicketError, match=f"layer {i} joins layer {bad}: a joined layer is an earlier one"):
            etsp.check_header(p)


@pytest.mark.parametrize("arch", ["vgg5", "resnet8"])
def test_more_steps_than_one_merged_pass_are_spike_exact(tmp_path, arch):
    """A conv decodes each input's columns once for the steps it fires in, 8 steps a pass: T=12 takes two passes
    (8 + 4), with the input map cleared and marked again between them."""
    model = _net(arch, 0.8, seed=8, size=16)
    x = torch.randn(4, 1, 16, 16).numpy() * 2
    (ol, oc), (sl, sc) = _both(model, "time-folded", x, tmp_path, T=12)
    assert all(v.shape[0] == 12 for v in oc.values()) and sum(v.sum() for v in oc.values()) > 0
    assert all(np.array_equal(oc[k], sc[k]) for k in oc), [k for k in oc if not np.array_equal(oc[k], sc[k])]
    assert np.abs(ol - sl).max() <= 1e-4 * max(1.0, np.abs(ol).max())


def test_event_backend_with_no_spikes_at_all(tmp_path):
    model = _net("tiny", 0.5, seed=2, silent=True)
    x = torch.randn(3, 1, 8, 8).numpy()
    (ol, oc), (sl, sc) = _both(model, "time-folded", x, tmp_path)
    assert all(v.sum() == 0 for v in sc.values())
    assert all(np.array_equal(oc[k], sc[k]) for k in oc)
    assert np.allclose(ol, sl, atol=1e-5)  # logits = the classifier bias x T


def _states_and_counts(runner, x, threads_per_call_batch=None):
    """(logits, membrane states, per-layer counts) of x, run whole or one sample per call (a team per sample)."""
    if threads_per_call_batch is None:
        st = runner.initial_states(len(x))[0]
        lg, counts = runner._call(x, 4, st)
        return lg, st, counts
    parts = []
    for i in range(len(x)):
        st = runner.initial_states(1)[0]
        lg, counts = runner._call(x[i:i + 1], 4, st)
        parts.append((lg, st, counts))
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            [np.concatenate([p[2][j] for p in parts], axis=-1) for j in range(len(parts[0][2]))])


@pytest.mark.parametrize("arch,sparsity", [("tiny", 0.0), ("tiny", 0.9), ("vgg5", 0.6), ("vgg5", 0.97),
                                           ("resnet8", 0.9)])
def test_vector_team_and_portable_kernels_agree_bit_for_bit(tmp_path, arch, sparsity):
    """The kernels' exactness argument: every neuron receives its bias, then its inputs in one fixed order,
    whatever the column encoding (bit masks where dense, row lists where sparse: both occur in these nets), the
    instruction set (this machine's vector build vs the portable build, which has no vector path) or the number
    of threads sharing a sample. So logits, membranes and counts are equal bit for bit."""
    from edgeticket.device.native import build

    size = {"tiny": 8, "vgg5": 28}.get(arch, 16)
    model = _net(arch, sparsity, seed=4, size=size)
    net = to_deploy(model, (1, size, size))
    p = tmp_path / "m.etsp"
    write_etsp(p, (1, size, size), 4, 4 / 3, 1.0, 10, program(net, (1, size, size)))
    lifs = [l.name.replace(".", "_") for l in lif_layers(net)]
    syns = [s.replace(".", "_") for s in synaptic_layers(net)]
    portable = build(tmp_path / "libportable.so", "cc", [])  # no -march: x86-64 baseline, no AVX-512
    x = torch.randn(3, 1, size, size).numpy() * 2
    ref_runner = EventRunner(p, "time-folded", 4, lifs, syns, threads=1)
    encodings = {ref_runner.L.lib.et_layer_encoding(ref_runner.net, i) for i in range(ref_runner.header["nlayers"])}
    assert encodings - {-1} == {1} if sparsity == 0.0 else (0 in encodings) == (sparsity > 0.8)  # masks if dense
    runs = {"vector": _states_and_counts(EventRunner(p, "time-folded", 4, lifs, syns, threads=1), x),
            "portable": _states_and_counts(EventRunner(p, "time-folded", 4, lifs, syns, library=portable,
                                                       threads=1), x),
            "team of 2": _states_and_counts(EventRunner(p, "time-folded", 4, lifs, syns, threads=2), x, 1)}
    ref = runs.pop("vector")
    assert sum(c.sum() for c in ref[2]) > 0
    assert ref_runner._call(x[:0], 4, ref_runner.initial_states(0)[0])[0].shape == (0, 10)  # an empty batch: nothing
    for name, (lg, st, counts) in runs.items():
        assert np.array_equal(lg.view(np.uint32), ref[0].view(np.uint32)), name
        assert np.array_equal(st.view(np.uint32), ref[1].view(np.uint32)), name
        assert all(np.array_equal(a, b) for a, b in zip(counts, ref[2])), name


def test_overlapping_max_pool_is_spike_exact(tmp_path):
    """A 3x3 / stride 2 max-pool: each input lies in up to four windows (the kernels once assumed one)."""
    from spikingjelly.activation_based import layer, neuron

    from edgeticket.models.imported import ImportedNet

    torch.manual_seed(5)
    net = torch.nn.Sequential(layer.Conv2d(1, 8, 3, padding=1), neuron.LIFNode(), layer.MaxPool2d(3, 2),
                              layer.Conv2d(8, 8, 3, padding=1), neuron.LIFNode(), layer.Flatten(),
                              layer.Linear(8 * 4 * 4, 10))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[3].weight.mul_(4.0)
    shape = (1, 9, 9)
    model = ImportedNet(net, 4, "tests:overlapping-pool").eval()
    (ol, oc), (sl, sc) = _both(model, "time-folded", torch.rand(4, *shape).numpy() * 2, tmp_path)
    assert set(oc) == set(sc) and all(np.array_equal(oc[k], sc[k]) for k in oc)
    assert all(v.sum() > 0 for v in oc.values()), {k: float(v.sum()) for k, v in oc.items()}  # spikes everywhere
    assert np.abs(ol - sl).max() <= 1e-4 * max(1.0, np.abs(ol).max())


def test_event_file_errors_are_one_line(tmp_path):
    from edgeticket.errors import EdgeTicketError

    bad = tmp_path / "bad.etsp"
    bad.write_bytes(b"ETSP" + b"\0" * 60)
    with pytest.raises(EdgeTicketError, match="not an .etsp v1 or v2 network file"):
        EventRunner(bad, "time-folded", 4, [], [])


@needs_cross
@pytest.mark.parametrize("arch,size", [("tiny", 8), ("resnet8", 16)])
def test_aarch64_build_matches_the_host_under_qemu(tmp_path, arch, size):
    from edgeticket.device.native import emulated_check

    model = _net(arch, 0.9, seed=3, size=size)
    net = to_deploy(model, (1, size, size))
    x = torch.randn(4, 1, size, size).numpy() * 2
    p = tmp_path / "m.etsp"
    write_etsp(p, (1, size, size), 4, 4 / 3, 1.0, 10, program(net, (1, size, size)))
    lifs = [l.name.replace(".", "_") for l in lif_layers(net)]
    syns = [s.replace(".", "_") for s in synaptic_layers(net)]
    hl, hc = EventRunner(p, "time-folded", 4, lifs, syns).run(x)
    al, asp, aev = emulated_check("aarch64", "aarch64-linux-gnu-gcc", ["-mcpu=cortex-a72"], p, x, 4, 10, len(lifs),
                                  len(syns), tmp_path)
    assert hc[lifs[0]].sum() > 0
    for i, n in enumerate(lifs):
        assert np.array_equal(asp[i], hc[n])
    for i, n in enumerate(syns):
        assert np.array_equal(aev[i], hc[f"events__{n}"])
    assert np.abs(al - hl).max() <= 1e-5 * max(1.0, np.abs(hl).max())


def test_cost_model_picks_event_only_when_events_are_few():
    from edgeticket.compile.backends import choose_default
    from edgeticket.device.targets import load_target

    layers = [{"name": "stem.conv", "kind": "conv", "input": "image", "nnz": 100, "out_positions": 64,
               "macs_per_sample_dense": 200 * 64, "mean_fanout_nonzero": 0},
              {"name": "features.0.conv", "kind": "conv", "input": "spikes", "nnz": 2000, "out_positions": 64,
               "macs_per_sample_dense": 40000 * 64 * 4, "mean_fanout_nonzero": 2000 * 64 / 1024}]
    base = {"timesteps": 4, "layout": "time-folded", "layers": layers, "settings": {"batch": 1},
            "lif": {"state_shapes": [[16, 8, 8], [16, 8, 8]]}, "graph": {"nodes": 40, "op_types": {}}}
    t = load_target("host")
    few = dict(base, backends={"event": {"built": True, "events_per_sample": {"events__features_0_conv": 20.0}}})
    many = dict(base, backends={"event": {"built": True, "events_per_sample": {"events__features_0_conv": 40000.0}}})
    rec = {"conv_gflops": 20.0, "conv_fixed_s": 1e-6, "gemm_gflops": 10.0, "gbytes_per_s": 5.0,
           "node_overhead_s": 1e-6, "call_overhead_s": 1e-5}
    a, b = choose_default(few, t, rec), choose_default(many, t, rec)
    assert a["default"] == "event" and b["default"] == "onnxruntime"
    assert a["predicted_latency_s"]["event"] < b["predicted_latency_s"]["event"]
    assert "synaptic ops" in a["reason"] and a["pick"] == "cost model"  # another target: nothing to time


def test_compile_with_event_backend_and_profile_side_by_side_cli(ticket, tmp_path):
    r = CliRunner().invoke(main, ["compile", str(ticket), "--target", "host", "--out", str(tmp_path), "--name", "b",
                                  "--backend", "event", "--validation-n", "16", "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    sp = m["backends"]["event"]
    assert sp["built"] and sp["validation"]["spikes_equal"] and sp["validation"]["events_equal"]
    assert (tmp_path / "b" / sp["net_file"]).is_file() and (tmp_path / "b" / sp["library"]["file"]).is_file()
    assert sp["memory"]["weights_resident_bytes"] > 0
    picked = m["backends"]  # the host: the backends were timed at compile, the fastest is the default
    assert picked["pick"] == "measured" and set(picked["measured_latency_s"]) == {"onnxruntime", "event"}
    assert picked["default"] == min(picked["measured_latency_s"], key=picked["measured_latency_s"].get)
    assert "measured on this machine" in picked["reason"]
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["backends"]["default"] == picked["default"]
    r = CliRunner().invoke(main, ["profile", str(tmp_path / "b"), "--backend", "all", "--runs", "3", "--warmup", "1",
                                  "--json"])
    assert r.exit_code == 0, r.output
    p = json.loads(r.stdout)
    assert set(p["backends"]) == {"onnxruntime", "event"}
    assert p["backends"]["event"]["spike_counts_equal_to_onnxruntime"] is True
    assert p["backends"]["event"]["peak_rss_bytes"] > 0
    assert Path(p["profile_json"]) == tmp_path / "b" / "profile.json"  # was written into a deleted temp folder
    assert json.loads(Path(p["profile_json"]).read_text())["kind"] == "profile-backends"


def test_bad_backend_is_a_one_line_error(ticket, tmp_path):
    r = CliRunner().invoke(main, ["compile", str(ticket), "--target", "host", "--out", str(tmp_path),
                                  "--backend", "cuda-magic"])
    assert r.exit_code == 2 and "unknown backend 'cuda-magic'" in r.output and "Traceback" not in r.output
    assert not list(tmp_path.iterdir())


tvm = pytest.importorskip("tvm") if os.environ.get("EDGETICKET_REQUIRE_TVM") != "1" else __import__("tvm")


@pytest.mark.parametrize("layout", ["time-folded", "streaming"])
def test_tvm_host_build_matches_onnxruntime_and_profiles(ticket, tmp_path, layout):
    m = api.compile_ticket(ticket, "host", out=tmp_path, name="t", backend="onnxruntime,tvm", validation_n=16,
                           layout=layout, log=lambda s: None)
    tv = m["backends"]["tvm"]
    x, _ = bundle.validation_samples(m["bundle_dir"])
    lo, co = open_runner(m["bundle_dir"], m).run(x)
    lt, ct = open_runner(m["bundle_dir"], m, backend="tvm").run(x)
    assert np.allclose(lo, lt, atol=1e-4) and all(np.array_equal(co[k], ct[k]) for k in ct)
    assert tv["built"] and tv["validation"]["spikes_equal"] and (tmp_path / "t" / tv["library"]).is_file()
    r = CliRunner().invoke(main, ["profile", str(tmp_path / "t"), "--backend", "tvm", "--runs", "2", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["backend"] == "tvm"


@needs_cross
def test_tvm_cross_builds_for_every_arm_target(ticket, tmp_path):
    from edgeticket.compile.tvm_build import build_module, export, relax_module, tvm_target
    from edgeticket.device.targets import load_all

    m = api.compile_ticket(ticket, "host", out=tmp_path, name="o", backend="onnxruntime", validation_n=8,
                           log=lambda s: None)
    mod = relax_module((tmp_path / "o" / "model.onnx").read_bytes())
    arm = [t for t in load_all() if t.arch == "aarch64"]
    assert len(arm) >= 5
    for t in arm:
        ex = build_module(mod, tvm_target(t, tvm))
        out = tmp_path / f"{t.name}.so"
        export(ex, out, t)
        head = out.read_bytes()[:20]
        assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183, t.name  # EM_AARCH64
    assert m["backends"]["onnxruntime"]["built"]


def _ort_bundle(ticket, tmp_path, layout="time-folded"):
    m = api.compile_ticket(ticket, "host", out=tmp_path, name=f"o-{layout}", backend="onnxruntime", validation_n=8,
                           layout=layout, log=lambda s: None)
    return m, (tmp_path / f"o-{layout}" / "model.onnx").read_bytes()


def test_tvm_weight_decode_is_folded_before_import(ticket, tmp_path):
    import onnx
    import onnxruntime as ort

    from edgeticket.compile.tvm_build import fold_weights

    _, data = _ort_bundle(ticket, tmp_path)
    ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
    folded = fold_weights(data)
    fops = {n.op_type for n in onnx.load_from_string(folded).graph.node}
    assert "CumSum" in ops and not fops & {"CumSum", "ScatterElements", "BitShift"}, (ops, fops)
    x = np.random.RandomState(0).rand(3, 1, 8, 8).astype(np.float32)
    a = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(folded, providers=["CPUExecutionProvider"])
    for u, v in zip(a.run(None, {"input": x}), b.run(None, {"input": x})):
        assert np.array_equal(u, v)


@pytest.mark.parametrize("layout", ["time-folded", "streaming"])
def test_tvm_default_schedules_cover_every_kernel(ticket, tmp_path, layout):
    """Every PrimFunc leaves the pipeline scheduled (TVM's own CPU pipeline schedules none: serial scalar loops),
    the convs with constant weights in the blocked layout (tiny: 8 channels -> HWIO path, 16 -> blocked)."""
    from tvm.relax.backend.cpu_generic import pipeline as cpu
    from tvm.s_tir import dlight as dl

    from edgeticket.compile.tvm_build import host_llvm, relax_module
    from edgeticket.compile.tvm_schedule import _rules

    _, data = _ort_bundle(ticket, tmp_path, layout)
    mod = relax_module(data)
    target = tvm.target.Target(host_llvm(tvm))
    with target:
        mod = tvm.transform.Sequential(cpu.library_dispatch_passes(target) + cpu.legalize_passes(target)
                                       + [dl.ApplyDefaultSchedule(*_rules())])(mod)
    funcs = {gv.name_hint: f for gv, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc)}
    unscheduled = [n for n, f in funcs.items() if not bool(f.attrs.get("tirx.is_scheduled", False))]
    assert funcs and not unscheduled, unscheduled
    assert any(n.startswith("conv2d_blocked") for n in funcs) and any("parallel" in f.script() for f in funcs.values())


def test_conv_register_tile_fits_and_divides():
    from edgeticket.compile.tvm_schedule import ACCUMULATORS, _conv_tile

    for lanes in (4, 8):
        for F, H, W in [(32, 28, 28), (64, 14, 14), (128, 7, 7), (512, 4, 4), (512, 2, 2), (16, 1, 1), (10, 3, 3)]:
            fi, yi, xi = _conv_tile(F, H, W, lanes)
            assert F % fi == 0 and H % yi == 0 and W % xi == 0
            assert max(fi // lanes, 1) * yi * xi <= ACCUMULATORS
    assert _conv_tile(128, 7, 7, 8) == (8, 1, 7)  # a prime width: one vector of channels x the whole row
    assert _conv_tile(512, 4, 4, 8) == (16, 1, 4)


def test_tvm_runtime_uses_every_cpu_unless_told(monkeypatch):
    from edgeticket.device.runners.tvm_runner import set_threads

    monkeypatch.delenv("TVM_NUM_THREADS", raising=False)
    assert set_threads() == (os.cpu_count() or 1) == int(os.environ["TVM_NUM_THREADS"])
    assert set_threads(1) == 1 and os.environ["TVM_NUM_THREADS"] == "1"
