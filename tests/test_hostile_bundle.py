"""Hostile bundles (issue 18, item 2, the device half): a bundle whose manifest.json and files were edited, with
the manifest's sha256s rewritten to match (so formats.bundle.verify passes), is refused by profile, predict,
inspect and check with exit code 2 and one line naming the file and the fix: never a traceback, never a crash of
the native kernels (a huge layer count, a truncated .etsp or a truncated shared library used to end in SIGSEGV
or SIGBUS), and the bundle folder is left as it was."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeticket import api
from edgeticket.cli import main
from edgeticket.errors import EdgeTicketError, missing_extra
from edgeticket.formats import bundle as bundle_fmt
from edgeticket.formats import elf, etsp, names

from conftest import ROOT

HAS_TVM = not missing_extra("tvm")


@pytest.fixture(scope="module")
def bundle(ticket, tmp_path_factory) -> Path:
    """One time-folded host bundle with the event backend (and TVM where installed), built once per module."""
    out = tmp_path_factory.mktemp("bundles")
    backend = "onnxruntime,event" + (",tvm" if HAS_TVM else "")
    m = api.compile_ticket(ticket, "host", out=out, name="h", layout="time-folded", backend=backend,
                           validation_n=8, log=lambda s: None)
    d = Path(m["bundle_dir"])
    assert m["backends"]["event"]["built"] and (d / m["backends"]["event"]["library"]["file"]).is_file()
    return d


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def tampered(bundle: Path, tmp_path: Path, manifest=None, file: str | None = None, edit=None) -> Path:
    """A copy of the bundle with `file`'s bytes replaced by edit(bytes) and the manifest changed by manifest(m),
    the manifest's sha256 of the file rewritten to match (what an attacker who edits both does)."""
    d = tmp_path / "b"
    shutil.copytree(bundle, d)
    m = json.loads((d / names.MANIFEST).read_text())
    if file is not None:
        (d / file).write_bytes(edit((d / file).read_bytes()))
        m["files"][file] = hashlib.sha256((d / file).read_bytes()).hexdigest()
    if manifest is not None:
        manifest(m)
    (d / names.MANIFEST).write_text(json.dumps(m))
    bundle_fmt.verify(d, m)  # the sha256s hold: only the new checks stand between the file and the runners
    return d


def commands(d: Path) -> dict:
    return {"profile": ["profile", str(d), "--runs", "1", "--warmup", "0"],
            "predict": ["predict", str(d), "--target", "host"],
            "inspect": ["inspect", str(d)],
            "check": ["check", str(d), "--target", "host"]}


def refused(r, needle: str) -> None:
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert needle in r.output, r.output
    assert "copy the whole bundle folder again" in r.output, r.output


def _set(key, value):
    def edit(m):
        cur = m
        *path, last = key.split(".")
        for k in path:
            cur = cur[k]
        cur[last] = value
    return edit


def _delete(key):
    def edit(m):
        cur = m
        *path, last = key.split(".")
        for k in path:
            cur = cur[k]
        del cur[last]
    return edit


MANIFEST_CASES = {
    "T=0": (_set("timesteps", 0), "timesteps must be an integer in [1, 65536] (got 0)"),
    "T string": (_set("timesteps", "5"), "timesteps must be an integer in [1, 65536] (got '5')"),
    "T bool": (_set("timesteps", True), "timesteps must be an integer"),
    "T not the graph's": (_set("timesteps", 5), "timesteps 5 disagrees with model.onnx's graph's output "
                                                "events__features_1_conv [4, 'batch'] (T first)"),
    "input shape wrong": (_set("input.shape", ["batch", 1, 9, 9]), "input.shape ['batch', 1, 9, 9] disagrees with "
                                                                   "model.onnx's graph's input input"),
    "input shape not 3 dims": (_set("input.shape", ["batch", 1, 8]), "input.shape must be [batch, C, H, W]"),
    "input shape negative": (_set("input.shape", ["batch", 1, -8, 8]), "input.shape[1:] (C, H, W) must be 3 "
                                                                       "positive integers"),
    "input name wrong": (_set("input.name", "x"), "its input 0 is 'input', the manifest implies 'x'"),
    "layout unknown": (_set("layout", "time-unrolled"), "layout must be one of time-folded, streaming "
                                                        "(got 'time-unrolled')"),
    "layout not the graph's": (_set("layout", "streaming"), "layout 'streaming' disagrees with model.onnx's graph, "
                                                            "a time-folded graph"),
    "classes mismatch": (_set("num_classes", 7), "num_classes 7 disagrees with model.onnx's graph's output logits"),
    "one class": (_set("num_classes", 1), "num_classes must be an integer in [2, 1048576] (got 1)"),
    "LIF layer renamed": (lambda m: m["lif"]["layers"].__setitem__(0, "stem_lif2"),
                          "its output 1 is 'spikes__stem_lif', the manifest implies 'spikes__stem_lif2'"),
    "state shapes short": (lambda m: m["lif"]["state_shapes"].pop(), "lif.state_shapes must be a list of 2 shapes"),
    "neurons short": (lambda m: m["lif"]["neurons"].pop(), "lif.neurons must be a list of 2 neurons (one per "
                                                            "lif.layers)"),
    "neuron kind unknown": (lambda m: m["lif"]["neurons"][1].__setitem__("kind", "alif"),
                            "lif.neurons[1].kind must be one of lif, plif, if (got 'alif')"),
    "neuron threshold string": (lambda m: m["lif"]["neurons"][0].__setitem__("v_threshold", "1.0"),
                                "lif.neurons[0].v_threshold must be a finite number (got '1.0')"),
    "neuron reset bool": (lambda m: m["lif"]["neurons"][0].__setitem__("v_reset", True),
                          "lif.neurons[0].v_reset must be a finite number, or null (soft reset) (got True)"),
    "lif neuron without tau": (lambda m: m["lif"]["neurons"][0].__setitem__("tau", None),
                               "lif.neurons[0].tau must be a finite number > 0 (a lif neuron's time constant)"),
    "neuron without decay_input": (lambda m: m["lif"]["neurons"][1].pop("decay_input"),
                                   "has no lif.neurons[1].decay_input"),
    "missing neurons": (_delete("lif.neurons"), "has no lif.neurons"),
    "version 3 without tau": (lambda m: (m.__setitem__("format_version", 3), m["lif"].pop("neurons"),
                                         m["lif"].pop("tau")), "has no lif.tau"),
    "layer list not a list": (_set("layers", {"stem.conv": 1}), "layers must be a non-empty list"),
    "layer without kind": (lambda m: m["layers"][0].pop("kind"), "has no layers[0].kind"),
    "layer nnz negative": (lambda m: m["layers"][1].__setitem__("nnz", -1), "layers[1].nnz must be an integer >= 0"),
    "missing timesteps": (_delete("timesteps"), "has no timesteps"),
    "missing layers": (_delete("layers"), "has no layers"),
    "missing input shape": (_delete("input.shape"), "has no input.shape"),
    "missing memory plan": (_delete("memory_plan"), "has no memory_plan"),
    "missing target": (_delete("target"), "has no target"),
    "backends not an object": (_set("backends", ["event"]), "backends must be an object"),
}


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
@pytest.mark.parametrize("command", ["profile", "predict", "inspect", "check"])
def test_a_manifest_that_disagrees_with_itself_or_the_graph_is_one_line(bundle, tmp_path, case, command):
    edit, needle = MANIFEST_CASES[case]
    d = tampered(bundle, tmp_path, manifest=edit)
    before = snapshot(d)
    r = CliRunner().invoke(main, commands(d)[command])
    refused(r, needle)
    assert str(d / names.MANIFEST) in r.output
    assert snapshot(d) == before  # nothing written, nothing changed


@pytest.fixture(scope="module")
def streaming(ticket, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("streaming")
    return Path(api.compile_ticket(ticket, "host", out=out, name="s", layout="streaming", backend="onnxruntime",
                                   validation_n=8, log=lambda s: None)["bundle_dir"])


STREAMING_CASES = {
    "layout not the graph's": (_set("layout", "time-folded"), "layout 'time-folded' disagrees with model.onnx's "
                                                              "graph, a streaming graph"),
    "state shape not the graph's": (lambda m: m["lif"]["state_shapes"].__setitem__(0, [8, 8, 9]),
                                    "lif.state_shapes[0] [8, 8, 9] disagrees with model.onnx's graph's input "
                                    "v__stem_lif ['batch', 8, 8, 8]"),
    "T not the graph's": (_set("timesteps", 3), "timesteps 3 disagrees with model.onnx, compiled with timesteps 4"),
    "LIF layers swapped": (lambda m: m["lif"]["layers"].reverse(), "its input 1 is 'v__stem_lif', the manifest "
                                                                   "implies 'v__features_1_lif'"),
}


@pytest.mark.parametrize("case", list(STREAMING_CASES))
@pytest.mark.parametrize("command", ["profile", "check"])
def test_a_streaming_manifest_is_checked_against_its_state_inputs(streaming, tmp_path, case, command):
    edit, needle = STREAMING_CASES[case]
    d = tampered(streaming, tmp_path, manifest=edit)
    before = snapshot(d)
    refused(CliRunner().invoke(main, commands(d)[command]), needle)
    assert snapshot(d) == before


@pytest.mark.parametrize("edit,needle", [(_delete("validation"), "has no 'validation'"),
                                         (_set("weights.layers", 3), "holds a value of the wrong type")])
def test_inspect_names_a_key_it_shows_that_is_missing_or_mangled(bundle, tmp_path, edit, needle):
    d = tampered(bundle, tmp_path, manifest=edit)
    refused(CliRunner().invoke(main, commands(d)["inspect"]), needle)


def test_a_manifest_with_no_json_object_is_one_line(bundle, tmp_path):
    d = tmp_path / "b"
    shutil.copytree(bundle, d)
    (d / names.MANIFEST).write_text("[]")
    for args in commands(d).values():
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_validation_samples_that_are_not_the_inputs_are_one_line(bundle, tmp_path):
    import io

    def wrong_shape(_):
        buf = io.BytesIO()
        np.savez(buf, x=np.zeros((4, 1, 9, 9), np.float32), y=np.zeros(4, np.int64))
        return buf.getvalue()

    for edit, needle in ((wrong_shape, "holds samples x [4, 1, 9, 9]"), (lambda b: b"not a zip", "no readable")):
        d = tampered(bundle, tmp_path / needle[:4], file=names.VALIDATION_SAMPLES, edit=edit)
        before = snapshot(d)
        r = CliRunner().invoke(main, commands(d)["profile"] + ["--backend", "onnxruntime"])
        refused(r, needle)
        assert names.VALIDATION_SAMPLES in r.output and snapshot(d) == before


def test_a_graph_onnxruntime_cannot_load_is_one_line(bundle, tmp_path):
    """Inputs and outputs as the manifest says, a node onnxruntime does not know: its error, in one line."""
    def unknown_op(b: bytes) -> bytes:
        assert b"\x22\x04Conv" in b
        return b.replace(b"\x22\x04Conv", b"\x22\x04Cxnv", 1)

    d = tampered(bundle, tmp_path, file=names.MODEL, edit=unknown_op)
    before = snapshot(d)
    refused(CliRunner().invoke(main, commands(d)["profile"] + ["--backend", "onnxruntime"]),
            "model.onnx: onnxruntime cannot load it")
    assert snapshot(d) == before


# ---- kernel and library files: checked before the C code or the loader sees them -----------------------------
# run in a child process: before the checks these cases crashed the interpreter (SIGSEGV, SIGBUS), which would
# take pytest down with them; a crash here is a negative return code.

def _etsp_huge_layer_count(b: bytes) -> bytes:
    return b[:8] + struct.pack("<I", 0xFFFFFFFF) + b[12:]


def _etsp_bad_colptr(b: bytes) -> bytes:
    at = 4 * (etsp.HEADER_WORDS + etsp.LAYER_WORDS[etsp.VERSION]) + 4  # the stem's colptr[1]
    return b[:at] + struct.pack("<i", 0x7FFFFFFF) + b[at + 4:]


def _etsp_classifier_too_wide(b: bytes) -> bytes:
    """The classifier (the last layer) says 11 outputs: its logits would be written past the 10 of a row."""
    h = np.frombuffer(b[:48], "<u4")
    off, rb = 48, 4 * etsp.LAYER_WORDS[etsp.VERSION]
    for i in range(int(h[2])):
        r = np.frombuffer(b[off:off + rb], "<u4").copy()
        if i == int(h[2]) - 1:
            r[4] = 11
            return b[:off] + r.tobytes() + b[off + rb:] + b"\0" * 4  # + one bias value
        off += rb
        if r[0] not in etsp.POOLS:
            off += 4 * (int(r[11]) + 1) + int(r[12]) + (-int(r[12])) % 4 + 4 * int(r[12]) + 4 * int(r[4])
    raise AssertionError("no classifier")


KERNEL_CASES = {
    "etsp huge layer count": (names.EVENT_NET, _etsp_huge_layer_count, "event", "declares 4294967295 layers"),
    "etsp truncated": (names.EVENT_NET, lambda b: b[:len(b) // 2], "event", "truncated"),
    "etsp one byte short": (names.EVENT_NET, lambda b: b[:-1], "event", "the file has"),
    "etsp one byte long": (names.EVENT_NET, lambda b: b + b"\0", "event", "the file has"),
    "etsp header only": (names.EVENT_NET, lambda b: b[:20], "event", "truncated"),
    "etsp bad magic": (names.EVENT_NET, lambda b: b"XXXX" + b[4:], "event", "not an .etsp v1 or v2 network file"),
    "etsp bad column pointers": (names.EVENT_NET, _etsp_bad_colptr, "event", "column pointers"),
    "etsp classifier too wide": (names.EVENT_NET, _etsp_classifier_too_wide, "event", "does not follow from the "
                                                                                      "classifier"),
    "event .so truncated": ("event-lib", lambda b: b[:len(b) // 2], "event", "truncated"),
    "event .so one byte short": ("event-lib", lambda b: b[:-1], "event", "truncated"),
    "event .so not ELF": ("event-lib", lambda b: b"not a shared library at all", "event", "no ELF header"),
    "event .so empty": ("event-lib", lambda b: b"", "event", "the file is empty"),
    "tvm .so truncated": ("tvm-lib", lambda b: b[:len(b) // 2], "tvm", "truncated"),
    "tvm .so not ELF": ("tvm-lib", lambda b: b"#!/bin/sh\necho hi\n" * 10, "tvm", "no ELF header"),
}


def _kernel_file(bundle: Path, which: str) -> str:
    m = json.loads((bundle / names.MANIFEST).read_text())
    if which == "event-lib":
        return m["backends"]["event"]["library"]["file"]
    if which == "tvm-lib":
        return m["backends"]["tvm"]["library"]
    return which


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeticket", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


@pytest.mark.parametrize("case", list(KERNEL_CASES))
def test_a_tampered_kernel_file_is_one_line_not_a_crash(bundle, tmp_path, case):
    which, edit, backend, needle = KERNEL_CASES[case]
    if backend == "tvm" and not HAS_TVM:
        pytest.skip("the TVM runtime is not installed: the bundle has no TVM library")
    name = _kernel_file(bundle, which)
    d = tampered(bundle, tmp_path, file=name, edit=edit)
    before = snapshot(d)
    r = _run_cli("profile", str(d), "--runs", "1", "--warmup", "0", "--backend", backend)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 2, (r.returncode, out)  # a crash is a negative code (-11 SIGSEGV, -7 SIGBUS)
    assert "Traceback" not in out and len(out.splitlines()) == 1, out
    assert needle in out and name in out and "copy the whole bundle folder again" in out, out
    assert snapshot(d) == before


def test_the_bundle_default_backend_is_checked_too(bundle, tmp_path):
    """profile without --backend runs the bundle's recorded default (the event backend here)."""
    d = tampered(bundle, tmp_path, file=names.EVENT_NET, edit=_etsp_huge_layer_count,
                 manifest=_set("backends.default", "event"))
    r = _run_cli("profile", str(d), "--runs", "1", "--warmup", "0")
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 2 and len(out.splitlines()) == 1 and "declares 4294967295 layers" in out, (r.returncode,
                                                                                                        out)


def test_the_checks_refuse_in_pure_python(bundle, tmp_path):
    """The format checks themselves, without a runner: one EdgeTicketError each, naming the file."""
    d = tampered(bundle, tmp_path, file=names.EVENT_NET, edit=_etsp_huge_layer_count)
    with pytest.raises(EdgeTicketError, match="declares 4294967295 layers"):
        etsp.check_header(d / names.EVENT_NET)
    lib = d / _kernel_file(bundle, "event-lib")
    lib.write_bytes(lib.read_bytes()[:-100])
    with pytest.raises(EdgeTicketError, match="truncated"):
        elf.check_library(lib, "x86_64")
    good = bundle / _kernel_file(bundle, "event-lib")
    arch = json.loads((bundle / names.MANIFEST).read_text())["backends"]["event"]["library"]["arch"]
    other = "aarch64" if arch != "aarch64" else "x86_64"
    with pytest.raises(EdgeTicketError, match=f"not {other}"):
        elf.check_library(good, other)


# ---- the untampered bundle passes every check ---------------------------------------------------------------

def test_the_untampered_bundle_passes_every_check(bundle, tmp_path):
    m = bundle_fmt.load(bundle)  # fields, sha256s, agreement with model.onnx
    assert bundle_fmt.read_manifest(bundle) == m
    head = etsp.check_header(bundle / names.EVENT_NET, input_shape=tuple(m["input"]["shape"][1:]),
                             timesteps=m["timesteps"], num_classes=m["num_classes"],
                             lif_layers=len(m["lif"]["layers"]), synaptic_layers=len(bundle_fmt.synaptic_layers(m)))
    assert head["num_classes"] == m["num_classes"] and head["timesteps"] == m["timesteps"]
    lib = m["backends"]["event"]["library"]
    assert elf.check_library(bundle / lib["file"], lib["arch"])["size"] > 0
    if HAS_TVM:
        tv = m["backends"]["tvm"]
        assert elf.check_library(bundle / tv["library"], tv["arch"])["size"] > 0
    x, y = bundle_fmt.validation_samples(bundle, m)
    assert x.shape[1:] == tuple(m["input"]["shape"][1:]) and len(y) == len(x)
    before = snapshot(bundle)
    for name, args in commands(bundle).items():
        if name == "profile":
            args = args + ["--out", str(tmp_path / "p.json")]
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, (name, r.output)
    for backend in ["event"] + (["tvm"] if HAS_TVM else []):
        r = _run_cli("profile", str(bundle), "--runs", "1", "--warmup", "0", "--backend", backend,
                     "--out", str(tmp_path / f"{backend}.json"))
        assert r.returncode == 0, r.stderr
    assert snapshot(bundle) == before
