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


def facts() -> dict:
    import numpy
    import onnxruntime

    return {"cpu": cpu_model(), "machine": platform.machine(), "cores": os.cpu_count(), "ram_bytes": ram_bytes(),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "numpy": numpy.__version__, "onnxruntime": onnxruntime.__version__,
            "onnxruntime_providers": onnxruntime.get_available_providers()}
