"""What edgeticket prints besides its results: notes on stderr, progress bars on a terminal, and the C++ logs of
the runtimes it drives (TVM, onnxruntime), captured and shown only when verbose.

Results go to stdout (a table, or one JSON document with --json); everything here goes to stderr. The settings
live in the environment, so child processes (profile --backend all, a board's profile over ssh) inherit them;
the CLI's options set them: -q/--quiet (EDGETICKET_QUIET=1: errors only), -v/--verbose (EDGETICKET_VERBOSE=1:
the runtimes' own logs too), EDGETICKET_PROGRESS=1 (progress bars even when stderr is not a terminal) or 0.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterable, Iterator


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def quiet() -> bool:
    return _flag("EDGETICKET_QUIET")


def verbose() -> bool:
    return _flag("EDGETICKET_VERBOSE") and not quiet()


@contextlib.contextmanager
def level(quiet: bool = False, verbose: bool = False) -> Iterator[None]:
    """The output level of the process (and its children) while a command runs; put back afterwards."""
    names = {"EDGETICKET_QUIET": quiet, "EDGETICKET_VERBOSE": verbose}
    before = {n: os.environ.get(n) for n in names}
    for n, on in names.items():
        if on:
            os.environ[n] = "1"
    try:
        yield
    finally:
        for n, v in before.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def note(message: str) -> None:
    """A line for the person at the terminal (stderr), unless quiet."""
    if not quiet():
        print(message, file=sys.stderr, flush=True)


def progress_enabled() -> bool:
    forced = os.environ.get("EDGETICKET_PROGRESS")
    if quiet() or forced == "0":
        return False
    return forced == "1" or sys.stderr.isatty()


def progress(items: Iterable, total: int | None = None, desc: str = "") -> Iterable:
    """A progress bar (tqdm) on stderr when it is a terminal; the bare iterable in pipes and when quiet."""
    if not progress_enabled():
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)


@contextlib.contextmanager
def native_output(source: str) -> Iterator[None]:
    """Capture what C/C++ code writes to the process's stdout/stderr file descriptors (TVM's and onnxruntime's
    loggers write there directly) while the block runs; show it on stderr, prefixed with `source`, only when
    verbose. Python's own sys.stdout/sys.stderr keep writing where they did, so notes and results still show."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = {fd: os.dup(fd) for fd in (1, 2)}
    except (OSError, ValueError):  # no real descriptors (a notebook's streams): nothing to capture
        yield
        return
    py_out, py_err = sys.stdout, sys.stderr
    with tempfile.TemporaryFile(mode="w+b") as log:
        try:
            sys.stdout = _reopen(saved[1], py_out)
            sys.stderr = _reopen(saved[2], py_err)
            for fd in (1, 2):
                os.dup2(log.fileno(), fd)
            yield
        finally:
            for f, original in ((sys.stdout, py_out), (sys.stderr, py_err)):
                f.flush()
                if f is not original:
                    f.close()
            for fd in (1, 2):
                os.dup2(saved[fd], fd)
            sys.stdout, sys.stderr = py_out, py_err
            for fd in saved.values():
                os.close(fd)
        if verbose():
            log.seek(0)
            for line in log.read().decode(errors="replace").splitlines():
                print(f"[{source}] {line}", file=sys.stderr)


def _reopen(fd: int, like):
    """A text stream on a duplicate of `fd` (so closing it leaves `fd` open), or `like` itself when `like` is
    not the process's own descriptor (click's test runner, a notebook)."""
    try:
        if like.fileno() not in (1, 2):
            return like
    except (AttributeError, OSError, ValueError):
        return like
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding=getattr(like, "encoding", None) or "utf-8",
                     errors="replace")
