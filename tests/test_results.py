"""`edgeticket report` on every shape of input: single run folders, experiments, mixes of both, runs without
controls, Early-Bird and Early-Time runs, a run with no pruned level; the paper is compared only where a run
reaches its sparsity; api.report returns the facts as JSON-able data (fractions)."""

import json
import shutil

import pytest

from edgeticket import api, results, store
from edgeticket.errors import EdgeTicketError
from edgeticket.formats import names

from conftest import tiny_cfg


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny searches of every method shape (seconds each): IMP with both controls, IMP + Early-Time without
    controls, Early-Bird, and a copy of the IMP run cut back to its dense level (no summary: unfinished)."""
    out = tmp_path_factory.mktemp("runs")
    cfgs = {"imp": tiny_cfg(rounds=2, controls="random-reinit,random-mask"),
            "imp+et": tiny_cfg(rounds=2, early_time=True, et_threshold=1.0),
            "eb": tiny_cfg(method="eb", epochs=8, eb_window=2, eb_eps=0.5, eb_sparsity=0.6)}
    dirs = {}
    for label, cfg in cfgs.items():
        api.search(cfg, out=out, device="cpu", quiet=True)
        dirs[label] = out / cfg.hashname()
    dense = out / "dense-only" / dirs["imp"].name
    shutil.copytree(dirs["imp"], dense)
    (dense / names.SUMMARY_JSON).unlink()
    for level in (1, 2):
        shutil.rmtree(names.level_dir(dense, level))
    dirs["dense-only"] = dense
    return dirs


def _report(tmp_path, *folders):
    out = tmp_path / "docs" / "results.md"
    fx = api.report(list(folders), out)
    json.dumps(fx, allow_nan=False)  # strict JSON: what `report --json` prints
    return fx, out.read_text()


def _kinds(group):
    return [c["kind"] for c in group["conclusions"]]


def test_report_on_a_single_run_folder(runs, tmp_path):
    fx, text = _report(tmp_path, runs["imp"])
    assert fx["kind"] == "report" and fx["out"] == str(tmp_path / "docs" / "results.md")
    (inp,) = fx["inputs"]
    assert inp["kind"] == "run" and inp["name"] == runs["imp"].name and inp["config"] is None
    (g,) = inp["groups"]
    assert g["label"] == "imp" and g["seeds"] == [0] and g["finished"]
    assert [lv["sparsity"] for lv in g["levels"]] == pytest.approx([0.0, 0.25, 0.4375], abs=1e-3)  # fractions
    assert all(0 <= lv["accuracy"]["mean"] <= 1 for lv in g["levels"])
    assert set(g["levels"][1]["controls"]) == {"random-reinit", "random-mask"}
    assert g["final"]["sparsity"] == pytest.approx(0.4375, abs=1e-3)
    assert _kinds(g) == ["accuracy-vs-dense", "paper-sparsity", "ticket-vs-random-reinit", "ticket-vs-random-mask"]
    paper = g["conclusions"][1]
    assert paper["tested"] is False and "short_by" not in paper
    top = f"{100 * g['final']['sparsity']:.2f}%"
    for needle in (f"## {runs['imp'].name}", f"Run folder `{runs['imp']}` (imp, seed 0)", f"| imp | 1 | {top} |",
                   "within 1 point of dense", f"is not tested: the sparsest level here is {top}; at prune rate 0.25 "
                   "that takes --rounds 12 or more", "ticket minus random-reinit: 25.0%:", "ticket minus random-mask"):
        assert needle in text, needle
    assert "short of the paper" not in text and "in line with the paper" not in text
    assert [f.rsplit("-", 1)[-1] for f in fx["figures"]] == ["accuracy.png", "cost.png"]
    assert all(open(f, "rb").read(4) == b"\x89PNG" for f in fx["figures"])


def test_report_without_controls_with_early_time(runs, tmp_path):
    fx, text = _report(tmp_path, runs["imp+et"])
    (g,) = fx["inputs"][0]["groups"]
    assert g["label"] == "imp+et" and g["early_time"]
    assert "no-controls" in _kinds(g) and "early-time" in _kinds(g)
    assert "no control branches were run" in text and "ticket minus" not in text
    assert "Early-Time chose" in text
    et = next(c for c in g["conclusions"] if c["kind"] == "early-time")
    assert et["chosen"][0] in (2, 3, 4) and et["full_timesteps"] == 4
    # the final ticket is retrained at the full T: it is never compared with a dense level trained at T'
    dense = next(c for c in g["conclusions"] if c["kind"] == "accuracy-vs-dense")
    assert 2 not in dense["compared_levels"] and "level(s) trained at another T are not compared" in dense["text"]
    assert "is not tested: the sparsest level compared with dense (trained at T=" in text
    assert not fx["inputs"][0]["comparisons"]  # one search alone: no Early-Time cost ratio


def test_report_on_an_early_bird_run(runs, tmp_path):
    fx, text = _report(tmp_path, runs["eb"])
    (g,) = fx["inputs"][0]["groups"]
    assert g["method"] == "eb" and _kinds(g) == ["early-bird", "no-controls"]
    assert "eb: Early-Bird: the mask settled after epoch" in text
    assert f"the ticket at {100 * g['levels'][1]['sparsity']:.2f}% sparsity reaches" in text and "stopped early" in text
    assert g["levels"][1]["sparsity"] == pytest.approx(0.6, abs=0.01)
    conclusions = " ".join(c["text"] for c in g["conclusions"])
    assert "within 1 point of dense" not in text and "paper" not in conclusions  # EB's dense phase: no baseline
    assert g["search_cost_paper"]["wall_s"]["mean"] > 0 and "search phase" in g["search_cost_paper"]["rule"]


def test_report_on_a_run_with_no_pruned_level(runs, tmp_path):
    fx, text = _report(tmp_path, runs["dense-only"])
    (g,) = fx["inputs"][0]["groups"]
    assert not g["finished"] and [lv["level"] for lv in g["levels"]] == [0]
    assert _kinds(g) == ["unfinished", "no-pruned-level"]
    assert "not finished" in text and "has 1 of 3 levels" in text
    assert "only the dense network (level 0) is finished: there is no pruned ticket to compare yet" in text
    for absent in ("within 1 point", "the paper (", "ticket minus", "no control branches"):
        assert absent not in text, absent
    assert "paper" not in " ".join(c["text"] for c in g["conclusions"])
    assert [f.rsplit("-", 1)[-1] for f in fx["figures"]] == ["cost.png"]  # one level: no accuracy curve


def test_report_mixes_experiment_and_run_folders(runs, tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    store.write_json(exp / names.EXPERIMENT_JSON, {
        "format_version": 1, "kind": "experiment", "name": "mix", "config": "mix.toml",
        "runs": [{"label": "imp", "seed": 0, "run_dir": str(runs["imp"])},
                 {"label": "imp+et", "seed": 0, "run_dir": str(runs["imp+et"])}]})
    fx, text = _report(tmp_path, exp, runs["eb"])
    assert [(i["kind"], i["name"]) for i in fx["inputs"]] == [("experiment", "mix"), ("run", runs["eb"].name)]
    (cmp,) = fx["inputs"][0]["comparisons"]
    assert cmp["kind"] == "early-time-cost" and cmp["compared"] and cmp["with"] == "imp+et" and cmp["without"] == "imp"
    assert "imp+et/imp: wall" in text and "### imp+et" in text and f"## {runs['eb'].name}" in text
    assert {p.name for p in (tmp_path / "docs").glob("*.png")} == {
        "mix-accuracy.png", "mix-cost.png", f"{runs['eb'].name}-accuracy.png", f"{runs['eb'].name}-cost.png"}


@pytest.mark.parametrize("what", ["missing", "empty", "file", "level"])
def test_report_refuses_a_folder_that_is_neither(runs, tmp_path, what):
    p = {"missing": tmp_path / "nope", "empty": tmp_path, "file": tmp_path / "x.txt",
         "level": names.level_dir(runs["imp"], 1)}[what]
    if what == "file":
        p.write_text("x")
    with pytest.raises(EdgeTicketError) as e:
        api.report([p], tmp_path / "r.md")
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg
    assert "a run folder (run.json and level_*/ ticket folders" in msg and "experiment folder (experiment.json" in msg


def test_report_reads_a_version_1_summary(runs, tmp_path):
    """summary.json before format_version 2 held percent and no format_version: read as fractions."""
    old = tmp_path / runs["imp"].name
    shutil.copytree(runs["imp"], old)
    s = json.loads((old / names.SUMMARY_JSON).read_text())
    pct = lambda r: {**r, **{k: 100 * r[k] for k in ("sparsity", "best_acc", "final_acc")}}  # noqa: E731
    v1 = {k: v for k, v in s.items() if k not in ("format_version", "kind", "hparams", "early_bird")}
    v1.update(levels=[pct(r) for r in s["levels"]], final_ticket=pct(s["final_ticket"]))
    (old / names.SUMMARY_JSON).write_text(json.dumps(v1))
    new, _ = _report(tmp_path / "a", runs["imp"])
    got, _ = _report(tmp_path / "b", old)
    a, b = new["inputs"][0]["groups"][0], got["inputs"][0]["groups"][0]
    assert [lv["sparsity"] for lv in b["levels"]] == pytest.approx([lv["sparsity"] for lv in a["levels"]])
    acc = lambda g: [lv["accuracy"]["mean"] for lv in g["levels"]]  # noqa: E731
    assert acc(b) == pytest.approx(acc(a))
    assert _kinds(a) == _kinds(b)


# ---- the sentences on synthetic summaries: the paper's ~97% ---------------------------------------------------------
def _summary(points, method="imp", early_time=False, seed=0, **over):
    """A run summary as results.load_run returns it: (sparsity, accuracy) fractions per ticket level."""
    hp = tiny_cfg(method=method, early_time=early_time, seed=seed, **over).to_dict()
    rows = [{"level": i, "branch": "ticket", "sparsity": s, "best_acc": a, "final_acc": a, "timesteps_trained": 4,
             "nnz": 1, "wall_s": 10.0, "timestep_epochs": 12, "epochs": 3, "dir": f"level_{i}"}
            for i, (s, a) in enumerate(points)]
    return {"method": method, "hparams": hp, "levels": rows, "final_ticket": rows[-1], "early_time": None,
            "search_cost": {"wall_s": 10.0 * len(rows), "timestep_epochs": 12 * len(rows), "epochs": 3 * len(rows)},
            "seed": seed, "run_dir": f"runs/{method}-{seed}", "finished": True, "planned_levels": len(rows)}


def _conclusion(group, kind):
    return next(c for c in group["conclusions"] if c["kind"] == kind)


def test_one_pruned_level_that_drops_gets_no_paper_comparison():
    """The issue's case: one pruned level more than 1 point below dense."""
    g = results.analyse_group("imp", [_summary([(0.0, 0.8607), (0.25, 0.84)])])
    dense, paper = _conclusion(g, "accuracy-vs-dense"), _conclusion(g, "paper-sparsity")
    assert dense["max_sparsity_within_1pt"] is None
    assert dense["text"] == ("imp: no pruned level stays within 1 point of dense (86.07%): at 25.00% sparsity the "
                             "ticket reaches 84.00%.")
    assert not paper["tested"] and "is not tested" in paper["text"] and "short" not in paper["text"]


def test_paper_is_compared_where_the_run_reaches_its_sparsity():
    levels = [(0.0, 0.90), (0.5, 0.90), (0.9, 0.895), (0.95, 0.87), (0.98, 0.86)]
    g = results.analyse_group("imp", [_summary(levels)])
    dense, paper = _conclusion(g, "accuracy-vs-dense"), _conclusion(g, "paper-sparsity")
    assert dense["max_sparsity_within_1pt"] == 0.9 and dense["first_level_outside"] == 3
    assert dense["text"] == ("imp: the ticket stays within 1 point of dense (90.00%) up to 90.00% sparsity; at 95.00% "
                             "it reaches 87.00% (-3.00 points).")
    assert paper["tested"] and paper["short_by"] == pytest.approx(0.07)
    assert "reaches 98.00% sparsity but stays within 1 point of dense only up to 90.00%" in paper["text"]
    assert "7.0 points of sparsity short of the paper" in paper["text"]
    g = results.analyse_group("imp", [_summary([(0.0, 0.90), (0.9, 0.90), (0.97, 0.899)])])
    assert _conclusion(g, "paper-sparsity")["text"] == ("imp: in line with the paper: within 1 point of dense up to "
                                                        "97.00% sparsity (paper: ~97%).")
    # a level within 1 point after one that dropped does not extend "stays within ... up to"
    g = results.analyse_group("imp", [_summary([(0.0, 0.9), (0.5, 0.85), (0.75, 0.9)])])
    assert _conclusion(g, "accuracy-vs-dense")["max_sparsity_within_1pt"] is None
    g = results.analyse_group("imp", [_summary([(0.0, 0.9), (0.5, 0.85), (0.98, 0.8)])])
    paper = _conclusion(g, "paper-sparsity")
    assert paper["tested"] and paper["short_by"] is None and "points of sparsity short" not in paper["text"]
    assert paper["text"] == ("imp: the run reaches 98.00% sparsity but no pruned level stays within 1 point of dense; "
                             "the paper's tickets do up to ~97% sparsity.")


def test_seeds_are_averaged_and_early_time_cost_needs_matching_settings():
    imp = [_summary([(0.0, 0.90), (0.25, 0.91)], seed=s) for s in (0, 1)]
    imp[1]["levels"][1]["final_acc"] = imp[1]["final_ticket"]["final_acc"] = 0.89
    g = results.analyse_group("imp", imp)
    assert g["seeds"] == [0, 1] and g["levels"][1]["accuracy"]["mean"] == pytest.approx(0.90)
    assert g["levels"][1]["accuracy"]["spread"] == pytest.approx(0.01)
    et = [_summary([(0.0, 0.90), (0.25, 0.90)], early_time=True, seed=s, rounds=3) for s in (0, 1)]
    inp = {"kind": "experiment", "name": "x", "dir": "x", "config": None, "groups": {"imp": imp, "imp+et": et}}
    (cmp,) = results.analyse_input(inp)["comparisons"]
    assert not cmp["compared"] and "search.rounds" in cmp["reason"] and "not compared" in cmp["text"]


def test_report_cli_on_a_run_folder(runs, tmp_path):
    from click.testing import CliRunner

    from edgeticket.cli import main

    out = tmp_path / "r.md"
    r = CliRunner().invoke(main, ["report", str(runs["eb"]), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    fx = json.loads(r.stdout)
    assert fx["out"] == str(out) and fx["inputs"][0]["kind"] == "run" and out.is_file()
    r = CliRunner().invoke(main, ["report", str(tmp_path), "--out", str(out)])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "run.json" in r.output
