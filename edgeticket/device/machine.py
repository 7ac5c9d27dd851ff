"""Facts about the machine this runs on, read from the OS."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (psutil does not report it)."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            low = line.lower()
            if low.startswith("model name") or low.startswith("hardware") or low.startswith("cpu model"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_bytes() -> int | None:
    import psutil

    return int(psutil.virtual_memory().total)


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


def modalias_family(modalias: str) -> str | None:
    """The CPU family of /sys/devices/system/cpu/modalias ("cpu:type:x86,ven...", "cpu:type:aarch64:...")."""
    kind = modalias.strip()[len("cpu:type:"):] if modalias.strip().startswith("cpu:type:") else ""
    kind = kind.split(",", 1)[0].split(":", 1)[0]
    return _ARCH_FAMILY.get(normalise_arch(kind), "x86" if kind == "x86" else None) if kind else None


def emulator(arch: str, cpuinfo: str, env: dict, modalias: str = "") -> str | None:
    """Which user-mode emulator runs this process, or None on real hardware. Pure rule: qemu-user reports the
    guest's machine (uname) but the kernel's CPU shows through sysfs (its modalias, which no qemu emulates) and,
    before qemu 8.2 unless an emulated userland hides it, /proc/cpuinfo: they name another CPU family.
    $EDGETICKET_EMULATED=1/0 overrides (for an emulator that hides both)."""
    forced = env.get("EDGETICKET_EMULATED")
    if forced in ("0", "1"):
        return "declared by EDGETICKET_EMULATED" if forced == "1" else None
    ours = _ARCH_FAMILY.get(normalise_arch(arch))
    for source, seen in (("sysfs modalias", modalias_family(modalias)), ("/proc/cpuinfo", cpuinfo_family(cpuinfo))):
        if seen and ours and seen != ours:
            return f"qemu-user ({arch} process, the kernel's CPU is {seen} by its {source})"
    return None


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def emulated_by() -> str | None:
    """The emulator this process runs under (see `emulator`), or None."""
    return emulator(platform.machine(), _read("/proc/cpuinfo"), dict(os.environ),
                    _read("/sys/devices/system/cpu/modalias"))


def facts() -> dict:
    import numpy
    import onnxruntime

    return {"cpu": cpu_model(), "machine": platform.machine(), "cores": os.cpu_count(), "ram_bytes": ram_bytes(),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "numpy": numpy.__version__, "onnxruntime": onnxruntime.__version__,
            "onnxruntime_providers": onnxruntime.get_available_providers(), "emulator": emulated_by()}
