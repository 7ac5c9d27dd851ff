"""One unit per quantity in every file edgeticket writes: sparsity and accuracy are fractions in [0, 1] in
ticket.json, summary.json/csv and the bundle manifest (percent only where printed); files of the previous
format_version (percent) are still read, converted in one place per format."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from edgeticket import api
from edgeticket.device.views import describe
from edgeticket.formats import bundle, names
from edgeticket.formats import ticket as ticket_fmt
from edgeticket.search.summary import read_summary, table
from edgeticket.search.train import _fraction_accuracies


@pytest.fixture(scope="module")
def int8_bundle(ticket, tmp_path_factory):
    """An int8 bundle (its manifest has the quantization block) of the tiny ticket, onnxruntime only (fast)."""
    m = api.compile_ticket(ticket, "host", out=tmp_path_factory.mktemp("bundles"), weights="int8", validation_n=32,
                           backend="onnxruntime", log=lambda s: None)
    return m["bundle_dir"]


def test_ticket_and_summary_files_hold_fractions(ticket):
    run_dir = ticket.parent
    info = json.loads((ticket / names.TICKET_JSON).read_text())
    assert info["format_version"] == 2 and 0 < info["sparsity"]["global"] < 1
    assert 0 <= info["accuracy"]["final"] <= 1 and 0 <= info["accuracy"]["best"] <= 1
    assert "fraction" in info["accuracy"]["metric"]
    assert all(0 <= h["train_acc"] <= 1 and 0 <= h["test_acc"] <= 1 for h in info["history"])
    s = json.loads((run_dir / names.SUMMARY_JSON).read_text())
    assert s["format_version"] == 2 and s["kind"] == "search-summary"
    assert [r["sparsity"] for r in s["levels"]] == pytest.approx([0.0, 0.25, 0.4375], abs=1e-3)
    assert all(0 <= r[k] <= 1 for r in s["levels"] for k in ("best_acc", "final_acc"))
    assert s["final_ticket"]["sparsity"] == pytest.approx(info["sparsity"]["global"], abs=1e-6)
    with open(run_dir / names.SUMMARY_CSV) as f:
        rows = list(csv.DictReader(f))
    assert [float(r["sparsity"]) for r in rows] == pytest.approx([0.0, 0.25, 0.4375], abs=1e-3)
    assert all(0 <= float(r["final_acc"]) <= 1 for r in rows)
    # percent only where printed
    printed = table(s)
    assert "sparsity %" in printed and f"{100 * s['levels'][1]['sparsity']:.2f}" in printed


def test_version_1_ticket_json_is_read_as_fractions(ticket, tmp_path):
    new = ticket_fmt.read_info(ticket)
    old = json.loads((ticket / names.TICKET_JSON).read_text())
    old["format_version"] = 1
    old["accuracy"] = {"final": 100 * old["accuracy"]["final"], "best": 100 * old["accuracy"]["best"],
                       "metric": "test top-1 %, argmax of logits summed over T"}
    old["history"] = [{**h, "train_acc": 100 * h["train_acc"], "test_acc": 100 * h["test_acc"]} for h in old["history"]]
    d = tmp_path / "level_2"
    d.mkdir()
    (d / names.TICKET_JSON).write_text(json.dumps(old))
    got = ticket_fmt.read_info(d)
    assert got["format_version"] == 2
    assert got["accuracy"]["final"] == pytest.approx(new["accuracy"]["final"])
    assert got["accuracy"]["best"] == pytest.approx(new["accuracy"]["best"])
    assert got["accuracy"]["metric"] == new["accuracy"]["metric"]
    assert [h["test_acc"] for h in got["history"]] == pytest.approx([h["test_acc"] for h in new["history"]])
    assert got["sparsity"] == new["sparsity"]  # sparsity was a fraction in version 1 already
    old["format_version"] = 99
    (d / names.TICKET_JSON).write_text(json.dumps(old))
    with pytest.raises(Exception, match="format_version 99; this edgeticket reads versions 1, 2"):
        ticket_fmt.read_info(d)


def test_version_1_summary_json_is_read_as_fractions(ticket, tmp_path):
    run_dir = ticket.parent
    new = read_summary(run_dir)
    old = json.loads((run_dir / names.SUMMARY_JSON).read_text())
    pct = lambda r: {**r, **{k: 100 * r[k] for k in ("sparsity", "best_acc", "final_acc")}}  # noqa: E731
    v1 = {k: v for k, v in old.items() if k not in ("format_version", "kind")}
    v1.update(levels=[pct(r) for r in old["levels"]], final_ticket=pct(old["final_ticket"]))
    (tmp_path / names.SUMMARY_JSON).write_text(json.dumps(v1))
    got = read_summary(tmp_path)
    assert got["format_version"] == 2
    for a, b in zip(got["levels"] + [got["final_ticket"]], new["levels"] + [new["final_ticket"]]):
        assert {k: a[k] for k in ("sparsity", "best_acc", "final_acc")} == pytest.approx(
            {k: b[k] for k in ("sparsity", "best_acc", "final_acc")})


def test_bundle_manifest_holds_fractions(int8_bundle):
    m = json.loads((Path(int8_bundle) / names.MANIFEST).read_text())
    assert m["format_version"] == bundle.FORMAT_VERSION == 4
    v, q = m["validation"], m["validation"]["quantization"]
    assert all(0 <= x <= 1 for x in v["accuracy"].values()) and 0 <= v["prediction_agreement_with_ticket"] <= 1
    assert 0 <= q["accuracy"] <= 1 and 0 <= q["accuracy_fp32"] <= 1 and 0 <= q["prediction_agreement_with_fp32"] <= 1
    assert q["max_drop"] == 0.02 and "max_drop_points" not in q
    assert 0 <= m["source_ticket"]["accuracy"]["final"] <= 1 and 0 < m["source_ticket"]["sparsity"] < 1
    text = describe(api.inspect(int8_bundle))
    assert f"top-1 ticket {100 * v['accuracy']['ticket_pytorch']:.1f}%" in text
    assert f"int8: top-1 {100 * q['accuracy']:.1f}% vs fp32 {100 * q['accuracy_fp32']:.1f}%" in text


def _older_copy(bundle_dir, tmp_path, version: int):
    """(a copy of the bundle, its manifest, that manifest as `version` wrote it: without lif.neurons)."""
    old = tmp_path / "old"
    shutil.copytree(bundle_dir, old)
    m = json.loads((old / names.MANIFEST).read_text())
    older = json.loads(json.dumps(m))
    older["format_version"] = version
    del older["lif"]["neurons"]
    return old, m, older


def test_version_2_manifest_is_read_as_version_4(int8_bundle, tmp_path):
    """A bundle compiled before accuracies became fractions: inspect/profile read it, converted on read (to 3,
    then to 4: lif.neurons from lif.tau / lif.v_threshold)."""
    old, m, v2 = _older_copy(int8_bundle, tmp_path, 2)
    v = v2["validation"]
    v["accuracy"] = {k: 100 * x for k, x in v["accuracy"].items()}
    v["prediction_agreement_with_ticket"] *= 100
    q = v["quantization"]
    for k in ("accuracy", "accuracy_fp32", "prediction_agreement_with_fp32"):
        q[k] *= 100
    q["max_drop_points"] = 100 * q.pop("max_drop")
    acc = v2["source_ticket"]["accuracy"]
    v2["source_ticket"]["accuracy"] = {"final": 100 * acc["final"], "best": 100 * acc["best"],
                                       "metric": "test top-1 %, argmax of logits summed over T"}
    (old / names.MANIFEST).write_text(json.dumps(v2))
    got = api.inspect(old)  # sha256s verified: the manifest is not among the files it lists
    assert got["format_version"] == 4 and got["upgraded_from"] == 2
    assert got["lif"]["neurons"] == m["lif"]["neurons"]  # the tiny net's neurons are version 3's one LIF
    for path in (("accuracy", "ticket_pytorch"), ("accuracy", "bundle_onnxruntime"),
                 ("prediction_agreement_with_ticket",), ("quantization", "accuracy"), ("quantization", "accuracy_fp32"),
                 ("quantization", "prediction_agreement_with_fp32"), ("quantization", "max_drop")):
        a, b = got["validation"], m["validation"]
        for k in path:
            a, b = a[k], b[k]
        assert a == pytest.approx(b), path
    src, want = got["source_ticket"]["accuracy"], m["source_ticket"]["accuracy"]
    assert src["final"] == pytest.approx(want["final"]) and src["best"] == pytest.approx(want["best"])
    assert src["metric"] == want["metric"]
    strip = lambda t: [l for l in t.splitlines() if not l.startswith("bundle ")]  # noqa: E731
    assert strip(describe(got)) == strip(describe(api.inspect(int8_bundle)))
    v2["format_version"] = 1
    (old / names.MANIFEST).write_text(json.dumps(v2))
    with pytest.raises(Exception, match="format_version 1; this edgeticket reads versions 2, 3, 4"):
        bundle.read_manifest(old)


def test_version_3_manifest_is_read_as_version_4(int8_bundle, tmp_path):
    """A bundle compiled before manifests stated each layer's neuron: every layer the one LIF of lif.tau and
    lif.v_threshold, hard reset to 0 (what version 3 compiled), so its states start at 0."""
    old, m, v3 = _older_copy(int8_bundle, tmp_path, 3)
    (old / names.MANIFEST).write_text(json.dumps(v3))
    got = bundle.load(old)
    assert got["format_version"] == 4 and got["upgraded_from"] == 3
    assert got["lif"]["neurons"] == m["lif"]["neurons"] and bundle.state_init(got) == [0.0] * len(m["lif"]["layers"])
    assert {k: v for k, v in got.items() if k not in ("upgraded_from", "lif")} == \
        {k: v for k, v in m.items() if k != "lif"}  # nothing else changes (fractions already)
    del v3["lif"]["tau"]
    (old / names.MANIFEST).write_text(json.dumps(v3))
    with pytest.raises(Exception, match=r"manifest.json has no lif.tau: the manifest was altered"):
        bundle.read_manifest(old)


def _v3(**lif) -> dict:
    return {"format_version": 3, "lif": {"tau": 2.0, "v_threshold": 0.5, "layers": ["a", "b"],
                                         "state_shapes": [[4], [2, 2]], **lif}}


def test_upgrade_synthesizes_the_neurons_of_a_version_3_manifest():
    v3 = _v3()
    got = bundle.upgrade(v3)
    one = {"kind": "lif", "v_threshold": 0.5, "v_reset": 0.0, "tau": 2.0, "k": None, "decay_input": True}
    assert got["format_version"] == 4 and got["upgraded_from"] == 3 and got["lif"]["neurons"] == [one, one]
    assert got["lif"]["neurons"][0] is not got["lif"]["neurons"][1]
    assert "neurons" not in v3["lif"] and v3["format_version"] == 3  # the argument is left as it was
    assert bundle.state_init(got) == [0.0, 0.0] and bundle.upgrade(got) is got
    v2 = dict(_v3(), format_version=2, validation={"accuracy": {"ticket_pytorch": 50.0}})
    got = bundle.upgrade(v2)  # 2 -> 3 -> 4
    assert got["upgraded_from"] == 2 and got["validation"]["accuracy"] == {"ticket_pytorch": 0.5}
    assert got["lif"]["neurons"] == [one, one]
    v3 = dict(_v3(), validation={"accuracy": {"ticket_pytorch": 0.5}})
    assert bundle.upgrade(v3)["validation"] == v3["validation"]  # 3 -> 4 leaves the fractions alone


def test_state_init_is_each_layers_resting_value():
    from edgeticket.snn.neurons import KINDS, NeuronSpec

    assert bundle.NEURON_KINDS == KINDS and bundle.NEURON_KEYS == tuple(NeuronSpec.__dataclass_fields__)
    specs = [NeuronSpec("lif", 1.0, 0.5, tau=2.0), NeuronSpec("plif", 1.0, None, k=0.3),
             NeuronSpec("if", 1.0, -0.25)]
    import dataclasses

    m = {"lif": {"layers": ["a", "b", "c"], "neurons": [dataclasses.asdict(s) for s in specs]}}
    assert bundle.state_init(m) == [s.v_init for s in specs] == [0.5, 0.0, -0.25]
    assert bundle.state_init({"lif": {"layers": ["a", "b"]}}) == [0.0, 0.0]  # never upgraded: version 3's zeros


def test_checkpoint_state_in_percent_is_converted():
    old = {"epoch": 2, "best_acc": 50.0, "history": [{"epoch": 1, "train_acc": 40.0, "test_acc": 50.0}], "extra": {}}
    new = _fraction_accuracies(old)
    assert new["best_acc"] == 0.5 and new["history"][0]["test_acc"] == 0.5 and new["history"][0]["train_acc"] == 0.4
    assert _fraction_accuracies(new) is new  # a checkpoint in fractions is left as it is
