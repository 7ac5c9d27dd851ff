"""Resident memory of this process: current RSS (psutil) and the high-water mark (VmHWM, read from
/proc/self/status: psutil has no peak on Linux), which Linux lets a process reset (write 5 to
/proc/self/clear_refs, which psutil cannot do) so load and inference peaks are measured apart."""

from __future__ import annotations

import resource


def _status(key: str) -> int | None:
    try:
        for line in open("/proc/self/status", encoding="utf-8"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def peak() -> int:
    v = _status("VmHWM")
    return v if v is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS; False where the OS does not support it (then peaks are cumulative)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

