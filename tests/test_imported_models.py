"""A user's own spikingjelly network (issue 14): `--arch package.module:factory`, the factory called with the
arguments it accepts, the run named and recorded by its import path, then compiled (both layouts, validated against
the model as trained) and profiled with no naming convention; a layer outside compile's supported set, a bad import
path or factory is one line, nothing written."""

import json

import pytest
from click.testing import CliRunner

from edgeticket.cli import main
from edgeticket.formats import names

from conftest import cli_args, tiny_cfg
from test_hostile import refused


def _search(out, arch, **over):
    return CliRunner().invoke(main, ["search", *cli_args(arch=arch, rounds=1, **over), "--device", "cpu",
                                     "--out", str(out), "-q"])


USER_NETS = ["user_models:if_vgg", "user_models:PlifNet", "user_models:lif_vgg", "user_models:sew_add",
             "user_models:sew_and", "user_models:sew_iand", "user_models:spiking_resnet"]


def _searched(tmp_path, arch):
    r = _search(tmp_path, arch)
    assert r.exit_code == 0, r.output
    run = tmp_path / tiny_cfg(arch=arch, rounds=1).hashname()
    return run, json.loads((names.level_dir(run, 1) / names.TICKET_JSON).read_text())


@pytest.mark.parametrize("arch", ["user_models:if_vgg", "user_models:PlifNet"])
def test_a_users_network_is_searched_by_its_import_path(tmp_path, arch):
    run, info = _searched(tmp_path, arch)
    assert run.name.startswith(f"imp_{names.slug(arch)}_digits_") and ":" not in run.name
    assert info["arch"] == arch and info["hparams"]["model"]["arch"] == arch  # how compile rebuilds it
    assert info["sparsity"]["global"] == pytest.approx(0.25, abs=0.01)
    assert all(n.startswith("net.") for n in info["sparsity"]["layers"])  # its own conv/linear weights, pruned


@pytest.mark.parametrize("arch", USER_NETS)
def test_a_users_network_compiles_in_both_layouts_and_profiles(tmp_path, arch):
    """search (one round) -> compile (time-folded and streaming, validated against the user's model: stages A, B,
    C) -> profile, for soft-reset IF + average pooling, PLIF, LIF with v_reset -0.2 and no input decay, SEW ResNets
    (ADD, AND, IAND) and a spiking ResNet with a downsampling shortcut."""
    run, info = _searched(tmp_path, arch)
    for layout, backend in (("time-folded", "auto"), ("streaming", "onnxruntime")):  # auto: tvm and event too
        out = tmp_path / layout
        r = CliRunner().invoke(main, ["compile", str(names.level_dir(run, 1)), "--target", "host", "--layout",
                                      layout, "--backend", backend, "--out", str(out), "--name", "b", "-q"])
        assert r.exit_code == 0, r.output
        m = json.loads((out / "b" / names.MANIFEST).read_text())
        v = m["validation"]
        assert v["passed"] and v["spikes_equal"] and v["ticket_vs_deploy"]["spikes_equal"]
        assert v["folding"]["rounding_flips_only"] and v["total_spikes"] > 0
        assert m["lif"]["layers"] == [n.replace(".", "_") for n in info_neurons(run)]
        if backend == "auto":  # none of these is the event kernels' chain of hard-reset LIF layers: each says why
            ev, tvm = m["backends"]["event"], m["backends"]["tvm"]
            assert not ev["built"] and ev["skipped_layers"] and all(L["reason"] for L in ev["skipped_layers"])
            assert tvm["built"] and tvm["validation"]["spikes_equal"], tvm  # TVM compiles the ONNX graph
        r = CliRunner().invoke(main, ["profile", str(out / "b"), "--backend", "all", "--runs", "2", "--warmup", "1",
                                      "--json", "-q"])
        assert r.exit_code == 0, r.output
        prof = json.loads(r.output)
        assert all(b["spike_counts_equal_to_onnxruntime"] for b in prof["backends"].values())
        assert set(prof["backends"]) == ({"onnxruntime", "tvm"} if backend == "auto" else {"onnxruntime"})
        snn = prof["profiles"]["onnxruntime"]["snn"]
        assert snn["synops"]["synops_per_sample"] > 0 and set(snn["spike_rates"]) == set(m["lif"]["layers"])
        image = [L for L in snn["synops"]["layers"] if L["input"] == "image"]
        assert [L["layer"] for L in image] == [m["layers"][0]["name"]]  # found by its dataflow; repeated over T:
        assert image[0]["dense_macs"] == m["layers"][0]["macs_per_step_dense"] * m["timesteps"]  # runs every step


def info_neurons(run):
    """The neuron paths of the level-1 ticket's model, in execution order (what the bundle's lif.layers name)."""
    from edgeticket.compile.deploy import lif_layers, to_deploy
    from edgeticket.compile.ticket_source import load

    model, _, info = load(names.level_dir(run, 1))
    return [l.name for l in lif_layers(to_deploy(model, tuple(info["dataset"]["input_shape"])))]


def test_a_layer_outside_the_supported_set_is_one_line_before_any_work(tmp_path):
    run, _ = _searched(tmp_path, "user_models:with_relu")
    r = CliRunner().invoke(main, ["compile", str(names.level_dir(run, 1)), "--target", "host",
                                  "--out", str(tmp_path / "bundles"), "-q"])
    refused(r, "net.1: torch.nn.modules.activation.ReLU cannot be exported (not a layer compile exports)")
    assert not (tmp_path / "bundles").exists()


@pytest.mark.parametrize("arch, needle", [
    ("nosuch_module_xyz:f", "cannot import module 'nosuch_module_xyz' (ModuleNotFoundError"),
    ("user_models:nosuch", "module 'user_models' has no 'nosuch'"),
    ("user_models:returns_none", "the factory returned NoneType, not a torch.nn.Module"),
    ("user_models:raises", "the factory raised ValueError: no such width"),
    ("user_models:no_neuron", "the network has no spikingjelly neuron"),
    ("user_models:single_step", "it must return logits per timestep [T, B, classes]"),
    ("user_models:", "is not an import path: use package.module:factory"),
    ("../x:f", "is not an import path"),
])
def test_a_bad_import_path_or_factory_is_one_line_and_writes_nothing(tmp_path, arch, needle):
    r = _search(tmp_path / "runs", arch)
    refused(r, needle)
    assert not (tmp_path / "runs").exists()


def test_spikingjellys_model_zoo_imports_in_edgeticket_environment():
    """h5py and scipy (spikingjelly's declared dependencies that the --no-deps install used to leave out) are
    installed: the zoo package imports (its resnet/vgg modules also need torchvision: docs/models.md)."""
    import importlib

    zoo = importlib.import_module("spikingjelly.activation_based.model")
    assert zoo.__name__ == "spikingjelly.activation_based.model"
