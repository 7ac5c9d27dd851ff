"""A shared library's ELF header, checked before the dynamic loader maps it (the event kernels'
event/libetevent-<arch>.so, a TVM library tvm/<target>.so). A truncated library is mapped past its end and
the process dies of SIGBUS on first touch; a file that is not a library for this CPU fails in the loader with
messages of its own. `check_library` reads the header, the program headers and the section headers (a few KiB;
nothing is mapped) and refuses, in one line naming the file and the fix: an empty file, no ELF magic, a class,
byte order, type or machine other than a shared library for the expected CPU, and any header table or segment
or section that reaches past the end of the file (which a truncated file always has: the section header table
is written last). Pure Python, no dependencies."""

from __future__ import annotations

import os
import struct
from pathlib import Path

MAGIC = b"\x7fELF"
ET_DYN = 3
PT_LOAD = 1
SHT_NOBITS = 8
# CPU architecture as targets and bundles name it (device/machine.py) -> (EI_CLASS, EI_DATA, e_machine)
MACHINES = {
    "x86_64": (2, 1, 62),
    "aarch64": (2, 1, 183),
    "armv7l": (1, 1, 40), "armv6l": (1, 1, 40), "arm": (1, 1, 40),
    "i686": (1, 1, 3), "i386": (1, 1, 3),
    "riscv64": (2, 1, 243),
    "ppc64le": (2, 1, 21),
    "s390x": (2, 2, 22),
}
_MACHINE_NAMES = {62: "x86_64", 183: "aarch64", 40: "arm", 3: "i386", 243: "riscv", 21: "ppc64", 22: "s390"}
FIX = "copy the whole bundle folder again, or re-compile the ticket"


def _fail(path, why: str, fix: str):
    from ..errors import EdgeTicketError

    raise EdgeTicketError(f"{path} is not a usable shared library ({why}): {fix}")


def expected_machine(arch: str | None, pointer_bytes: int = struct.calcsize("P")) -> tuple | None:
    """(EI_CLASS, EI_DATA, e_machine) of libraries this process can load on a machine whose kernel reports `arch`
    (uname -m): a 32-bit userland on a 64-bit kernel (Raspberry Pi OS 32-bit on a 64-bit kernel) loads 32-bit
    libraries. None where `arch` is not known."""
    want = MACHINES.get(arch or "")
    if want and want[0] == 2 and pointer_bytes == 4:
        want = MACHINES.get({"aarch64": "arm", "x86_64": "i386"}.get(arch or "", ""), want)
    return want


def check_library(path: Path, arch: str | None = None, fix: str = FIX) -> dict:
    """Check the ELF file at `path` is a whole shared library (for `arch`, where given and known). Returns
    {class: 32|64, machine: e_machine, size}."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        from ..errors import EdgeTicketError

        raise EdgeTicketError(f"{path}: cannot be read ({e.strerror}); {fix}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            _fail(path, "the file is empty", fix)
        ident = f.read(16)
        if len(ident) < 16 or ident[:4] != MAGIC:
            _fail(path, "no ELF header", fix)
        cls, data, version = ident[4], ident[5], ident[6]
        if cls not in (1, 2) or data not in (1, 2) or version != 1:
            _fail(path, f"ELF class {cls}, byte order {data}, version {version}", fix)
        bo = "<" if data == 1 else ">"
        word = "Q" if cls == 2 else "I"
        ehdr = struct.Struct(f"{bo}HHI{word}{word}{word}IHHHHHH")
        raw = f.read(ehdr.size)
        if len(raw) < ehdr.size:
            _fail(path, f"truncated: {size} bytes, shorter than its ELF header", fix)
        (e_type, e_machine, _, _, phoff, shoff, _, ehsize, phentsize, phnum, shentsize, shnum, _) = ehdr.unpack(raw)
        if ehsize != 16 + ehdr.size:
            _fail(path, f"ELF header size {ehsize}", fix)
        if e_type != ET_DYN:
            _fail(path, f"ELF type {e_type}, not a shared object", fix)
        want = expected_machine(arch)
        if want and (cls, data, e_machine) != want:
            got = _MACHINE_NAMES.get(e_machine, f"machine {e_machine}")
            _fail(path, f"built for {got} ({cls * 32}-bit, {'little' if data == 1 else 'big'}-endian), not {arch}",
                  fix)

        def table(off: int, num: int, entsize: int, fmt: str, what: str) -> list:
            entry = struct.Struct(bo + fmt)
            if num and entsize != entry.size:
                _fail(path, f"{what} entries of {entsize} bytes", fix)
            if off + num * entsize > size:
                _fail(path, f"truncated: {size} bytes, its {what} table ends at byte {off + num * entsize}", fix)
            f.seek(off)
            blob = f.read(num * entsize)
            return [entry.unpack_from(blob, i * entsize) for i in range(num)]

        # program headers: (p_type, p_offset, p_filesz)
        if cls == 2:
            phdrs = [(p[0], p[2], p[5]) for p in table(phoff, phnum, phentsize, "IIQQQQQQ", "program header")]
        else:
            phdrs = [(p[0], p[1], p[4]) for p in table(phoff, phnum, phentsize, "IIIIIIII", "program header")]
        if not any(t == PT_LOAD for t, _, _ in phdrs):
            _fail(path, "no loadable segment", fix)
        for t, off, filesz in phdrs:
            if t == PT_LOAD and off + filesz > size:
                _fail(path, f"truncated: {size} bytes, a loadable segment ends at byte {off + filesz}", fix)
        # section headers: (sh_type, sh_offset, sh_size); shnum 0 with a table: the count is section 0's sh_size
        sfmt = "IIQQQQIIQQ" if cls == 2 else "IIIIIIIIII"
        if shoff == 0:
            _fail(path, "no section header table", fix)
        if shnum == 0:
            shnum = table(shoff, 1, shentsize, sfmt, "section header")[0][5]
        for s in table(shoff, shnum, shentsize, sfmt, "section header"):
            if s[1] != SHT_NOBITS and s[4] + s[5] > size:
                _fail(path, f"truncated: {size} bytes, a section ends at byte {s[4] + s[5]}", fix)
    return {"class": cls * 32, "machine": e_machine, "size": size}
