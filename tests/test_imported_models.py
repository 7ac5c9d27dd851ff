"""A user's own spikingjelly network through search (issue 14, item 1): `--arch package.module:factory`, the factory
called with the arguments it accepts, the run named and recorded by its import path; compile refuses it in one line
until its export exists; a bad import path or factory is one line, nothing written."""

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


@pytest.mark.parametrize("arch", ["user_models:if_vgg", "user_models:PlifNet"])
def test_a_users_network_is_searched_by_its_import_path(tmp_path, arch):
    r = _search(tmp_path, arch)
    assert r.exit_code == 0, r.output
    run = tmp_path / tiny_cfg(arch=arch, rounds=1).hashname()
    assert run.name.startswith(f"imp_{names.slug(arch)}_digits_") and ":" not in run.name
    info = json.loads((names.level_dir(run, 1) / names.TICKET_JSON).read_text())
    assert info["arch"] == arch and info["hparams"]["model"]["arch"] == arch  # how compile rebuilds it
    assert info["sparsity"]["global"] == pytest.approx(0.25, abs=0.01)
    assert all(n.startswith("net.") for n in info["sparsity"]["layers"])  # its own conv/linear weights, pruned

    r = CliRunner().invoke(main, ["compile", str(names.level_dir(run, 1)), "--target", "host",
                                  "--out", str(tmp_path / "bundles"), "-q"])
    refused(r, f"compile does not export networks of your own yet (this ticket's --arch is {arch})")
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
