"""Hostile experiment configs and experiment folders (issue 18, item 5): an experiment name is a plain folder name
(never a path out of --out), a dry run checks exactly what a run checks before it trains, an empty plan is an
error, and `edgeticket report` checks experiment.json (format_version, fields, the run folders it cites) before
reporting: exit code 2, one line naming the file and the fix, no traceback, nothing written."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgeticket.cli import main
from edgeticket.formats import names

from test_hostile import refused, snapshot

TINY = """
[defaults]
arch = "tiny"
dataset = "digits"
train_subset = 64
test_subset = 32
epochs = 2
rounds = 1
timesteps = 2
et_candidates = "2"
"""


def config(tmp_path, name='"t"', seeds="[0]", searches='[[search]]\nlabel = "imp"\nmethod = "imp"\n'):
    """A tiny experiment config; `searches` starting with 'search =' is a top-level key (before any table)."""
    p = tmp_path / "exp.toml"
    top, searches = (searches, "") if searches.startswith("search =") else ("", searches)
    p.write_text(f"{top}[experiment]\nname = {name}\nseeds = {seeds}\n{TINY}\n{searches}")
    return p


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


# ---- (1) the experiment's name is a plain folder name ----------------------------------------------------------

@pytest.mark.parametrize("name, needle", [
    ('"../../escape"', "holds a path separator"),
    ('"/tmp/abs"', "holds a path separator"),
    ('"a\\\\b"', "holds a path separator"),
    ('".."', "starts with a dot"),
    ('".hidden"', "starts with a dot"),
    ('""', "is empty"),
    ('"  "', "is empty"),
    ("7", "is int, not a string"),
])
@pytest.mark.parametrize("dry_run", [False, True])
def test_experiment_name_must_be_a_plain_name(tmp_path, name, needle, dry_run):
    cfg = config(tmp_path, name=name)
    out = tmp_path / "out"  # out / "../../escape" is tmp_path's parent / "escape"
    parent, siblings, inside = listing(tmp_path.parent), listing(tmp_path), snapshot(tmp_path)
    r = CliRunner().invoke(main, ["experiment", str(cfg), "--out", str(out), "--device", "cpu", "-q",
                                  *(["--dry-run"] if dry_run else [])])
    refused(r, f"{cfg}: [experiment] name")
    assert needle in r.output and "use a plain folder name" in r.output
    assert listing(tmp_path.parent) == parent and listing(tmp_path) == siblings and snapshot(tmp_path) == inside
    assert not out.exists() and not (tmp_path.parent / "escape").exists()


# ---- (2) a dry run checks what a run checks -----------------------------------------------------------------------

BAD_ENTRIES = [
    ('[[search]]\nlabel = "imp"\nmethod = "imp"\n\n[[search]]\nlabel = "odd"\nmethod = "magic"\n',
     "[[search]] 'odd'", "'magic'", "imp, eb"),
    ('[[search]]\nlabel = "imp"\nmethod = "imp"\n\n[[search]]\nlabel = "c10"\ndataset = "cifar10"\n',
     "[[search]] 'c10' seed 0: dataset 'cifar10' needs --data-dir", "cifar-10-batches-py", ""),
]


@pytest.mark.parametrize("searches, needle, also, valid", BAD_ENTRIES)
@pytest.mark.parametrize("dry_run", [True, False])
def test_dry_run_refuses_what_the_run_refuses_and_the_run_refuses_before_training(tmp_path, searches, needle, also,
                                                                                  valid, dry_run):
    cfg = config(tmp_path, searches=searches)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["experiment", str(cfg), "--out", str(out), "--device", "cpu", "-q",
                                  *(["--dry-run"] if dry_run else [])])
    refused(r, needle)  # an unknown method: by the setting's own choices, or else by the plan's check
    assert f"{cfg}: " in r.output and also in r.output and valid in r.output
    assert not out.exists()  # the valid first search did not run either: every search is checked first


def test_dry_run_loads_the_data_files_a_run_would(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.full((4, 8, 8), np.nan, np.float32), y_train=np.arange(4) % 2,
             x_test=np.zeros((2, 8, 8), np.float32), y_test=np.arange(2))
    cfg = config(tmp_path, searches='[[search]]\nlabel = "byo"\ndataset = "npz"\n')
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["experiment", str(cfg), "--out", str(out), "--data-dir", str(bad), "--dry-run"])
    refused(r, "[[search]] 'byo' seed 0: " + f"{bad}: x_train holds 256 non-finite value(s)")
    r = CliRunner().invoke(main, ["experiment", str(cfg), "--out", str(out), "--data-dir",
                                  str(tmp_path / "missing.npz"), "--dry-run"])
    refused(r, "missing.npz not found")
    assert not out.exists()


def test_a_good_dry_run_passes_and_writes_nothing(tmp_path):
    cfg = config(tmp_path, seeds="[0, 1]")
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["experiment", str(cfg), "--out", str(out), "--device", "cpu", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "(dry run)" in r.output and r.output.count("imp ") >= 2
    assert not out.exists()


# ---- (3) an empty plan is an error --------------------------------------------------------------------------------

@pytest.mark.parametrize("seeds, searches, needle", [
    ("[]", '[[search]]\nlabel = "imp"\n', "seeds = [] plans no run; list at least one seed"),
    ("[0]", "search = []\n", "no [[search]] entries"),
    ("[0, 0]", '[[search]]\nlabel = "imp"\n', "seeds repeat"),
    ('"0"', '[[search]]\nlabel = "imp"\n', "seeds must be a list of integers"),
    ("[0]", 'search = "imp"\n', "search must be [[search]] tables"),
    ("[0]", '[[search]]\nlabel = ""\n', "[[search]] 1: label must be a non-empty string"),
])
@pytest.mark.parametrize("dry_run", [True, False])
def test_an_empty_or_malformed_plan_is_an_error(tmp_path, seeds, searches, needle, dry_run):
    cfg = config(tmp_path, seeds=seeds, searches=searches)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["experiment", str(cfg), "--out", str(out), "--device", "cpu", "-q",
                                  *(["--dry-run"] if dry_run else [])])
    refused(r, needle)
    assert str(cfg) in r.output and not out.exists()


# ---- (4) the report checks experiment.json and the runs it cites ------------------------------------------------

def exp_folder(tmp_path, index=None, runs=None):
    exp = tmp_path / "exp"
    exp.mkdir()
    doc = {"format_version": 1, "kind": "experiment", "name": "e", "config": "e.toml",
           "runs": runs if runs is not None else [{"label": "imp", "seed": 0, "run_dir": str(tmp_path / "gone")}]}
    doc.update(index or {})
    (exp / names.EXPERIMENT_JSON).write_text(json.dumps(doc))
    return exp


def report_refused(tmp_path, exp, needle):
    out = tmp_path / "docs" / "results.md"
    before = snapshot(tmp_path)
    r = CliRunner().invoke(main, ["report", str(exp), "--out", str(out)])
    refused(r, needle)
    assert str(exp / names.EXPERIMENT_JSON) in r.output
    assert not out.parent.exists() and snapshot(tmp_path) == before


@pytest.mark.parametrize("index, needle", [
    ({"format_version": 7}, "has format_version 7 (kind 'experiment'); this edgeticket reads experiment.json "
                            "format_version 1: upgrade edgeticket, or rerun `edgeticket experiment CONFIG`"),
    ({"format_version": "1"}, "has format_version '1'"),
    ({"kind": "search-run"}, "(kind 'search-run')"),
    ({"runs": []}, "lacks its name or its runs (a non-empty list)"),
    ({"runs": [{"label": "imp", "seed": 0}]}, "run 0 needs a label, a seed and a run_dir"),
    ({"runs": "x"}, "lacks its name or its runs"),
    ({"name": None}, "lacks its name or its runs"),
])
def test_report_refuses_a_malformed_or_newer_experiment_index(tmp_path, index, needle):
    report_refused(tmp_path, exp_folder(tmp_path, index), needle)


def test_report_refuses_runs_that_are_missing_or_unfinished(tmp_path):
    exp = exp_folder(tmp_path)
    report_refused(tmp_path, exp, "gone (cited by")
    assert "does not exist: rerun `edgeticket experiment e.toml`" in CliRunner().invoke(
        main, ["report", str(exp), "--out", str(tmp_path / "docs" / "r.md")]).output
    (tmp_path / "gone").mkdir()
    report_refused(tmp_path, exp, f"is not a run folder (no {names.RUN_JSON})")
    (tmp_path / "gone" / names.RUN_JSON).write_text("{}")
    (tmp_path / "gone" / "level_0").mkdir()  # started, never finished: no ticket.json, no summary.json
    report_refused(tmp_path, exp, f"has no finished level (no {names.SUMMARY_JSON}, no level_*/{names.TICKET_JSON})")


@pytest.mark.parametrize("index, needle", [
    ({"format_version": 7}, "has format_version 7"),
    ({"runs": [{"label": "imp", "seed": 0}]}, "run 0 needs a label, a seed and a run_dir"),
    ({}, "gone (cited by"),
])
def test_the_results_page_reads_the_index_with_the_reports_checks(tmp_path, index, needle):
    """`report --html` reads experiments through the text report's reader (results_page used to have its own,
    which believed experiment.json)."""
    exp = exp_folder(tmp_path, index)
    before = snapshot(tmp_path)
    r = CliRunner().invoke(main, ["report", str(exp), "--html", str(tmp_path / "page" / "r.html")])
    refused(r, needle)
    assert snapshot(tmp_path) == before and not (tmp_path / "page").exists()


@pytest.mark.parametrize("html", [False, True])
def test_a_ticket_json_missing_a_field_is_one_line_in_the_report(tmp_path, html):
    run = tmp_path / "run"
    (run / "level_0").mkdir(parents=True)
    hp = {"search": {"method": "imp", "rounds": 1}, "training": {"seed": 0}, "model": {"arch": "tiny"}}
    (run / names.RUN_JSON).write_text(json.dumps({"kind": "search-run", "name": "run", "hparams": hp}))
    (run / "level_0" / names.TICKET_JSON).write_text(json.dumps({"format_version": 2, "level": 0, "branch": "ticket",
                                                                "hparams": hp}))
    before = snapshot(tmp_path)
    out = ["--html", str(tmp_path / "r.html")] if html else ["--out", str(tmp_path / "r.md")]
    r = CliRunner().invoke(main, ["report", str(run), *out])
    refused(r, f"{run / 'level_0' / names.TICKET_JSON} lacks a valid sparsity.global (got None)")
    assert snapshot(tmp_path) == before


def test_a_dataset_checked_before_the_searches_is_loaded_once(tmp_path, monkeypatch):
    """check_plan loads each dataset through its loader before the first search; the searches reuse that load
    (data.raw) instead of reading the files a second time, and a replaced file is read again."""
    from edgeticket import data
    from edgeticket.data import loaders

    calls = []
    real = loaders.REGISTRY["digits"]
    monkeypatch.setitem(loaders.REGISTRY, "digits", lambda d: calls.append(d) or real(d))
    data._LAST.clear()
    first = data.raw("digits", None)
    assert data.raw("digits", None) is first and len(calls) == 1
    f = tmp_path / "data.npz"
    np.savez(f, x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.array([0, 1, 0, 1]),
             x_test=np.zeros((2, 8, 8), np.uint8), y_test=np.array([0, 1]))
    a = data.raw("npz", str(f))
    assert data.raw("npz", str(f)) is a
    import os
    import time

    time.sleep(0.01)
    np.savez(f, x_train=np.zeros((6, 8, 8), np.uint8), y_train=np.array([0, 1, 0, 1, 0, 1]),
             x_test=np.zeros((2, 8, 8), np.uint8), y_test=np.array([0, 1]))
    os.utime(f)
    assert len(data.raw("npz", str(f)).y_train) == 6  # the replaced file, read again
