"""`edgeticket profile --host`: the pure rules (host specs, the board's answers, what to copy, emulation), then the
real thing: Debian's sshd on 127.0.0.1 at a free port with a throwaway host key and an authorized key in a temp
folder, the board's side a venv holding the built wheel's base install. Skipped where sshd is absent (it needs
root to install: `make cross-tools`), required in CI (EDGETICKET_REQUIRE_SSHD=1)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeticket import api
from edgeticket.cli import main
from edgeticket.device import calibration, machine
from edgeticket.device.remote import MIN_BOARD_VERSION, Board, arch_verdict, parse_probe, plan_copy, probe_verdict
from edgeticket.errors import EdgeTicketError
from edgeticket.formats import names

SSHD = shutil.which("sshd")  # /usr/sbin: on root's PATH (CI); a user without it there gets the skip
REQUIRE_SSHD = os.environ.get("EDGETICKET_REQUIRE_SSHD") == "1"


# ---- pure rules ----

def test_host_specs():
    b = Board.parse("pi@raspberrypi.local:2222")
    assert (b.user, b.host, b.port, b.destination, b.label) == ("pi", "raspberrypi.local", 2222,
                                                               "pi@raspberrypi.local", "raspberrypi.local_2222")
    assert Board.parse("10.0.0.7").ssh_command("true")[-2:] == ["10.0.0.7", "true"]
    assert Board.parse("[fe80::1]:22").host == "fe80::1"
    cmd = Board.parse("jetson", identity="/k", ssh_options=("ProxyJump=gw",)).ssh_command("x")
    assert cmd[:3] == ["ssh", "-o", "BatchMode=yes"] and cmd[cmd.index("-i") + 1] == "/k"
    assert cmd[cmd.index("ProxyJump=gw") - 1] == "-o" and cmd[-3:] == ["--", "jetson", "x"]
    assert Board.parse("[fe80::1%eth0]:22").host == "fe80::1%eth0"
    b = Board.parse("pi@x", python="~/et/bin/python", remote_dir="~/my work")  # ~/ expands on the board
    assert b.edgeticket("profile", b.path("bundles", "a b")) == "~/et/bin/python -m edgeticket profile ~/'my work/bundles/a b'"
    for bad in ("", "pi@", "host:0", "host:99999", "a b", "pi@host:port", "-oProxyCommand=x@h", "pi@-h"):
        with pytest.raises(EdgeTicketError, match="not \\[user@\\]host\\[:port\\]"):
            Board.parse(bad)


def _verdict(rc, out="", err=""):
    return probe_verdict(Board.parse("pi@board"), rc, out, err)


def test_what_the_board_answers_becomes_one_line_naming_the_fix():
    need = f"'edgeticket>={MIN_BOARD_VERSION}'"
    with pytest.raises(EdgeTicketError, match=f"no python3 .*pip install {need}"):
        _verdict(127, err="bash: python3: command not found")
    with pytest.raises(EdgeTicketError, match=f"not installed for python3 on pi@board: run `python3 -m pip install {need}`"):
        _verdict(1, err="/usr/bin/python3: No module named edgeticket")
    with pytest.raises(EdgeTicketError, match="too old .* pip install -U"):
        _verdict(2, err="Usage: edgeticket [OPTIONS] COMMAND [ARGS]...\nError: No such command 'machine'.")
    with pytest.raises(EdgeTicketError, match=f"has edgeticket 0.2.0; profile --host needs >= {MIN_BOARD_VERSION}"):
        _verdict(0, json.dumps({"edgeticket": "0.2.0", "arch": "aarch64"}))
    with pytest.raises(EdgeTicketError, match="did not run the command \\(This account is currently not available"):
        _verdict(None, "This account is currently not available.\n")
    assert _verdict(0, json.dumps({"edgeticket": "9.1.0", "arch": "aarch64"}))["arch"] == "aarch64"


def test_a_bundle_for_another_cpu_names_the_targets_to_compile_for():
    m = {"target": {"name": "host"}, "backends": {"tvm": {"built": True, "arch": "x86_64"},
                                                  "event": {"built": True, "library": {"arch": "x86_64"}}}}
    pi, notes = Board.parse("pi@board"), []
    with pytest.raises(EdgeTicketError, match="TVM library is built for x86_64 .* pi@board is aarch64: .*--target rpi4"):
        arch_verdict(Path("b"), m, pi, "aarch64", "tvm", ["rpi4", "rpi5"], notes.append)
    for backend in (None, "onnxruntime", "event", "all"):  # the ONNX graph runs; the event kernels are rebuilt there
        arch_verdict(Path("b"), m, pi, "aarch64", backend, ["rpi4", "rpi5"], notes.append)
    assert len(notes) == 4 and "rebuilds the event kernels from source" in notes[0] and "--target rpi4" in notes[0]
    arch_verdict(Path("b"), m, pi, "x86_64", "tvm", ["host"], notes.append)
    assert len(notes) == 4


def test_a_rerun_copies_what_changed_manifest_last_and_removes_what_left():
    local = {"manifest.json": "m2", "model.onnx": "a", "event/model.etsp": "e2", "validation.npz": "v"}
    remote = {"manifest.json": "m1", "model.onnx": "a", "event/model.etsp": "e1", "validation.npz": "v",
              "tvm/old.so": "t"}
    assert plan_copy(local, remote) == (["event/model.etsp", "manifest.json"], ["model.onnx", "validation.npz"],
                                        ["tvm/old.so"])
    assert plan_copy(local, local) == ([], sorted(local), [])
    digest = "ab" * 32
    rc, out, hashes = parse_probe(f'{{"edgeticket": "0.3.0"}}\n@@edgeticket-status 0\n@@edgeticket-hashes\n'
                                  f"{digest}  ./event/model.etsp\n{digest} *./model.onnx\n")
    assert rc == 0 and json.loads(out)["edgeticket"] == "0.3.0"
    assert hashes == {"event/model.etsp": digest, "model.onnx": digest}


def test_emulation_is_seen_where_the_cpu_the_kernel_describes_is_another_family():
    x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx512f\n"
    arm = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n"
    assert "qemu-user" in machine.emulator("aarch64", x86, {})
    assert machine.emulator("x86_64", x86, {}) is None and machine.emulator("aarch64", arm, {}) is None
    assert machine.emulator("x86_64", arm, {}) is not None
    assert machine.emulator("aarch64", "", {}) is None  # nothing to go on: real hardware
    # qemu >= 8.2 (or an emulated userland) shows an ARM cpuinfo; the kernel's modalias still tells
    assert "modalias" in machine.emulator("aarch64", arm, {}, "cpu:type:x86,ven0000fam0006mod00CF:feature:,0000")
    assert machine.emulator("aarch64", arm, {}, "cpu:type:aarch64:feature:,0000,0001") is None
    assert machine.emulator("x86_64", x86, {}, "cpu:type:x86,ven0000fam0006mod00CF:feature:,0000") is None
    assert machine.emulator("aarch64", x86, {"EDGETICKET_EMULATED": "0"}) is None
    assert machine.emulator("x86_64", x86, {"EDGETICKET_EMULATED": "1"}) is not None


def test_calibrate_is_refused_under_emulation(ticket, tmp_path, monkeypatch):
    m = api.compile_ticket(ticket, "host", out=tmp_path, name="h", backend="onnxruntime", validation_n=8,
                           log=lambda s: None)
    monkeypatch.setenv("EDGETICKET_EMULATED", "1")
    r = CliRunner().invoke(main, ["profile", m["bundle_dir"], "--calibrate", "--runs", "2"])
    assert r.exit_code == 2 and "--calibrate refused: this process runs under an emulator" in r.output
    r = CliRunner().invoke(main, ["profile", m["bundle_dir"], "--runs", "2", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["emulated"] is True


# ---- a real sshd on 127.0.0.1 ----

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """(port, ssh settings for Board) of a throwaway sshd that lets this user in with a throwaway key."""
    if SSHD is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        if REQUIRE_SSHD:
            pytest.fail("EDGETICKET_REQUIRE_SSHD=1 but sshd/ssh are missing (make cross-tools installs openssh-server)")
        pytest.skip("no sshd here: `make cross-tools` installs Debian's openssh-server (needs root)")
    d = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    port = _free_port()
    (d / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_key'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "UsePAM no", "StrictModes no", f"PidFile {d / 'sshd.pid'}", "PermitRootLogin prohibit-password",
        "LogLevel ERROR", ""]))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # its privilege-separation folder, when started as root
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {(d / 'host_key.pub').read_text().split(' ', 2)[0]} "
                                   f"{(d / 'host_key.pub').read_text().split()[1]}\n")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            pytest.fail(f"sshd did not start: {proc.stderr.read().decode()[-500:]}")
        time.sleep(0.05)
    yield port, {"identity": str(d / "client_key"), "ssh_options": (f"UserKnownHostsFile={d / 'known_hosts'}",
                                                                      "StrictHostKeyChecking=yes")}, d
    proc.terminate()
    proc.wait(timeout=10)


def _cli_ssh(sshd, remote_dir: Path, python: str) -> list[str]:
    port, ssh, _ = sshd
    args = ["--host", f"127.0.0.1:{port}", "--identity", ssh["identity"], "--remote-dir", str(remote_dir),
            "--remote-python", python]
    for o in ssh["ssh_options"]:
        args += ["--ssh-option", o]
    return args


def test_profile_on_a_board_over_ssh_equals_a_local_profile_and_brings_the_record_home(sshd, base_venv, ticket,
                                                                                       tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETICKET_CALIBRATION", str(tmp_path / "calibration"))  # the record stays in this test
    m = api.compile_ticket(ticket, "host", out=tmp_path / "bundles", name="h", validation_n=16, log=lambda s: None)
    b = Path(m["bundle_dir"])
    here = api.profile(b, runs=2, warmup=0, out=tmp_path / "here.json", log=lambda s: None)
    board = tmp_path / "board"
    (board / "bundles" / "other").mkdir(parents=True)
    (board / "bundles" / "other" / "model.onnx").write_text("another bundle, left alone")
    ssh = _cli_ssh(sshd, board, str(base_venv / "bin" / "python"))
    port = sshd[0]

    os.chdir(b)  # `profile . --host`: the copy is named by the bundle's folder, never the board's bundles/ itself
    try:
        r = CliRunner().invoke(main, ["profile", ".", *ssh, "--runs", "3", "--backend", "onnxruntime", "--json"])
    finally:
        os.chdir(tmp_path)
    assert r.exit_code == 0, r.output
    there = json.loads(r.stdout)
    assert there["snn"]["spike_rates"] == here["snn"]["spike_rates"]
    assert there["snn"]["synops"] == here["snn"]["synops"]
    assert there["device"]["python"] == subprocess.run(
        [str(base_venv / "bin" / "python"), "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True).stdout.strip()  # it ran in the board's (base install) Python
    first = there["remote"]["transfer"]
    assert first["copied_files"] == len(m["files"]) + 1 and first["copied_bytes"] > 0  # + manifest.json
    brought = b / names.remote_profile(f"127.0.0.1_{port}")
    assert json.loads(brought.read_text())["snn"] == there["snn"]
    assert (board / "bundles" / "h" / names.MODEL).read_bytes() == (b / names.MODEL).read_bytes()
    assert (board / "bundles" / "other" / "model.onnx").read_text() == "another bundle, left alone"

    r = CliRunner().invoke(main, ["profile", str(b), *ssh, "--runs", "2", "--calibrate", "--json"])
    assert r.exit_code == 0, r.output
    again = json.loads(r.stdout)
    assert again["remote"]["transfer"]["copied_files"] == 0 and again["remote"]["transfer"]["copied_bytes"] == 0
    rec = again["calibration"]["record"]
    assert calibration.newest_record("host")["date"] == rec["date"]  # in this workstation's store, under the target
    assert Path(again["calibration"]["record_file"]) == calibration.user_dir() / "host.json"
    assert (board / "calibration" / "host.json").is_file()  # the board keeps its own copy
    pred = api.predict(b, "host")
    assert rec["date"] in pred["latency"]["source"]

    # a re-compile with other settings: only the files that changed travel, the stale ones go
    api.compile_ticket(ticket, "host", out=tmp_path / "bundles", name="h", validation_n=16, backend="onnxruntime",
                       log=lambda s: None)
    r = CliRunner().invoke(main, ["profile", str(b), *ssh, "--runs", "2", "--json"])
    assert r.exit_code == 0, r.output
    t = json.loads(r.stdout)["remote"]["transfer"]
    assert 0 < t["copied_files"] < first["copied_files"] and t["removed_files"] > 0
    assert not (board / "bundles" / "h" / "event").exists() or not any((board / "bundles" / "h" / "event").iterdir())


def test_board_failures_are_one_line(sshd, ticket, tmp_path):
    m = api.compile_ticket(ticket, "host", out=tmp_path, name="h", backend="onnxruntime,tvm", validation_n=8,
                           log=lambda s: None)
    port, ssh, d = sshd

    def run(*args, python="python3"):
        r = CliRunner().invoke(main, ["profile", m["bundle_dir"], *_cli_ssh(sshd, tmp_path / "board", python),
                                      "--runs", "2", *args])
        assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
        assert isinstance(r.exception, SystemExit), r.exception  # a one-line error, not an exception
        return r.output

    assert "Connection refused" in run("--host", f"127.0.0.1:{_free_port()}")
    (d / "other_key").unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "other_key")], check=True)
    assert "Permission denied" in run("--identity", str(d / "other_key"))
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\necho \"$0: No module named edgeticket\" >&2\nexit 1\n")
    fake.chmod(0o755)
    assert "edgeticket is not installed for" in run(python=str(fake))
    fake.write_text("#!/bin/sh\necho '{\"edgeticket\": \"0.2.0\", \"arch\": \"x86_64\"}'\n")
    assert "has edgeticket 0.2.0; profile --host needs >=" in run(python=str(fake))
    fake.write_text("#!/bin/sh\necho boom >&2\nexit 3\n")
    assert "`edgeticket machine` failed on 127.0.0.1: boom" in run(python=str(fake))
    fake.write_text(f"#!/bin/sh\necho '{{\"edgeticket\": \"{MIN_BOARD_VERSION}\", \"arch\": \"aarch64\"}}'\n")
    out = run("--backend", "tvm", python=str(fake))
    assert "TVM library is built for x86_64" in out and "127.0.0.1 is aarch64" in out and "rpi4" in out
    assert not (tmp_path / "board" / "bundles").exists()  # nothing was copied for a board that cannot run it


def test_machine_says_what_this_machine_is():
    r = CliRunner().invoke(main, ["machine", "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    assert m["arch"] == machine.machine_arch() and m["edgeticket"] == api.machine()["edgeticket"]
    assert m["emulated"] is False and m["cores"] >= 1 and m["bundle_format_version"] == 4
    r = CliRunner().invoke(main, ["machine"])
    assert r.exit_code == 0 and r.output.startswith(f"edgeticket {m['edgeticket']} on {m['arch']}")


# ---- the emulated Raspberry Pi 4 as the board: compile here -> profile there, the whole user workflow ----

EMULATED = Path(os.environ.get("EDGETICKET_EMULATED_RPI4", Path(__file__).resolve().parent.parent / ".cache" /
                                "emulated-rpi4"))
REQUIRE_EMULATED = os.environ.get("EDGETICKET_REQUIRE_EMULATED") == "1"


@pytest.fixture(scope="module")
def emulated_rpi4(tmp_path_factory):
    """A python for the emulated board (make emulated-rpi4) with the built wheel's edgeticket on its path."""
    if not (EMULATED / "python3").is_file() or shutil.which("aarch64-linux-gnu-gcc") is None:
        if REQUIRE_EMULATED:
            pytest.fail(f"EDGETICKET_REQUIRE_EMULATED=1 but {EMULATED}/python3 or the cross compilers are missing "
                        "(make cross-tools emulated-rpi4)")
        pytest.skip("no emulated Raspberry Pi 4: make cross-tools (root) then make emulated-rpi4")
    from build_wheel import build_wheel

    d = tmp_path_factory.mktemp("emulated")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(d / "site"),
                        str(build_wheel(d))], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    python = d / "board-python"
    python.write_text(f"#!/bin/sh\nPYTHONPATH='{d / 'site'}' exec '{EMULATED / 'python3'}' \"$@\"\n")
    python.chmod(0o755)
    return python


def test_compile_here_profile_on_the_emulated_pi_over_ssh(sshd, emulated_rpi4, ticket, tmp_path):
    m = api.compile_ticket(ticket, "rpi4", out=tmp_path / "bundles", name="pi", validation_n=16, log=lambda s: None)
    assert m["backends"]["event"]["built"] and m["backends"]["tvm"]["built"]  # aarch64 builds, cross-compiled
    b = Path(m["bundle_dir"])
    records_before = len(calibration.records("rpi4"))
    here = api.profile(b, runs=2, warmup=0, out=tmp_path / "here.json", log=lambda s: None)  # host onnxruntime
    ssh = _cli_ssh(sshd, tmp_path / "board", str(emulated_rpi4))
    r = CliRunner().invoke(main, ["profile", str(b), *ssh, "--backend", "all", "--runs", "2", "--warmup", "0",
                                  "--json"])
    assert r.exit_code == 0, r.output
    there = json.loads(r.stdout)
    assert there["remote"]["board"]["arch"] == "aarch64" and there["remote"]["board"]["emulated"]
    assert set(there["profiles"]) == {"onnxruntime", "event", "tvm"} and there["emulated"] is True
    for backend, p in there["profiles"].items():
        assert p["device"]["machine"] == "aarch64" and p["emulated"] is True, backend
        assert p["snn"]["spike_rates"] == here["snn"]["spike_rates"], backend  # spike for spike, every backend
        assert p["snn"]["synops"] == here["snn"]["synops"], backend
    r = CliRunner().invoke(main, ["profile", str(b), *ssh, "--runs", "2"])
    assert r.exit_code == 0 and "EMULATED" in r.stdout and "latencies are the emulator's" in r.stdout
    fresh = _cli_ssh(sshd, tmp_path / "fresh-board", str(emulated_rpi4))
    r = CliRunner().invoke(main, ["profile", str(b), *fresh, "--runs", "2", "--calibrate"])
    assert r.exit_code == 2 and "--calibrate refused: 127.0.0.1 runs under an emulator" in r.output
    assert not (tmp_path / "fresh-board" / "bundles").exists()  # refused before anything was copied
    assert len(calibration.records("rpi4")) == records_before  # nothing from the emulator reached the store
