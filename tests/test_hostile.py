"""Hostile inputs (issue 18, items 3 and 4): bad options and bad target files end in exit code 2 with one line
that names the option or field (and the fix), never a traceback, and write nothing; a training whose loss turns
non-finite stops with that error and never marks a level finished."""

import dataclasses
import hashlib
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeticket.cli import main
from edgeticket.device import targets
from edgeticket.errors import EdgeTicketError
from edgeticket.formats import names
from edgeticket.hparams import SearchConfig, iter_fields

from conftest import cli_args, tiny_cfg


def snapshot(folder: Path) -> dict:
    """Every file under `folder` with its sha256 (nothing written, nothing changed: the snapshots compare equal)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def refused(r, needle: str) -> None:
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert needle in r.output, r.output


# ---- search options: each setting's rule (hparams field metadata), checked when the config is built -----------

@pytest.mark.parametrize("over,needle", [
    (dict(lr="inf"), "--lr must be a finite number > 0 (got inf)"),
    (dict(lr="nan"), "--lr must be a finite number > 0 (got nan)"),
    (dict(lr="0"), "--lr must be a finite number > 0 (got 0.0)"),
    (dict(v_threshold="0"), "--v-threshold must be a finite number > 0"),
    (dict(v_threshold="-1"), "--v-threshold must be a finite number > 0"),
    (dict(tau="1"), "--tau must be a finite number > 1, as spikingjelly's LIF requires it"),
    (dict(eb_eps="-1"), "--eb-eps must be a finite number in (0, 1]"),
    (dict(eb_eps="0"), "--eb-eps must be a finite number in (0, 1]"),
    (dict(momentum="-1"), "--momentum must be a finite number in [0, 1)"),
    (dict(momentum="1"), "--momentum must be a finite number in [0, 1)"),
    (dict(weight_decay="-1"), "--weight-decay must be a finite number >= 0"),
    (dict(weight_decay="inf"), "--weight-decay must be a finite number >= 0"),
    (dict(seed="99999999999999999999"), "--seed must be an integer in [0, 9223372036854775807]"),
    (dict(seed="-1"), "--seed must be an integer in [0, 9223372036854775807]"),
    (dict(prune_rate="1"), "--prune-rate must be a finite number in (0, 1)"),
    (dict(eb_sparsity="nan"), "--eb-sparsity must be a finite number in (0, 1)"),
    (dict(et_threshold="0"), "--et-threshold must be a finite number in (0, 1]"),
    (dict(train_subset="0"), "--train-subset must be an integer >= 1"),
    (dict(test_subset="-5"), "--test-subset must be an integer >= 1"),
    (dict(timesteps="0"), "--timesteps must be an integer >= 1"),
    (dict(batch_size="0"), "--batch-size must be an integer >= 1"),
    (dict(epochs="0"), "--epochs must be an integer >= 1"),
    (dict(rounds="0"), "--rounds must be an integer >= 1"),
    (dict(eb_window="1"), "--eb-window must be an integer >= 2"),
    (dict(rewind_epoch="-1"), "--rewind-epoch must be an integer >= 0"),
    (dict(et_check_epoch="0"), "--et-check-epoch must be an integer >= 1"),
])
def test_search_option_out_of_range_is_one_line_and_writes_nothing(tmp_path, over, needle):
    out = tmp_path / "runs"
    r = CliRunner().invoke(main, ["search", *cli_args(**over), "--device", "cpu", "--out", str(out), "-q"])
    refused(r, needle)
    assert not out.exists()


def _outside(rule: str, bound):
    """A value just outside a ge/gt/le/lt rule."""
    step = 1 if isinstance(bound, int) else 1e-9
    return {"ge": bound - step, "gt": bound, "le": bound + step, "lt": bound}[rule]


RULED = [(f, rule, bound) for _, f in iter_fields() for rule, bound in f.metadata["rules"].items()]


@pytest.mark.parametrize("f,rule,bound", RULED, ids=[f"{f.name}-{r}" for f, r, _ in RULED])
def test_every_rule_refuses_the_value_just_outside_it(f, rule, bound):
    # the rules are data next to the fields; the one check (hparams.check_settings) names the option
    with pytest.raises(EdgeTicketError, match="^--" + f.name.replace("_", "-") + " must be "):
        tiny_cfg(**{f.name: _outside(rule, bound)})


@pytest.mark.parametrize("name", [f.name for _, f in iter_fields() if isinstance(f.default, float)])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_every_float_setting_must_be_finite(name, value):
    with pytest.raises(EdgeTicketError, match="must be a finite number"):
        tiny_cfg(**{name: value})


def test_the_api_is_checked_too(tmp_path):
    cfg = tiny_cfg()
    bad = cfg.to_dict()
    bad["training"]["lr"] = math.inf
    with pytest.raises(EdgeTicketError, match=r"--lr must be a finite number > 0 \(got inf\)"):
        SearchConfig.from_dict(bad)
    with pytest.raises(EdgeTicketError, match="--momentum"):
        dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, momentum=-1.0))
    with pytest.raises(EdgeTicketError, match=r"--epochs must be an integer >= 1 \(got '3'\)"):
        tiny_cfg(epochs="3")  # a TOML or JSON string where a number belongs
    with pytest.raises(EdgeTicketError, match="--augment must be one of auto, none, crop, crop-flip"):
        tiny_cfg(augment="sideways")  # choices hold for the API, not only for click
    with pytest.raises(EdgeTicketError, match="--early-time must be true or false"):
        tiny_cfg(early_time="yes")
    assert SearchConfig().hashname() == "imp_vgg5_digits_44136fa355"  # the defaults pass, their hash is unchanged


def test_experiment_config_with_a_bad_setting_is_refused_before_running(tmp_path):
    config = tmp_path / "exp.toml"
    config.write_text('[experiment]\nname = "x"\n\n[defaults]\narch = "tiny"\n\n[[search]]\nlabel = "a"\nlr = inf\n')
    out = tmp_path / "exps"
    r = CliRunner().invoke(main, ["experiment", str(config), "--out", str(out), "--dry-run"])
    refused(r, "[[search]] 'a': --lr must be a finite number > 0 (got inf)")
    assert not out.exists()


# ---- a training that diverges ---------------------------------------------------------------------------------

def test_non_finite_loss_stops_and_marks_nothing_finished(tmp_path):
    out = tmp_path / "runs"
    args = ["search", *cli_args(lr=1e30), "--device", "cpu", "--out", str(out), "-q"]
    r = CliRunner().invoke(main, args)
    refused(r, "level 0: training diverged in epoch 1/3")
    assert "lower --lr" in r.output
    assert not list(out.rglob(names.TICKET_JSON))
    assert not list(out.rglob(names.TRAINED))
    before = snapshot(out)
    again = CliRunner().invoke(main, args)  # a rerun resumes nothing as finished: it stops the same way
    refused(again, "training diverged")
    assert not list(out.rglob(names.TICKET_JSON)) and snapshot(out) == before


# ---- compile, profile, predict, check options -----------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(ticket, tmp_path_factory):
    from edgeticket import api

    m = api.compile_ticket(ticket, "host", out=tmp_path_factory.mktemp("bundles"), backend="onnxruntime",
                           validation_n=16, log=lambda m: None)
    return Path(m["bundle_dir"])


def _target_file(folder: Path, name: str = "board", edit=lambda text: text) -> Path:
    text = (targets.PACKAGED / "host.toml").read_text().replace('name = "host"', f'name = "{name}"')
    path = folder / f"{name}.toml"
    path.write_text(edit(text))
    return path


@pytest.mark.parametrize("args,needle", [
    (["--opset", "0"], "--opset must be an integer in [12, 17] for --storage packed --weights fp32 on host"),
    (["--opset", "5"], "--opset must be an integer in [12, 17]"),
    (["--opset", "11"], "--opset must be an integer in [12, 17]"),
    (["--opset", "18"], "--opset must be an integer in [12, 17]"),
    (["--opset", "12", "--weights", "int8"], "--opset must be an integer in [13, 17] for --storage packed --weights int8"),
    (["--opset", "10", "--storage", "dense"], "--opset must be an integer in [11, 17] for --storage dense"),
    (["--batch", "0"], "--batch must be >= 1 (got 0)"),
    (["--validation-n", "-3"], "--validation-n must be >= 1 (got -3)"),
    (["--target", "nosuch"], "unknown target 'nosuch'; valid: "),
])
def test_compile_option_is_refused_before_anything_is_written(ticket, tmp_path, args, needle):
    out = tmp_path / "bundles"
    before = snapshot(ticket)
    full = ["compile", str(ticket), "--out", str(out), *args]
    if "--target" not in args:
        full += ["--target", "host"]
    refused(CliRunner().invoke(main, full), needle)
    assert not out.exists() and snapshot(ticket) == before


def test_compile_for_a_target_whose_max_opset_is_too_low_for_the_storage(ticket, tmp_path):
    board = _target_file(tmp_path, edit=lambda t: t.replace("max_opset = 17", "max_opset = 11"))
    out = tmp_path / "bundles"
    r = CliRunner().invoke(main, ["compile", str(ticket), "--target", str(board), "--out", str(out)])
    refused(r, "board's max_opset 11 is below opset 12, the lowest --storage packed --weights fp32 exports to")
    assert not out.exists()


@pytest.mark.parametrize("args,needle", [
    (["profile", "{b}", "--target", "nosuch"], "unknown target 'nosuch'"),
    (["profile", "{b}", "--batch", "0"], "--batch must be >= 1 (got 0)"),
    (["profile", "{b}", "--runs", "0"], "--runs must be >= 1 (got 0)"),
    (["profile", "{b}", "--warmup", "-1"], "--warmup must be >= 0 (got -1)"),
    (["profile", "{b}", "--threads", "0"], "--threads must be >= 1 (got 0)"),
    (["predict", "{b}", "--target", "nosuch"], "unknown target 'nosuch'"),
    (["predict", "{b}", "--target", "host", "--batch", "-4"], "--batch must be >= 1"),
    (["check", "{b}", "--target", "nosuch"], "unknown target 'nosuch'"),
])
def test_device_command_option_is_refused_before_measuring(bundle, args, needle):
    before = snapshot(bundle)
    refused(CliRunner().invoke(main, [a.format(b=bundle) for a in args]), needle)
    assert snapshot(bundle) == before  # no profile.json, nothing changed


# ---- target files: every key known, providers onnxruntime's -----------------------------------------------------

@pytest.mark.parametrize("old,new,needle", [
    ("cflags =", "cflag =", "unknown field 'native.cflag'; did you mean 'native.cflags'?"),
    ("[native]", "[nativ]", "unknown field 'nativ'; did you mean 'native'?"),
    ("model_budget_bytes =", "model_budget =", "unknown field 'memory.model_budget'; did you mean "
                                               "'memory.model_budget_bytes'?"),
    ("cores = 2", "cores = 2\nmax_opset = 9", "unknown field 'compute.max_opset'; did you mean 'onnx.max_opset'?"),
    ('arch = "x86_64"', 'arch = "x86_64"\ncflags = ["-O3"]', "unknown field 'cflags'; did you mean 'native.cflags'?"),
    ('arch = "x86_64"', 'arch = "x86_64"\ncolour = "red"', "unknown field 'colour'; valid: name, description"),
    ('simd = "avx', 'simd = 4 # "', "field 'compute.simd' must be a string (got 4)"),
    ('"CPUExecutionProvider"', '"CPUExecutionProvder"',
     "unknown execution provider 'CPUExecutionProvder' in 'onnxruntime.providers'; did you mean "
     "'CPUExecutionProvider'?"),
    ('"CPUExecutionProvider"', '"CudaExecutionProvider", "CPUExecutionProvider"',
     "unknown execution provider 'CudaExecutionProvider' in 'onnxruntime.providers'; did you mean "
     "'CUDAExecutionProvider'?"),
    ('"CPUExecutionProvider"', '"MagicNPU"', "unknown execution provider 'MagicNPU' in 'onnxruntime.providers'; valid: "),
    ('["CPUExecutionProvider"]', '[]', "field 'onnxruntime.providers' is empty"),
])
def test_bad_target_file_is_refused_naming_the_field(ticket, tmp_path, old, new, needle):
    folder = tmp_path / "targets"
    folder.mkdir()
    text = (targets.PACKAGED / "host.toml").read_text()
    assert old in text
    board = _target_file(folder, edit=lambda t: t.replace(old, new))
    before = snapshot(folder)
    out = tmp_path / "bundles"
    r = CliRunner().invoke(main, ["compile", str(ticket), "--target", str(board), "--out", str(out)])
    refused(r, f"{board}: {needle}")
    assert not out.exists()
    listing = CliRunner().invoke(main, ["targets"], env={"EDGETICKET_TARGETS": str(folder)})
    refused(listing, needle)
    assert snapshot(folder) == before


def test_every_packaged_target_file_uses_only_known_fields():
    for path in sorted(targets.PACKAGED.glob("*.toml")):
        targets.load_target_file(path)  # raises on an unknown key or provider


def test_provider_list_covers_the_installed_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    assert set(ort.get_all_providers()) <= set(targets.ORT_PROVIDERS)
