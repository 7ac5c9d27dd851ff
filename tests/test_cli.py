import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgeticket.formats import names
from edgeticket.cli import main

from conftest import cli_args, tiny_cfg


def test_search_end_to_end_json(tmp_path):
    r = CliRunner().invoke(main, ["search", *cli_args(rounds=1), "--out", str(tmp_path), "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert [row["level"] for row in summary["levels"]] == [0, 1]
    assert summary["final_ticket"]["sparsity"] == pytest.approx(0.25, abs=1e-3)  # a fraction, as in ticket.json
    assert (tmp_path / tiny_cfg(rounds=1).hashname() / "level_1" / names.TICKET_JSON).is_file()


def test_search_table_and_resume_by_folder(tmp_path):
    r = CliRunner().invoke(main, ["search", *cli_args(rounds=1), "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "search cost:" in r.output and "sparsity %" in r.output
    run_dir = tmp_path / tiny_cfg(rounds=1).hashname()
    r2 = CliRunner().invoke(main, ["search", "--resume", str(run_dir), "--json", "--quiet"])
    assert r2.exit_code == 0, r2.output
    assert json.loads(r2.output)["run_dir"] == str(run_dir)
    r3 = CliRunner().invoke(main, ["search", "--resume", str(run_dir), "--seed", "3"])
    assert r3.exit_code != 0 and "drop seed" in r3.output


@pytest.mark.parametrize("args,needle", [
    (["--arch", "vgg99"], "unknown architecture 'vgg99'; valid: tiny, vgg5"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'; valid: digits"),
    (["--dataset", "cifar10"], "needs --data-dir"),
    (["--dataset", "mnist", "--data-dir", "/nonexistent/x"], "is not a folder"),
    (["--rewind-epoch", "50"], "--rewind-epoch must be in"),
    (["--resume", "/nonexistent/run"], "run.json not found"),
])
def test_bad_input_is_one_line_error(tmp_path, args, needle):
    r = CliRunner().invoke(main, ["search", "--out", str(tmp_path), *args])
    assert r.exit_code != 0
    assert needle in r.output
    assert "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_unknown_choice_lists_valid():
    r = CliRunner().invoke(main, ["search", "--method", "magic"])
    assert r.exit_code == 2 and "'imp', 'eb'" in r.output


def test_help_explains_the_three_methods():
    r = CliRunner().invoke(main, ["search", "--help"])
    assert r.exit_code == 0
    for needle in ("Iterative Magnitude Pruning", "Early-Bird", "Early-Time", "--prune-rate", "--early-time"):
        assert needle in r.output


def test_console_script_error_has_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "edgeticket", "search", "--arch", "nope", "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip() == "Error: unknown architecture 'nope'; valid: tiny, vgg5, vgg9, vgg11, vgg16, " \
                               "resnet8, resnet19, resnet19-tdbn, or your own network as package.module:factory " \
                               "(docs/models.md)"


def test_torchrun_ddp_gloo_two_processes(tmp_path):
    """The same search under torchrun with DistributedDataParallel (gloo on CPU, 2 processes)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
           "-m", "edgeticket", "search", *cli_args(rounds=1, epochs=2), "--out", str(tmp_path), "--device", "cpu",
           "--json", "--quiet"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    run_dir = tmp_path / tiny_cfg(rounds=1, epochs=2).hashname()
    run = json.loads((run_dir / names.RUN_JSON).read_text())
    assert run["world_size"] == 2
    info = json.loads((run_dir / "level_1" / names.TICKET_JSON).read_text())
    assert info["sparsity"]["global"] == pytest.approx(0.25, abs=1e-3)
    # both ranks print the summary only on rank 0
    assert p.stdout.count('"run_dir"') == 1
