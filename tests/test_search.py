import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from edgeticket import api, store
from edgeticket.errors import EdgeTicketError
from edgeticket.formats import names
from edgeticket.pruning import Mask
from edgeticket.search.early_time import choose

from conftest import cli_args, tiny_cfg

TICKET_FILES = {names.MASK, names.REWIND, names.TRAINED, names.TICKET_JSON}


@pytest.fixture(scope="module")
def imp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("imp")
    cfg = tiny_cfg(controls="random-reinit,random-mask")
    return cfg, out, api.search(cfg, out=out, device="cpu", quiet=True)


def test_imp_writes_the_ticket_contract(imp_run):
    cfg, out, summary = imp_run
    run_dir = out / cfg.hashname()
    assert (run_dir / names.RUN_JSON).is_file() and (run_dir / names.SUMMARY_CSV).is_file()
    assert (run_dir / names.SUMMARY_PNG).read_bytes()[:4] == b"\x89PNG"
    tickets = [r for r in summary["levels"] if r["branch"] == "ticket"]
    assert [r["level"] for r in tickets] == [0, 1, 2]
    assert [r["sparsity"] for r in tickets] == pytest.approx([0.0, 0.25, 0.4375], abs=5e-4)  # fractions
    for level in range(3):
        d = names.level_dir(run_dir, level)
        assert TICKET_FILES <= {p.name for p in d.iterdir()}
        assert not (d / names.CHECKPOINT).exists()
        info = json.loads((d / names.TICKET_JSON).read_text())
        for key in ("format_version", "hparams", "level", "sparsity", "timesteps", "accuracy", "cost",
                    "mask_sha256", "versions", "files"):
            assert key in info
        assert info["mask_sha256"] == store.sha256_file(d / names.MASK)
        assert set(info["accuracy"]) >= {"best", "final"}
        assert set(info["cost"]) == {"wall_s", "timestep_epochs", "epochs"}
        assert info["timesteps"] == {"search": 4, "trained": 4, "deploy": 4}
        assert info["format_version"] == 2 and 0 <= info["accuracy"]["final"] <= 1  # fractions
        assert all(0 <= h["test_acc"] <= 1 and 0 <= h["train_acc"] <= 1 for h in info["history"])


def test_trained_weights_are_masked_and_rewind_is_the_late_rewind_point(imp_run):
    cfg, out, _ = imp_run
    run_dir = out / cfg.hashname()
    model, mask, info = api.load_ticket(names.level_dir(run_dir, 2))
    sd = model.state_dict()
    for n, m in mask.items():
        assert (sd[n][~m] == 0).all()
    rewind0 = store.load_tensors(names.level_dir(run_dir, 0) / names.REWIND)
    rewind2 = store.load_tensors(names.level_dir(run_dir, 2) / names.REWIND)
    for n in rewind0:
        expect = rewind0[n] * mask[n] if n in mask else rewind0[n]  # BN and biases rewound too, unmasked
        assert torch.equal(rewind2[n], expect)
    # level 2's training started at the rewind epoch: only epochs - rewind_epoch epochs were run
    assert info["cost"]["epochs"] == cfg.training.epochs - cfg.search.rewind_epoch


def test_controls_use_same_sparsity(imp_run):
    cfg, out, summary = imp_run
    run_dir = out / cfg.hashname()
    ticket = Mask.load(names.level_dir(run_dir, 2) / names.MASK)
    reinit = Mask.load(names.branch_dir(run_dir, 2, "random-reinit") / names.MASK)
    rmask = Mask.load(names.branch_dir(run_dir, 2, "random-mask") / names.MASK)
    assert all(torch.equal(ticket[n], reinit[n]) for n in ticket)
    assert ticket.layer_sparsity() == pytest.approx(rmask.layer_sparsity())
    assert rmask.hamming(ticket) > 0
    branches = {(r["level"], r["branch"]) for r in summary["levels"]}
    assert {(1, "random-reinit"), (2, "random-mask")} <= branches


def test_rerun_skips_finished_levels(imp_run):
    cfg, out, summary = imp_run
    run_dir = out / cfg.hashname()
    stamp = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*.safetensors")}
    again = api.search(cfg, out=out, device="cpu", quiet=True)
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*.safetensors")} == stamp  # nothing was retrained
    assert again["levels"] == summary["levels"]


def test_early_time_composes_with_imp(tmp_path):
    cfg = tiny_cfg(early_time=True, et_threshold=1.0, rounds=2)  # threshold 1.0: every candidate but the max passes
    summary = api.search(cfg, out=tmp_path, device="cpu", quiet=True)
    et = summary["early_time"]
    assert et["chosen"] in (2, 3) and set(et["kl"]) == {"2", "3"}
    rows = [r for r in summary["levels"] if r["branch"] == "ticket"]
    run_dir = tmp_path / cfg.hashname()
    info0 = json.loads((names.level_dir(run_dir, 0) / names.TICKET_JSON).read_text())
    # level 0: first et_check_epoch epochs at full T, then T'
    assert [h["timesteps"] for h in info0["history"]] == [4] + [et["chosen"]] * 2
    assert rows[1]["timesteps_trained"] == et["chosen"]  # search level at T'
    assert rows[-1]["timesteps_trained"] == 4  # final ticket retrained at the full T
    final = json.loads((names.level_dir(run_dir, 2) / names.TICKET_JSON).read_text())
    assert final["timesteps"] == {"search": et["chosen"], "trained": 4, "deploy": 4}
    assert summary["search_cost"]["timestep_epochs"] == 4 + 2 * et["chosen"] + 2 * et["chosen"] + 2 * 4


def test_early_time_choice_rule():
    assert choose({2: 1.0, 3: 0.5, 4: 0.2}, 0.6, 5)[0] == 3
    assert choose({2: 0.3, 3: 0.2, 4: 0.1}, 0.6, 5)[0] == 4  # normalised: 1.0, 0.67, 0.33
    assert choose({2: 1.0}, 0.6, 5)[0] == 5  # nothing below threshold: search at full T


@pytest.mark.parametrize("variant", ["unstructured", "bn-channel"])
def test_early_bird_with_early_time(tmp_path, variant):
    cfg = tiny_cfg(method="eb", early_time=True, et_threshold=1.0, epochs=8, eb_window=2, eb_eps=0.5,
                   eb_sparsity=0.6, eb_variant=variant)
    summary = api.search(cfg, out=tmp_path, device="cpu", quiet=True)
    run_dir = tmp_path / cfg.hashname()
    info0 = json.loads((names.level_dir(run_dir, 0) / names.TICKET_JSON).read_text())
    eb = info0["early_bird"]
    assert eb["converged"] and eb["stop_epoch"] < 8  # eps 0.5 settles quickly: dense training stopped early
    assert info0["cost"]["epochs"] == eb["stop_epoch"]
    ticket = summary["levels"][1]
    assert ticket["sparsity"] == pytest.approx(0.6, abs=0.01 if variant == "unstructured" else 0.3)
    assert ticket["timesteps_trained"] == 4  # retrained at full T


# ---- Early-Bird settling before the rewind epoch (issue 17, item 1) ---------------------------------------------
# eps 0.5 with a FIFO of 2 settles after epoch 2, before the rewind epoch 5: the rewind point must still exist, at
# min(rewind_epoch, stop epoch) (the weights after the stop epoch; dense training is not extended).
EB_EARLY = dict(method="eb", epochs=8, rewind_epoch=5, eb_window=2, eb_eps=0.5)


def _eb_early_cli(out, quiet=False):
    return ["search", *cli_args(**EB_EARLY), "--out", str(out), "--device", "cpu", *(["--quiet"] if quiet else [])]


def _eb_early_subprocess(out):
    """The same search as a child process on 1 thread (CPU runs are bitwise reproducible for one thread count)."""
    cmd = [sys.executable, "-m", "edgeticket", *_eb_early_cli(out, quiet=True)]
    return cmd, dict(os.environ, OMP_NUM_THREADS="1")


def _tensors_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def eb_early(tmp_path_factory):
    from click.testing import CliRunner

    from edgeticket.cli import main

    out = tmp_path_factory.mktemp("eb-early")
    result = CliRunner().invoke(main, _eb_early_cli(out))
    return out / tiny_cfg(**EB_EARLY).hashname(), result


@pytest.fixture(scope="module")
def eb_early_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("eb-early-ref")
    cmd, env = _eb_early_subprocess(out)
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return out / tiny_cfg(**EB_EARLY).hashname()


def test_early_bird_stopping_before_the_rewind_epoch_rewinds_to_the_stop_epoch(eb_early):
    from safetensors import safe_open

    run_dir, result = eb_early
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "Traceback" not in result.output and "Error" not in result.output
    d0, d1 = names.level_dir(run_dir, 0), names.level_dir(run_dir, 1)
    info0 = json.loads((d0 / names.TICKET_JSON).read_text())
    stop = info0["early_bird"]["stop_epoch"]
    assert info0["early_bird"]["converged"] and stop < 5  # the case under test: EB stopped before the rewind epoch
    assert info0["cost"]["epochs"] == stop  # dense training was not extended to reach the rewind epoch
    # the rewind point exists where level 1 (and the controls) read it, and holds the weights after the stop epoch
    rewind0 = store.load_tensors(d0 / names.REWIND)
    assert _tensors_equal(rewind0, store.load_tensors(d0 / names.TRAINED))
    with safe_open(str(d0 / names.REWIND), framework="numpy") as f:
        assert f.metadata()["epoch"] == str(stop)
    assert info0["early_bird"]["rewind_epoch"] == stop
    # the ticket started from it at that epoch, and ticket.json says so
    info1 = json.loads((d1 / names.TICKET_JSON).read_text())
    assert info1["rewind"]["epoch"] == stop and info1["rewind"]["requested_epoch"] == 5
    assert (run_dir / info1["rewind"]["weights"]) == d0 / names.REWIND
    assert "min(rewind_epoch, stop epoch)" in info1["rewind"]["rule"]
    assert info1["epochs"]["start"] == stop and info1["cost"]["epochs"] == 8 - stop
    mask = Mask.load(d1 / names.MASK)
    rewind1 = store.load_tensors(d1 / names.REWIND)
    assert all(torch.equal(rewind1[n], rewind0[n] * mask[n] if n in mask else rewind0[n]) for n in rewind0)
    summary = json.loads((run_dir / names.SUMMARY_JSON).read_text())
    assert summary["early_bird"]["rewind_epoch"] == stop
    assert f"ticket rewound to epoch {stop}" in result.output


def test_early_bird_stopping_before_the_rewind_epoch_reruns_without_retraining(eb_early):
    from click.testing import CliRunner

    from edgeticket.cli import main

    run_dir, first = eb_early
    stamp = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*.safetensors")}
    tickets = {p: p.read_text() for p in run_dir.rglob(names.TICKET_JSON)}
    again = CliRunner().invoke(main, _eb_early_cli(run_dir.parent, quiet=True))
    assert again.exit_code == 0 and again.exception is None, again.output
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*.safetensors")} == stamp  # nothing was retrained
    assert {p: p.read_text() for p in run_dir.rglob(names.TICKET_JSON)} == tickets


@pytest.mark.parametrize("killed_level", [0, 1])
def test_early_bird_stopping_before_the_rewind_epoch_resumes_after_sigkill(eb_early_reference, tmp_path,
                                                                          killed_level):
    """Killed in level 0 (after its first epoch, before EB stops) or in level 1: the rerun ends as an
    uninterrupted run."""
    ref_dir = eb_early_reference
    out = tmp_path / "killed"
    cmd, env = _eb_early_subprocess(out)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = out / ref_dir.name
    target = names.level_dir(run_dir, killed_level) / names.CHECKPOINT
    deadline = time.time() + 120
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not names.is_finished(names.level_dir(run_dir, killed_level))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    for level in (0, 1):
        for f in (names.MASK, names.REWIND, names.TRAINED):
            a = store.load_tensors(names.level_dir(ref_dir, level) / f)
            b = store.load_tensors(names.level_dir(run_dir, level) / f)
            assert _tensors_equal(a, b), (level, f)
        ia, ib = (json.loads((names.level_dir(d, level) / names.TICKET_JSON).read_text()) for d in (ref_dir, run_dir))
        assert ia.get("rewind") == ib.get("rewind") and ia["epochs"] == ib["epochs"]
        assert ia.get("early_bird", {}).get("stop_epoch") == ib.get("early_bird", {}).get("stop_epoch")


def _run_cli(out, extra=()):
    cmd = [sys.executable, "-m", "edgeticket", "search", *cli_args(epochs=6, rounds=2), "--out", str(out),
           "--quiet", "--device", "cpu", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return cmd, env


def test_sigkill_then_resume_gives_same_masks_and_weights(tmp_path):
    ref_out, out = tmp_path / "ref", tmp_path / "killed"
    cmd, env = _run_cli(ref_out)
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    cmd, env = _run_cli(out)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = out / tiny_cfg(epochs=6, rounds=2).hashname()
    deadline = time.time() + 120
    target = names.level_dir(run_dir, 1) / names.CHECKPOINT
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not names.is_finished(names.level_dir(run_dir, 1))
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    ref_dir = ref_out / run_dir.name
    for level in range(3):
        for f in (names.MASK, names.TRAINED):
            a = store.load_tensors(names.level_dir(ref_dir, level) / f)
            b = store.load_tensors(names.level_dir(run_dir, level) / f)
            assert all(torch.equal(a[k], b[k]) for k in a), (level, f)


# ---- the authors' choices as settings (issue 17, item 2) --------------------------------------------------------

def test_full_t_loss_divisor_scales_the_loss_by_t_prime_over_t():
    from edgeticket.search.train import loss_scale

    assert loss_scale(tiny_cfg(timesteps=5), 2) == 1.0  # edgeticket: the mean over the T' timesteps
    assert loss_scale(tiny_cfg(timesteps=5, et_loss_divisor="full-t"), 2) == pytest.approx(0.4)
    assert loss_scale(tiny_cfg(timesteps=5, et_loss_divisor="full-t"), 5) == 1.0  # at T: the same mean


def _ctx(cfg):
    from edgeticket import data
    from edgeticket.search.context import Context

    return Context(cfg, data.load(cfg.data), torch.device("cpu"), quiet=True)


def test_et_check_batch_size_and_augmentation_are_settings():
    from edgeticket.search.early_time import check_batch

    plain = check_batch(_ctx(tiny_cfg(et_check_batch=100)))
    assert plain.shape[0] == 100
    ctx = _ctx(tiny_cfg(et_check_batch=100, et_check_augment=True, augment="crop-flip"))
    aug = check_batch(ctx)
    assert aug.shape == plain.shape and torch.equal(aug, check_batch(ctx))  # its own generator: reproducible
    assert not any(torch.equal(aug[0], ctx.data.x_train[i]) for i in range(len(ctx.data.x_train)))


@pytest.mark.parametrize("bn, changes", [("eval", False), ("train", True)])
def test_et_check_in_bn_train_mode_updates_the_running_statistics_as_the_authors_code(bn, changes):
    from edgeticket.models import build
    from edgeticket.search.early_time import kl_scores

    cfg = tiny_cfg()
    model = build(cfg.model, 10, 1, 8).eval()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running_mean" in k}
    kls = kl_scores(model, torch.rand(16, 1, 8, 8), 4, [2, 3], bn_train=bn == "train")
    assert set(kls) == {2, 3} and all(v >= 0 for v in kls.values())
    after = {k: v for k, v in model.state_dict().items() if "running_mean" in k}
    assert any(not torch.equal(before[k], after[k]) for k in before) == changes
    assert not model.training  # put back as it was


def test_early_bird_as_the_authors_ran_it_rewinds_to_init_with_2x_search_lr(tmp_path):
    cfg = tiny_cfg(**EB_EARLY, eb_rewind="init", eb_lr_scale=2.0, early_time=True, et_check_epoch=6)
    summary = api.search(cfg, out=tmp_path, device="cpu", quiet=True)
    run_dir = tmp_path / cfg.hashname()
    info0 = json.loads((names.level_dir(run_dir, 0) / names.TICKET_JSON).read_text())
    info1 = json.loads((names.level_dir(run_dir, 1) / names.TICKET_JSON).read_text())
    stop = info0["early_bird"]["stop_epoch"]
    assert stop < 6  # stopped before the ET check epoch: the check ran at the stop (it used to be an error)
    assert info0["early_time"]["chosen"] in (2, 3, 4) and summary["early_time"]["chosen"] == info0["early_time"]["chosen"]
    assert info0["early_time"]["checked_after_epoch"] == stop and info0["early_time"]["check_epoch"] == 6
    from edgeticket.search.train import lr_at

    thp = cfg.training
    assert [h["lr"] for h in info0["history"]] == pytest.approx([2 * lr_at(e, thp) for e in range(stop)])
    assert info1["epochs"]["start"] == 0 and info1["rewind"]["weights"] == "initialisation"
    assert [h["lr"] for h in info1["history"]] == pytest.approx([lr_at(e, thp) for e in range(thp.epochs)])
    assert store.load_tensors(names.level_dir(run_dir, 1) / names.REWIND).keys()  # the masked init it started from


def test_rewind_schedule_restart_starts_a_fresh_cosine_at_the_rewind_epoch(tmp_path):
    from edgeticket.search.train import lr_at

    thp = tiny_cfg(epochs=4).training
    assert lr_at(1, thp, restart=1) == pytest.approx(thp.lr)  # the authors': the full lr again
    assert lr_at(1, thp) == pytest.approx(0.5 * thp.lr * (1 + math.cos(math.pi / 4)))  # edgeticket: continued
    for schedule, first in (("restart", thp.lr), ("continue", lr_at(1, thp))):
        cfg = tiny_cfg(epochs=4, rounds=1, rewind_schedule=schedule)
        api.search(cfg, out=tmp_path, device="cpu", quiet=True)
        info = json.loads((names.level_dir(tmp_path / cfg.hashname(), 1) / names.TICKET_JSON).read_text())
        assert info["history"][0]["lr"] == pytest.approx(first), schedule


def test_et_kl_in_the_papers_direction_is_the_other_kl():
    from edgeticket.models import build
    from edgeticket.search.early_time import kl_scores

    model = build(tiny_cfg().model, 10, 1, 8).eval()
    x = torch.rand(16, 1, 8, 8) * 4
    code, paper = kl_scores(model, x, 4, [1, 2]), kl_scores(model, x, 4, [1, 2], direction="paper")
    assert all(v >= 0 for v in (*code.values(), *paper.values()))
    assert code != paper


def test_a_run_started_before_a_setting_existed_still_resumes(tmp_path):
    """A setting added later is missing from the run's run.json; its default is the old behaviour, so the run is
    the same run (it used to be refused as 'a run with other settings')."""
    cfg = tiny_cfg(rounds=1)
    api.search(cfg, out=tmp_path, device="cpu", quiet=True)
    run_dir = tmp_path / cfg.hashname()
    rj = run_dir / names.RUN_JSON
    doc = json.loads(rj.read_text())
    del doc["hparams"]["search"]["rewind_schedule"], doc["hparams"]["search"]["et_kl"]
    rj.write_text(json.dumps(doc))
    stamps = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*.safetensors")}
    api.search(cfg, out=tmp_path, device="cpu", quiet=True)
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*.safetensors")} == stamps  # reused, not retrained
    doc["hparams"]["search"]["rounds"] = 7  # a real difference is still refused
    rj.write_text(json.dumps(doc))
    with pytest.raises(EdgeTicketError, match="holds a run with other settings"):
        api.search(cfg, out=tmp_path, device="cpu", quiet=True)
