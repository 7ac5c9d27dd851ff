"""Atomic writes (temp file + fsync + rename + fsync of the folder), sha256 digests and safe loads with clear
errors. Files and folders get the user's umask (0644 / 0755 under umask 022), as open() and mkdir would give:
mkstemp/mkdtemp alone make them 0600 / 0700, which a bundle copied to a board for another user cannot be read
with."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import EdgeTicketError


def umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` durable (power loss on an SD card); a no-op where folders cannot be
    opened (Windows)."""
    try:
        fd = os.open(str(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_dir(parent: Path, prefix: str) -> Path:
    """A fresh folder inside `parent` (made if missing) with the umask's mode, to be renamed into place. Its name
    carries this process's id (`<prefix><pid>.<random>`), so a later run can tell a stale one (its writer died)
    from one still being written (remove_stale_temps)."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}.", dir=parent))
    os.chmod(d, 0o777 & ~umask())
    return d


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(parent: Path, prefix: str) -> list[Path]:
    """Remove the temp folders `temp_dir` made in `parent` with `prefix` whose writing process is gone (a killed
    compile, or the old bundle a swap left behind); returns what was removed."""
    import re
    import shutil

    gone = []
    for d in Path(parent).glob(f"{glob_escape(prefix)}*"):
        m = re.fullmatch(re.escape(prefix) + r"(\d+)\.[a-z0-9_]+", d.name)  # <prefix><pid>.<mkdtemp's suffix>
        if d.is_dir() and m and not _alive(int(m.group(1))):
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    return gone


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _renameat2_exchange(a: Path, b: Path) -> bool:
    """Linux renameat2(RENAME_EXCHANGE): swap two paths in one step. False where the call is not available
    (another OS, an old kernel or libc, a filesystem without it)."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: no exchange here, fall back
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_dir(new: Path, final: Path) -> None:
    """Put the folder `new` at `final`. A reader of `final` finds the whole old folder or the whole new one at
    every moment: an existing `final` is swapped with `new` in one step (renameat2 RENAME_EXCHANGE), and the old
    one, now at `new`'s temp name, is removed afterwards (or by remove_stale_temps if this process is killed
    first). Without the exchange call, the old folder is moved aside first: a moment without `final` remains."""
    import shutil

    new, final = Path(new), Path(final)
    if final.exists():
        if not _renameat2_exchange(new, final):
            aside = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", dir=final.parent))
            os.rename(final, aside / "old")
            os.rename(new, final)
            new = aside
        shutil.rmtree(new, ignore_errors=True)
    else:
        os.rename(new, final)
    fsync_dir(final.parent)


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Write via `write(tmp_path)` then rename onto `path`: a crash never leaves a half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None  # name the file the user knows, not the temp
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~umask())  # after the write: safetensors re-creates the file 0600
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except Exception as e:
        full = _writer_failure(e) and disk_full(path.parent)
        tmp_path.unlink(missing_ok=True)
        if full:  # a writer that reports a full disk its own way (torch.save: "unexpected pos ...")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
        if isinstance(e, OSError) and e.errno is not None and e.filename in (None, str(tmp_path)):
            raise OSError(e.errno, e.strerror, str(path)) from None  # name the file the user knows
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def _writer_failure(e: Exception) -> bool:
    """An error a file writer raises when its write fails without an errno: torch.save's zip writer
    (RuntimeError "unexpected pos ..."), safetensors' (SafetensorError). A bug's TypeError is not one."""
    return isinstance(e, RuntimeError) or type(e).__module__.split(".")[0] == "safetensors"


def disk_full(folder: Path, margin: int = 1 << 20) -> bool:
    """Less than `margin` bytes left to this user on the disk of `folder`."""
    try:
        st = os.statvfs(str(folder))
    except (OSError, AttributeError):
        return False
    return st.f_bavail * st.f_frsize < margin


WRITE_ERRORS = {  # errno -> what the user can do about a write that failed with it
    errno.ENOSPC: "free space on that disk or pass an --out on another; the files already there are intact",
    errno.EDQUOT: "free space within your quota or pass an --out elsewhere; the files already there are intact",
    errno.EROFS: "the filesystem is read-only: pass an --out on a writable disk",
}
ACCESS_ERRORS = (errno.EACCES, errno.EPERM)  # raised by reads and writes alike


def write_error_message(e: OSError) -> str | None:
    """One line for a write that failed for a reason the user can fix (full disk, read-only or foreign folder);
    None for any other OSError."""
    where = e.filename if e.filename is not None else "a file"
    why = e.strerror or (os.strerror(e.errno) if e.errno else str(e))
    if e.errno in ACCESS_ERRORS:
        return (f"cannot access {where}: {why}; give this user access to it (read for inputs, write for the output "
                "folder), or pass another --out")
    fix = WRITE_ERRORS.get(e.errno)
    return None if fix is None else f"cannot write {where}: {why}; {fix}"


def remove_temp_files(folder: Path) -> list[Path]:
    """The `.<name>.<random>.tmp` files atomic_write left under `folder` when its process was killed mid-write.
    Call only while holding the folder's lock (FolderLock): no other writer's temp file is then alive."""
    import re

    gone = []
    for p in Path(folder).rglob(".*.tmp"):
        rel = p.relative_to(folder).parts[:-1]
        if p.is_file() and re.fullmatch(r"\..+\.[a-z0-9_]{8}\.tmp", p.name) and not any(d.startswith(".") for d in rel):
            p.unlink(missing_ok=True)
            gone.append(p)
    return gone


def write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data))


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path, what: str = "file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise EdgeTicketError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgeTicketError(f"{what} {path} is not valid JSON ({e.msg if hasattr(e, 'msg') else e}); "
                              "it is corrupted: re-create it") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str, what: str, fix: str = "re-create it") -> None:
    path = Path(path)
    if not path.is_file():
        raise EdgeTicketError(f"{what} is missing: {path}; {fix}")
    got = sha256_file(path)
    if got != expected:
        raise EdgeTicketError(
            f"{what} {path} does not match its recorded sha256 (expected {expected[:12]}…, got {got[:12]}…): "
            f"the file was altered or truncated; {fix}")


def save_tensors(path: Path, tensors: dict, metadata: dict | None = None) -> Path:
    """safetensors save, atomic. Tensors are made contiguous (safetensors requires it)."""
    from safetensors.torch import save_file

    flat = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    return atomic_write(path, lambda p: save_file(flat, str(p), metadata=meta))


def load_tensors(path: Path, what: str = "tensor file") -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise EdgeTicketError(f"{what} not found: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise EdgeTicketError(f"{what} {path} cannot be read ({str(e).splitlines()[0]}): "
                              "it is truncated or corrupted; re-create it") from None


# ---- one writer per folder ---------------------------------------------------------------------------------------

def lock_path(folder: Path) -> Path:
    """The lock file of a folder sits beside it (`.<name>.lock`): a bundle folder is swapped whole, and a refused
    run leaves nothing inside the folder it would have written."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


class FolderLock:
    """`with FolderLock(folder, "search run"):` — one writer per run folder or bundle. The lock is an flock on
    `lock_path(folder)`, whose text names the holder (pid, host, start time, command). The kernel drops an flock
    when its process dies, so a lock left by a killed run (kill -9, power loss) is stale by construction: the next
    run takes it, and says so. A second writer while the first lives is refused with one line naming the holder.
    Where flock is missing (Windows), the file's pid decides: a pid that is not alive is a stale lock."""

    def __init__(self, folder: Path, what: str, fix: str = "wait for it to finish, or pass another --out"):
        self.folder, self.what, self.fix = Path(folder), what, fix
        self.path = lock_path(folder)
        self.fd = None
        self.stale = None  # the text of a stale lock this one replaced

    def __enter__(self) -> "FolderLock":
        import socket
        import sys
        import time

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o666 & ~umask())
            if not self._try_lock(fd):
                holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown"
                os.close(fd)
                raise EdgeTicketError(f"another edgeticket is writing {self.folder} ({holder}; lock {self.path}): "
                                      f"{self.fix}")
            if self._same_file(fd):  # not a lock file its holder unlinked while we waited for it
                break
            os.close(fd)
        previous = os.read(fd, 4096).decode("utf-8", "replace").strip()
        self.stale = previous or None
        text = (f"pid {os.getpid()} on {socket.gethostname()}, {self.what} started "
                f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}: {' '.join(sys.argv[:3])}\n")
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, text.encode())
        self.fd = fd
        return self

    def _try_lock(self, fd: int) -> bool:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: the pid in the file decides
            return self._pid_lock(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:  # a filesystem without flock (NFS without lockd, some FUSE mounts): the pid decides
            return self._pid_lock(fd)
        return True

    def _pid_lock(self, fd: int) -> bool:
        import re

        m = re.match(r"pid (\d+)", os.read(fd, 4096).decode("utf-8", "replace"))
        os.lseek(fd, 0, os.SEEK_SET)
        return not (m and int(m.group(1)) != os.getpid() and _alive(int(m.group(1))))

    def _same_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def __exit__(self, *exc) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink()  # removed while still held: a waiter that opened it re-opens (_same_file)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None
