import json

from click.testing import CliRunner

from edgeticket.cli import main

CONFIG = """
[experiment]
name = "t"
seeds = [0, 1]

[defaults]
arch = "tiny"
dataset = "digits"
train_subset = 128
test_subset = 64
epochs = 2
rounds = 1
timesteps = 3
et_candidates = "2"

[[search]]
label = "imp"
method = "imp"
"""


def test_experiment_runs_every_search_and_seed_and_resumes(tmp_path):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(CONFIG)
    r = CliRunner().invoke(main, ["experiment", str(cfg), "--out", str(tmp_path / "out"), "--quiet", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert [(e["label"], e["seed"]) for e in res["entries"]] == [("imp", 0), ("imp", 1)]
    index = json.loads((tmp_path / "out" / "t" / "experiment.json").read_text())
    assert len(index["runs"]) == 2 and index["runs"][0]["run_dir"] != index["runs"][1]["run_dir"]
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("trained.safetensors")}
    assert len(stamps) == 4
    r2 = CliRunner().invoke(main, ["experiment", str(cfg), "--out", str(tmp_path / "out"), "--quiet"])
    assert r2.exit_code == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("trained.safetensors")} == stamps


def test_bad_config_entry_is_named(tmp_path):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(CONFIG + '\n[[search]]\nlabel = "broken"\narch = "vgg99"\n')
    r = CliRunner().invoke(main, ["experiment", str(cfg), "--dry-run"])
    assert r.exit_code == 2 and "[[search]] 'broken': unknown architecture 'vgg99'" in r.output
    assert not (tmp_path / "runs").exists()


def test_report_is_generated_from_the_folders(tmp_path):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(CONFIG.replace('method = "imp"', 'method = "imp"\ncontrols = "random-reinit"')
                   + '\n[[search]]\nlabel = "imp+et"\nmethod = "imp"\nearly_time = true\net_threshold = 1.0\n')
    r = CliRunner().invoke(main, ["experiment", str(cfg), "--out", str(tmp_path / "out"), "--quiet"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "docs" / "results.md"
    r = CliRunner().invoke(main, ["report", str(tmp_path / "out" / "t"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    for needle in ("| imp | 2 |", "| imp+et | 2 |", "within 1 point of dense", "ticket minus random-reinit",
                   "imp+et/imp: wall", "Early-Time chose", "T'=2", "edgeticket report"):
        assert needle in text, needle
    assert (tmp_path / "docs" / "t-accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "docs" / "t-cost.png").is_file()
    r = CliRunner().invoke(main, ["report", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "does not exist: `edgeticket report` takes a run folder (run.json" in r.output
