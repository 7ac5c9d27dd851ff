"""Integrity cannot be switched off: a ticket.json or manifest.json whose file list is missing, empty or short
is refused (not read as 'nothing to check'), with one line naming the file and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeticket import api
from edgeticket.cli import main
from edgeticket.formats import names


@pytest.fixture(scope="module")
def bundle(ticket, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles")
    return Path(api.compile_ticket(ticket, "host", out=out, name="b", backend="onnxruntime,event", validation_n=8,
                                   log=lambda s: None)["bundle_dir"])


@pytest.mark.parametrize("how", ["deleted", "empty", "short"])
def test_a_bundle_whose_file_list_was_tampered_with_is_refused(bundle, tmp_path, how):
    d = tmp_path / "b"
    shutil.copytree(bundle, d)
    m = json.loads((d / names.MANIFEST).read_text())
    if how == "deleted":
        del m["files"]
    elif how == "empty":
        m["files"] = {}
    else:
        del m["files"][names.EVENT_NET]
    (d / names.MANIFEST).write_text(json.dumps(m))
    for cmd in (["inspect", str(d)], ["profile", str(d), "--runs", "2"]):
        r = CliRunner().invoke(main, cmd)
        assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
        assert "does not list the sha256 of" in r.output and len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize("how", ["deleted", "empty", "short"])
def test_a_ticket_whose_file_list_was_tampered_with_is_refused(ticket, tmp_path, how):
    d = tmp_path / "level"
    shutil.copytree(ticket, d)
    info = json.loads((d / names.TICKET_JSON).read_text())
    if how == "deleted":
        del info["files"]
    elif how == "empty":
        info["files"] = {}
    else:
        del info["files"][names.MASK]
    (d / names.TICKET_JSON).write_text(json.dumps(info))
    r = CliRunner().invoke(main, ["compile", str(d), "--target", "host", "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "does not list the sha256 of" in r.output, r.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("entry", [{"../../../etc/passwd": "0" * 64}, {"/abs/lib.so": "0" * 64},
                                   {names.MODEL: None}, {names.MODEL: 7}, {names.MODEL: "not-a-sha"}])
def test_a_file_list_names_only_files_of_the_folder_with_a_sha256(bundle, tmp_path, entry):
    d = tmp_path / "b"
    shutil.copytree(bundle, d)
    m = json.loads((d / names.MANIFEST).read_text())
    m["files"].update(entry)
    (d / names.MANIFEST).write_text(json.dumps(m))
    r = CliRunner().invoke(main, ["inspect", str(d)])
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
    assert "not a file of this folder with a sha256" in r.output and len(r.output.strip().splitlines()) == 1


def test_a_profile_that_is_not_a_profile_is_listed_not_a_traceback(bundle, tmp_path):
    d = tmp_path / "b"
    shutil.copytree(bundle, d)
    (d / "profile-board.json").write_text(json.dumps({"backend": "onnxruntime", "latency": {"p50_s": "fast"},
                                                      "snn": {"spike_rates": [1]}}))
    (d / "profile.json").write_text('{"backend": "onnxruntime", "latency": {"p50_s": NaN}}')
    r = CliRunner().invoke(main, ["inspect", str(d), "--html", str(tmp_path / "p.html")])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "p.html").read_text()
    assert page.count("its values are not a profile") == 2
