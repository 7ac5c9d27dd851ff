"""Facts about the machine this runs on, read from the OS."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            low = line.lower()
            if low.startswith("model name") or low.startswith("hardware") or low.startswith("cpu model"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_bytes() -> int | None:
    try:
        for line in open("/proc/meminfo", encoding="utf-8"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def normalise_arch(name: str) -> str:
    """An OS's machine name in the names targets and bundles use (x86_64, aarch64, ...)."""
    m = (name or "").lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def machine_arch() -> str:
    """This machine's CPU architecture, as targets and bundles name it."""
    return normalise_arch(platform.machine())


# what /proc/cpuinfo shows for each CPU family: x86 kernels list "vendor_id" and "flags", Arm kernels "CPU implementer"
_CPUINFO_FAMILY = (("cpu implementer", "arm"), ("vendor_id", "x86"))
_ARCH_FAMILY = {"x86_64": "x86", "i686": "x86", "i386": "x86", "aarch64": "arm", "armv7l": "arm", "armv6l": "arm"}


def cpuinfo_family(cpuinfo: str) -> str | None:
    """The CPU family the kernel's /proc/cpuinfo describes (x86, arm), or None when it does not say."""
    keys = {line.split(":", 1)[0].strip().lower() for line in cpuinfo.splitlines() if ":" in line}
    return next((fam for key, fam in _CPUINFO_FAMILY if key in keys), None)


def emulator(arch: str, cpuinfo: str, env: dict) -> str | None:
    """Which user-mode emulator runs this process, or None on real hardware. Pure rule: qemu-user reports the
    guest's machine (uname) but passes the host kernel's /proc/cpuinfo through, so the two name different CPU
    families; $EDGETICKET_EMULATED=1/0 overrides (for an emulator that hides both)."""
    forced = env.get("EDGETICKET_EMULATED")
    if forced in ("0", "1"):
        return "declared by EDGETICKET_EMULATED" if forced == "1" else None
    seen, ours = cpuinfo_family(cpuinfo), _ARCH_FAMILY.get(normalise_arch(arch))
    if seen and ours and seen != ours:
        return f"qemu-user ({arch} process, the kernel's CPU is {seen})"
    return None


def emulated_by() -> str | None:
    """The emulator this process runs under (see `emulator`), or None."""
    try:
        cpuinfo = open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
    except OSError:
        cpuinfo = ""
    return emulator(platform.machine(), cpuinfo, dict(os.environ))


def facts() -> dict:
    import numpy
    import onnxruntime

    return {"cpu": cpu_model(), "machine": platform.machine(), "cores": os.cpu_count(), "ram_bytes": ram_bytes(),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "numpy": numpy.__version__, "onnxruntime": onnxruntime.__version__,
            "onnxruntime_providers": onnxruntime.get_available_providers(), "emulator": emulated_by()}
