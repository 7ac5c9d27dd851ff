"""The one exception type the CLI turns into a one-line message and a non-zero exit, and the check that names
the pip command when a command needs an extra that is not installed."""

from __future__ import annotations

import importlib.util
import sys


class EdgeTicketError(Exception):
    """A user-facing error: its message is one line that names the fix. The CLI exits with `exit_code`."""

    exit_code = 2


# what each extra brings (import names) and how to install it; spikingjelly is installed without its declared
# torchvision/torchaudio, which would replace a CPU torch with a multi-GB CUDA build (README, Installing)
EXTRAS = {
    "search": ("torch", "spikingjelly", "onnx", "sklearn", "matplotlib"),
    "tvm": ("tvm",),
}
PIP = {
    "search": "pip install 'edgeticket[search]' && pip install --no-deps spikingjelly==2.0.0",
    "tvm": "pip install 'edgeticket[tvm]'",
}


def _installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: blocked (as the import test does)
    return importlib.util.find_spec(module) is not None


def missing_extra(extra: str) -> list[str]:
    return [m for m in EXTRAS[extra] if not _installed(m)]


def require_extra(extra: str, what: str) -> None:
    """Raise a one-line error naming the pip command when `what` needs an extra that is not installed."""
    if extra == "search" and sys.version_info < (3, 10):
        raise EdgeTicketError(f"{what} needs Python >= 3.10 (this is {sys.version.split()[0]}); the device commands "
                              "(targets, inspect, check, predict, profile) run on 3.8+")
    gone = missing_extra(extra)
    if gone:
        raise EdgeTicketError(f"{what} needs the edgeticket[{extra}] extra ({', '.join(gone)} not installed): "
                              f"{PIP[extra]}")
