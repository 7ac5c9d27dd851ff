"""`edgeticket profile BUNDLE --host [user@]host[:port]`: profile a bundle on a board from the workstation.

It drives the system's OpenSSH client (`ssh -o BatchMode=yes`) rather than a Python SSH library: the user's keys,
agent, ~/.ssh/config aliases, ProxyJump and known_hosts work as they do at the prompt, nothing is added to the
base install, and every step can be typed by hand (docs/devices.md shows them). A profile is three sessions:

1. probe: the board's edgeticket (`edgeticket machine --json`: version, CPU architecture, emulation) and the
   sha256s of what an earlier run left in the board's copy of the bundle;
2. copy: the files whose sha256 differs, as one tar stream unpacked by the board's `tar`; files no longer in
   the bundle are removed there (a rerun copies only what changed);
3. run: the board's `edgeticket profile --json`; its progress lines stream to the user, its stdout is the
   profile, written beside the bundle here as profile-<host>.json; with --calibrate, the board's new record is
   appended to this workstation's calibration store under the target's name.

On the board everything lives under the remote folder (default ~/edgeticket): bundles/<bundle>/,
profiles/<bundle>.json and calibration/ (the board's own records).
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import shutil
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import __version__, store
from ..errors import EdgeTicketError
from ..formats import bundle as bundle_fmt
from ..formats import names

# the oldest board-side edgeticket that has what this module calls (`machine --json`, profile's --json output)
MIN_BOARD_VERSION = "0.3.0"
_JSON = "@@edgeticket-output"  # what the board prints after this line is edgeticket's (a login may chatter)
_STATUS = "@@edgeticket-status"
_HASHES = "@@edgeticket-hashes"


@dataclass(frozen=True)
class Board:
    """Where and how to reach a board: `[user@]host[:port]` plus the ssh settings."""

    host: str
    user: str | None = None
    port: int | None = None
    identity: str | None = None  # ssh -i
    ssh_options: tuple[str, ...] = ()  # each passed as ssh -o OPTION
    remote_dir: str = "edgeticket"  # on the board; relative paths are relative to the login's home
    python: str = "python3"  # the board's Python that has edgeticket installed (a venv's python works)
    connect_timeout_s: int = 15

    @classmethod
    def parse(cls, spec: str, **settings) -> "Board":
        """`[user@]host[:port]` ([v6:addr]:port for IPv6 literals)."""
        m = re.fullmatch(r"(?:([^@\s:-][^@\s:]*)@)?(\[[0-9a-fA-F:.]+(?:%[\w.-]+)?\]|[^@\s:\[\]-][^@\s:\[\]]*)"
                         r"(?::(\d+))?", spec or "")  # no leading '-': ssh would read it as an option
        if not m or (m.group(3) is not None and not 0 < int(m.group(3)) < 65536):
            raise EdgeTicketError(f"--host '{spec}' is not [user@]host[:port] (e.g. pi@raspberrypi.local or "
                                  "pi@192.168.1.20:2222)")
        board = cls(host=m.group(2).strip("[]"), user=m.group(1), port=int(m.group(3)) if m.group(3) else None,
                    **settings)
        if not board.remote_dir.strip() or not board.python.strip():
            raise EdgeTicketError("--remote-dir and --remote-python must not be empty")
        return board

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def label(self) -> str:
        """The host as a file-name part (profile-<label>.json)."""
        return re.sub(r"[^A-Za-z0-9._-]", "_", self.host + (f"_{self.port}" if self.port else ""))

    def ssh_command(self, script: str) -> list[str]:
        # BatchMode: never a password prompt; ServerAlive: a board that drops off ends the run within a minute
        cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout_s}",
               "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
        if self.port:
            cmd += ["-p", str(self.port)]
        if self.identity:
            cmd += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        for opt in self.ssh_options:
            cmd += ["-o", opt]
        return cmd + ["--", self.destination, script]

    def edgeticket(self, *args: str) -> str:
        return " ".join([sh_word(self.python), "-m", "edgeticket", *map(sh_word, args)])

    def path(self, *parts: str) -> str:
        return "/".join([self.remote_dir.rstrip("/") or "", *parts])


def sh_word(word: str) -> str:
    """`word` quoted for the board's shell, a leading ~/ left to expand to the login's home."""
    return "~/" + shlex.quote(word[2:]) if word.startswith("~/") else shlex.quote(word)


@dataclass
class Transfer:
    """What a copy moved."""

    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    payload_bytes: int = 0  # the copied files' sizes
    stream_bytes: int = 0  # what went through ssh (tar framing included)

    def as_dict(self) -> dict:
        return {"copied_files": len(self.copied), "unchanged_files": len(self.unchanged),
                "removed_files": len(self.removed), "copied_bytes": self.payload_bytes,
                "stream_bytes": self.stream_bytes, "copied": self.copied}


# ---- pure rules (tested without a board) ----

def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v.split("+")[0])[:3])


def probe_verdict(board: Board, rc: int | None, machine_json: str, stderr: str) -> dict:
    """The board's `edgeticket machine --json` output, or a one-line error naming what to install there."""
    last = next((l.strip() for l in reversed(stderr.splitlines()) if l.strip()), "")
    need = f"'edgeticket>={MIN_BOARD_VERSION}'"
    py = board.python
    if rc is None:
        said = (machine_json.strip().splitlines() or [last or "nothing"])[0]
        raise EdgeTicketError(f"{board.destination} did not run the command ({said}): log in as a user with a "
                              "shell, or check the account's ssh forced command")
    if rc == 127 or ("not found" in last and "edgeticket" not in last) or "No such file" in last:
        raise EdgeTicketError(f"{board.destination} has no {py} ({last}): install Python 3.8+ there and "
                              f"`{py} -m pip install {need}`, or give the board's Python with --remote-python")
    if "No module named edgeticket" in stderr:
        raise EdgeTicketError(f"edgeticket is not installed for {py} on {board.destination}: run "
                              f"`{py} -m pip install {need}` there (or give the Python that has it with --remote-python)")
    if "No such command" in stderr:
        raise EdgeTicketError(f"the edgeticket on {board.destination} is too old for profile --host (it lacks "
                              f"`edgeticket machine`): run `{py} -m pip install -U {need}` there")
    if rc != 0:
        raise EdgeTicketError(f"`edgeticket machine` failed on {board.destination}: {last or f'exit {rc}'}")
    try:
        facts = json.loads(machine_json)
        version = str(facts["edgeticket"])
        facts["arch"]
    except (ValueError, KeyError, TypeError):
        raise EdgeTicketError(f"{board.destination}: `edgeticket machine --json` printed no machine facts "
                              f"({machine_json.strip()[:80]!r}): run `{py} -m pip install -U {need}` there") from None
    if version_tuple(version) < version_tuple(MIN_BOARD_VERSION):
        raise EdgeTicketError(f"{board.destination} has edgeticket {version}; profile --host needs >= "
                              f"{MIN_BOARD_VERSION} (this workstation has {__version__}): run "
                              f"`{py} -m pip install -U {need}` there")
    return facts


def library_arches(manifest: dict) -> set[str]:
    """The CPU architectures of the native libraries a bundle carries (TVM, event kernels)."""
    b = manifest.get("backends", {})
    tvm, event = b.get("tvm") or {}, b.get("event") or {}
    return {a for a in (tvm.get("arch") if tvm.get("built") else None,
                        (event.get("library") or {}).get("arch") if event.get("built") else None) if a}


def arch_verdict(bundle_dir: Path, manifest: dict, board: Board, board_arch: str, backend: str | None,
                 targets_of_arch: list[str], log: Callable[[str], None]) -> None:
    """A TVM library is for one CPU: asking a board of another for it is refused, naming the board's targets. The
    ONNX graph runs anywhere, and the event kernels are rebuilt on the board from the packaged C source (it needs
    a C compiler): those only get a note."""
    other = sorted(library_arches(manifest) - {board_arch})
    if not other:
        return
    tvm = (manifest.get("backends") or {}).get("tvm") or {}
    which = (f"one of its targets ({', '.join(targets_of_arch)}): edgeticket compile TICKET --target "
             f"{targets_of_arch[0]}" if targets_of_arch else f"a target file of your own with arch = \"{board_arch}\"")
    if backend == "tvm" and tvm.get("built") and tvm.get("arch") != board_arch:
        raise EdgeTicketError(f"{bundle_dir}'s TVM library is built for {tvm.get('arch')} (target "
                              f"{manifest['target']['name']}) but {board.destination} is {board_arch}: compile the "
                              f"ticket for {which}")
    log(f"note: {bundle_dir} carries libraries for {', '.join(other)}, {board.destination} is {board_arch}: the "
        f"board runs onnxruntime and rebuilds the event kernels from source; for its own builds compile for {which}")


def plan_copy(local: dict[str, str], remote: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """(to copy, unchanged, to remove) from {relative path: sha256} here and on the board. The manifest goes
    last, so an interrupted copy leaves a bundle that fails its checks there instead of a mixed one that passes."""
    copy = sorted((f for f in local if remote.get(f) != local[f]), key=lambda f: (f == names.MANIFEST, f))
    return copy, sorted(f for f in local if remote.get(f) == local[f]), sorted(f for f in remote if f not in local)


def parse_probe(stdout: str) -> tuple[int | None, str, dict[str, str]]:
    """(exit code of `edgeticket machine`, its stdout, {path: sha256} of the board's copy) from the probe's output."""
    head, _, rest = stdout.partition(_STATUS)
    status, _, hashes = rest.partition(_HASHES)
    try:
        rc: int | None = int(status.split()[0])
    except (IndexError, ValueError):
        rc = None  # the login did not run the script (a nologin shell, a forced command)
    found = {}
    for line in hashes.splitlines():  # sha256sum: "<digest>  ./<path>" ("*" before the path in binary mode)
        parts = line.split(None, 1)
        if len(parts) == 2 and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            name = parts[1].strip().lstrip("*")
            found[name[2:] if name.startswith("./") else name] = parts[0]
    return rc, head, found


# ---- the three ssh sessions ----

def _ssh_failed(board: Board, stderr: str) -> EdgeTicketError:
    last = next((l.strip() for l in reversed(stderr.splitlines()) if l.strip()), "no message")
    if "Host key verification failed" in stderr:
        return EdgeTicketError(f"ssh {board.destination}: {last} (log in once by hand, `ssh {board.destination}`, "
                               "to accept the board's host key)")
    return EdgeTicketError(f"ssh {board.destination}: {last} (check the host, its port and your key: --identity; "
                           f"`ssh -o BatchMode=yes {board.destination} true` must log in without a password)")


def _require_ssh() -> None:
    if shutil.which("ssh") is None:
        raise EdgeTicketError("no ssh client on this machine: install OpenSSH's client (Debian: apt install "
                              "openssh-client)")


def _after_marker(stdout: str) -> str:
    """What the board printed after edgeticket's marker (a login shell's own chatter before it is dropped)."""
    return stdout.split(_JSON, 1)[1] if _JSON in stdout else stdout


def probe(board: Board, bundle_name: str) -> tuple[dict, dict[str, str]]:
    """(the board's machine facts, {path: sha256} of its copy of the bundle)."""
    _require_ssh()
    copy_dir = sh_word(board.path("bundles", bundle_name))
    script = (f"echo {_JSON}; {board.edgeticket('machine', '--json')}; s=$?; echo; echo {_STATUS} $s; "
              f"echo {_HASHES}; cd {copy_dir} 2>/dev/null && find . -type f ! -name 'profile*.json' "
              "-exec sha256sum {} + 2>/dev/null; exit 0")
    r = subprocess.run(board.ssh_command(script), capture_output=True)
    if r.returncode == 255:
        raise _ssh_failed(board, r.stderr.decode(errors="replace"))
    rc, out, hashes = parse_probe(_after_marker(r.stdout.decode(errors="replace")))
    return probe_verdict(board, rc, out, r.stderr.decode(errors="replace")), hashes


class _Counter:
    """A write-through file object that counts the bytes (what the tar stream put through ssh)."""

    def __init__(self, raw):
        self.raw, self.n = raw, 0

    def write(self, b):
        self.n += len(b)
        return self.raw.write(b)

    def flush(self):
        self.raw.flush()


def _drain(stream, into: list[str]) -> threading.Thread:
    """Read a pipe to the end in a thread (so a chatty board never blocks on a full pipe)."""
    def read():
        for raw in stream:
            into.append(raw.decode(errors="replace").rstrip())

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


def _plain_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def copy_bundle(board: Board, bundle_dir: Path, name: str, manifest: dict, remote_hashes: dict[str, str]) -> Transfer:
    local = dict(manifest["files"])
    local[names.MANIFEST] = store.sha256_file(bundle_dir / names.MANIFEST)
    to_copy, same, stale = plan_copy(local, remote_hashes)
    moved = Transfer(copied=to_copy, unchanged=same, removed=stale)
    if not to_copy and not stale:
        return moved
    folder = sh_word(board.path("bundles", name))
    rm = f"rm -f -- {' '.join(shlex.quote(f) for f in stale)} && " if stale else ""
    proc = subprocess.Popen(board.ssh_command(f"mkdir -p {folder} && cd {folder} && {rm}tar --no-same-owner -xf -"),
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err: list[str] = []
    reader = _drain(proc.stderr, err)
    counter = _Counter(proc.stdin)
    try:
        with tarfile.open(fileobj=counter, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for f in to_copy:
                tar.add(str(bundle_dir / f), arcname=f, recursive=False, filter=_plain_owner)
                moved.payload_bytes += (bundle_dir / f).stat().st_size
    except BrokenPipeError:
        pass  # the board stopped reading: its exit status and message say why
    finally:
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.close()
    rc = proc.wait()
    reader.join()
    if rc == 255:
        raise _ssh_failed(board, "\n".join(err))
    if rc == 127:
        raise EdgeTicketError(f"{board.destination} has no tar: install it there (apt install tar)")
    if rc != 0:
        last = next((l for l in reversed(err) if l.strip()), f"exit {rc}")
        raise EdgeTicketError(f"copying {bundle_dir} to {board.destination}:{board.path('bundles')} failed: {last} "
                              "(is the remote folder writable? choose another with --remote-dir)")
    moved.stream_bytes = counter.n
    return moved


def run_profile(board: Board, name: str, args: list[str], log: Callable[[str], None]) -> dict:
    """Run the board's `edgeticket profile ... --json`, streaming its notes; returns its JSON."""
    script = (f"mkdir -p {sh_word(board.path('profiles'))} && echo {_JSON} && " + board.edgeticket(
        "profile", board.path("bundles", name), *args, "--json", "--out", board.path("profiles", f"{name}.json")))
    proc = subprocess.Popen(board.ssh_command(script), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    said: list[str] = []

    def relay():
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            said.append(line)
            if not line.startswith("Error: "):  # the board's error line becomes this command's error below
                log(f"[{board.host}] {line}")

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    out = proc.stdout.read().decode(errors="replace")
    rc = proc.wait()
    reader.join()
    if rc == 255:
        raise _ssh_failed(board, "\n".join(said))
    if rc != 0:
        last = next((l for l in reversed(said) if l.strip()), "no message")
        raise EdgeTicketError(f"on {board.destination}: {last.replace('Error: ', '', 1)} (exit {rc})")
    try:
        result = json.loads(_after_marker(out))
    except ValueError:
        result = None
    if not isinstance(result, dict):
        raise EdgeTicketError(f"{board.destination}: edgeticket profile printed no profile ({out.strip()[:80]!r}); "
                              f"run it there by hand to see why: {board.edgeticket('profile', '--help')}")
    return result


@dataclass(frozen=True)
class BoardProfile:
    """What to measure on the board and where the results go here."""

    profile_args: tuple[str, ...] = ()  # the board's `edgeticket profile` options (backend, runs, ...)
    backend: str | None = None  # as given (None: the bundle's default, chosen on the board)
    calibrate_target: str | None = None  # --calibrate: the target whose record comes home
    target: str | None = None  # --target as given
    calibration_dir: str | Path | None = None  # this workstation's calibration folder
    out: str | Path | None = None  # where profile-<host>.json goes (default: inside the bundle)


def bundle_name(bundle_dir: Path) -> str:
    """The bundle's folder name, which names its copy on the board (`.` or `..` given: the real name)."""
    name = Path(bundle_dir).resolve().name
    if not name or name.startswith("."):
        raise EdgeTicketError(f"{bundle_dir}: a bundle folder needs a plain name (not '{name}') to be copied to a "
                              "board; rename it")
    return name


def profile(bundle_dir: str | Path, board: Board, request: BoardProfile, log: Callable[[str], None]) -> dict:
    """Copy the bundle to the board (what changed), profile it there, and bring the profile (and, with
    request.calibrate_target, the calibration record) back."""
    from . import calibration
    from .profile.run import output_path
    from .targets import load_all

    t0 = time.perf_counter()
    bundle_dir = Path(bundle_dir)
    name = bundle_name(bundle_dir)
    manifest = bundle_fmt.load(bundle_dir)  # a bundle that fails its checks here is not sent
    path = output_path(request.out or bundle_dir / names.remote_profile(board.label), bundle_dir)
    if request.calibrate_target:
        calibration.check_writable(request.calibration_dir)
    facts, remote_hashes = probe(board, name)
    arch_verdict(bundle_dir, manifest, board, facts["arch"], request.backend,
                 [t.name for t in load_all() if t.arch == facts["arch"]], log)
    if request.calibrate_target and facts.get("emulator"):
        raise EdgeTicketError(f"--calibrate refused: {board.destination} runs under an emulator ({facts['emulator']}), "
                              "so its latencies are the emulator's; calibrate on the board itself")
    log(f"{board.destination}: edgeticket {facts['edgeticket']}, {facts['arch']}, Python {facts.get('python')}"
        + (f", EMULATED ({facts['emulator']})" if facts.get("emulator") else ""))
    moved = copy_bundle(board, bundle_dir, name, manifest, remote_hashes)
    log(f"copied {len(moved.copied)} files ({moved.payload_bytes:,} B) to {board.destination}:"
        f"{board.path('bundles', name)}; {len(moved.unchanged)} unchanged")
    result = run_profile(board, name, _board_args(board, request), log)
    _describe_run(result, board, name, facts, moved)
    if request.calibrate_target:
        _bring_record_home(result, board, request, log)
    result["remote"]["round_trip_s"] = time.perf_counter() - t0
    result["profile_json"] = str(store.write_json(path, result))
    return result


def _board_args(board: Board, request: BoardProfile) -> list[str]:
    args = [*request.profile_args, "--calibration-dir", board.path("calibration")]  # the board's own records
    if request.calibrate_target:
        args += ["--calibrate", "--target", request.calibrate_target]
    elif request.target:
        args += ["--target", request.target]
    return args


def _describe_run(result: dict, board: Board, name: str, facts: dict, moved: Transfer) -> None:
    where = f"{board.destination}:{board.path('bundles', name)}"
    if isinstance(result.get("bundle"), dict):
        result["bundle"]["dir"] = where
    else:
        result["bundle"] = where
    result["remote"] = {"host": board.destination, "port": board.port, "board": facts,
                        "remote_bundle_dir": board.path("bundles", name), "transfer": moved.as_dict(),
                        "round_trip_s": None}


def _bring_record_home(result: dict, board: Board, request: BoardProfile, log: Callable[[str], None]) -> None:
    from . import calibration

    cal = result.get("calibration")
    if not isinstance(cal, dict) or not isinstance(cal.get("record"), dict):
        raise EdgeTicketError(f"{board.destination}: its profile --calibrate returned no calibration record; run it "
                              "there by hand to see why")
    cal["board_record_file"] = cal.get("record_file")
    cal["record_file"] = str(calibration.append_record(request.calibrate_target, cal["record"],
                                                       request.calibration_dir))
    log(f"calibration record of {request.calibrate_target} from {board.host} appended to {cal['record_file']}")
