"""The native kernel library of the event backend (etevent.c): built with the machine's C compiler for the
host, cross-compiled for a target's CPU, loaded with ctypes. Needs no torch.

`make install` builds the host library once (`python -m edgeticket.device.native`); otherwise the first use builds
it into the user cache ($EDGETICKET_CACHE, else ~/.cache/edgeticket), keyed by the source's sha256 and the
compiler flags, so an edited source never runs stale.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ... import store
from ...errors import EdgeTicketError
from ..machine import machine_arch

SOURCE = Path(__file__).with_name("etevent.c")
# -ffp-contract=off: no fused multiply-adds, so the LIF arithmetic rounds exactly like the ONNX graph's
COMMON_FLAGS = ["-O3", "-std=c99", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math", "-fopenmp"]
HOST_FLAGS = ["-march=native"]


def source_sha() -> str:
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()


def cache_dir() -> Path:
    env = os.environ.get("EDGETICKET_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "edgeticket"


def build(out: Path, compiler: str = "cc", flags: list[str] | None = None) -> Path:
    """Compile etevent.c into a shared library at `out` (atomic: written beside it, then renamed)."""
    exe = shutil.which(compiler)
    if exe is None:
        hint = ("install Debian's gcc-aarch64-linux-gnu (make cross-tools)" if "aarch64" in compiler
                else "install a C compiler (Debian: apt-get install gcc)")
        raise EdgeTicketError(f"C compiler '{compiler}' not found: {hint}")
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    except OSError as e:
        raise EdgeTicketError(f"cannot write the event kernels to {out.parent} ({e.strerror}): set EDGETICKET_CACHE "
                              "to a writable folder") from None
    os.close(fd)
    cmd = [exe, *COMMON_FLAGS, *(flags or []), str(SOURCE), "-o", tmp, "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        os.unlink(tmp)
        raise EdgeTicketError(f"building the event kernels failed ({' '.join(cmd)}): {r.stderr.strip()[:500]}")
    os.chmod(tmp, 0o777 & ~store.umask())
    os.replace(tmp, out)
    return out


def host_library() -> Path:
    """The host build of the kernels, built on first use."""
    key = hashlib.sha256((source_sha() + " ".join(COMMON_FLAGS + HOST_FLAGS)).encode()).hexdigest()[:16]
    path = cache_dir() / f"libetevent-{machine_arch()}-{key}.so"
    if not path.is_file():
        build(path, os.environ.get("CC", "cc"), HOST_FLAGS)
    return path


class _Lib:
    def __init__(self, path: Path):
        from ...formats.elf import check_library

        # a truncated library would be mapped past its end (SIGBUS on first touch): its ELF headers checked first
        cached = Path(path).resolve().parent == cache_dir().resolve()
        check_library(path, machine_arch(), fix="delete it: it is rebuilt from the package source on first use"
                      if cached else "copy the whole bundle folder again, or re-compile the ticket")
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as e:
            raise EdgeTicketError(f"cannot load the event kernel library {path} ({e}); rebuild it with "
                                  "`python -m edgeticket.device.native`") from None
        P, I, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
        lib.et_load.restype, lib.et_load.argtypes = P, [ctypes.c_char_p, ctypes.c_char_p, I]
        lib.et_free.restype, lib.et_free.argtypes = None, [P]
        lib.et_resident_bytes.restype, lib.et_resident_bytes.argtypes = S, [P]
        lib.et_num_lif.restype, lib.et_num_lif.argtypes = ctypes.c_uint32, [P]
        lib.et_num_classes.restype, lib.et_num_classes.argtypes = ctypes.c_uint32, [P]
        lib.et_num_syn.restype, lib.et_num_syn.argtypes = ctypes.c_uint32, [P]
        lib.et_state_floats.restype, lib.et_state_floats.argtypes = S, [P]
        lib.et_scratch_bytes.restype, lib.et_scratch_bytes.argtypes = S, [P, I]
        lib.et_layer_encoding.restype, lib.et_layer_encoding.argtypes = I, [P, ctypes.c_uint32]
        lib.et_layer_starts.restype, lib.et_layer_starts.argtypes = I, [P, ctypes.c_uint32]
        lib.et_layer_buffer.restype, lib.et_layer_buffer.argtypes = I, [P, ctypes.c_uint32]
        lib.et_run.restype = I
        lib.et_run.argtypes = [P, I, P, I, P, P, P, P, I]
        lib.et_version.restype = ctypes.c_char_p
        self.lib, self.path = lib, Path(path)


_LOADED: dict[str, _Lib] = {}


def load_library(path: Path | None = None) -> _Lib:
    path = Path(path) if path else host_library()
    key = str(path.resolve())
    if key not in _LOADED:
        _LOADED[key] = _Lib(path)
    return _LOADED[key]


DRIVER = Path(__file__).with_name("etevent_main.c")
QEMU = {"aarch64": "qemu-aarch64"}


def emulated_check(arch: str, cc: str, cflags: list[str], net_path: Path, x, nsteps: int, num_classes: int,
                   nlif: int, nsyn: int, workdir: Path):
    """Cross-compiles the command-line driver statically for `arch`, runs it under qemu-user on x (zero
    states, nsteps steps) and returns (logits [B, K], spikes [nlif, nsteps, B], events [nsyn, nsteps, B]).
    Raises EdgeTicketError naming the missing Debian package when the compiler or qemu is absent."""
    import numpy as np

    qemu = shutil.which(QEMU.get(arch, f"qemu-{arch}"))
    if qemu is None:
        raise EdgeTicketError(f"qemu-{arch} not found: install Debian's qemu-user (make cross-tools)")
    exe = shutil.which(cc)
    if exe is None:
        raise EdgeTicketError(f"C compiler '{cc}' not found: install Debian's gcc-{arch}-linux-gnu (make cross-tools)")
    workdir = Path(workdir)
    driver = workdir / f"etevent-check-{arch}"
    flags = [f for f in COMMON_FLAGS if f not in ("-shared", "-fPIC", "-fopenmp")]
    cmd = [exe, *flags, *cflags, "-static", "-I", str(SOURCE.parent), str(DRIVER), "-o", str(driver), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise EdgeTicketError(f"building the {arch} check driver failed: {r.stderr.strip()[:500]}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    B = x.shape[0]
    (workdir / "x.f32").write_bytes(x.tobytes())
    r = subprocess.run([qemu, str(driver), str(net_path), str(workdir / "x.f32"), str(B), str(nsteps),
                        str(workdir / "out.f32")], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise EdgeTicketError(f"the {arch} build failed under {Path(qemu).name}: {r.stderr.strip()[:300]}")
    out = np.fromfile(workdir / "out.f32", dtype=np.float32)
    nl, ns = B * num_classes, nlif * nsteps * B
    return (out[:nl].reshape(B, num_classes), out[nl:nl + ns].reshape(nlif, nsteps, B),
            out[nl + ns:].reshape(nsyn, nsteps, B))
