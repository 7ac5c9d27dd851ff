"""The ticket folder contract (docs/ticket-format.md): mask, rewind and trained weights as safetensors,
ticket.json with settings, sparsity, timesteps, accuracy, cost, sha256s and versions. Reading and writing
ticket.json is torch-free; rebuilding the network is compile.ticket_source's.

format_version 2: every accuracy is a fraction in [0, 1] like every sparsity (`accuracy.final/best`,
`history[].train_acc/test_acc`); version 1 held them in percent and is converted on read (`upgrade`)."""

from __future__ import annotations

import platform
from pathlib import Path

from .. import store
from ..errors import EdgeTicketError
from . import names

FORMAT_VERSION = 2
READS = (1, 2)  # format_versions read_info accepts (older ones are converted to FORMAT_VERSION)
ACCURACY_METRIC = "test top-1 accuracy as a fraction of the test samples, argmax of the logits summed over T"
SEARCH_PACKAGES = ("torch", "spikingjelly", "numpy")


def versions(packages=SEARCH_PACKAGES) -> dict:
    """The installed versions of edgeticket, Python and `packages` (from the package metadata: nothing is
    imported, so this is torch-free; a package that is not installed reads "not installed")."""
    from importlib.metadata import PackageNotFoundError, version

    import edgeticket

    out = {"edgeticket": edgeticket.__version__, "python": platform.python_version()}
    for p in packages:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "not installed"
    return out


REQUIRED_FILES = (names.MASK, names.REWIND, names.TRAINED)  # every ticket folder's files, each hashed in ticket.json


def file_hashes(ticket_dir: Path) -> dict:
    return {name: store.sha256_file(Path(ticket_dir) / name) for name in REQUIRED_FILES}


def verify(ticket_dir: Path, info: dict) -> None:
    """Every file the format requires is listed in ticket.json and matches its sha256: a file list that is
    missing, empty or short is refused, never taken as 'nothing to check'."""
    files = checked_files(ticket_dir, info.get("files"), f"{Path(ticket_dir) / names.TICKET_JSON}")
    listed = set(files)
    missing = [f for f in REQUIRED_FILES if f not in listed]
    if missing:
        raise EdgeTicketError(f"{Path(ticket_dir) / names.TICKET_JSON} does not list the sha256 of "
                              f"{', '.join(missing)}: it was altered; re-run the search level (or restore the file)")
    for name, digest in files.items():
        store.verify_sha256(Path(ticket_dir) / name, digest, f"ticket file {name}")


def write(ticket_dir: Path, info: dict) -> dict:
    """Write ticket.json last: its presence marks the level finished."""
    info = dict(info)
    info["format_version"] = FORMAT_VERSION
    info["files"] = file_hashes(ticket_dir)
    info["mask_sha256"] = info["files"][names.MASK]
    info["versions"] = versions()
    store.write_json(Path(ticket_dir) / names.TICKET_JSON, info)
    return info


def read_info(ticket_dir: Path) -> dict:
    ticket_dir = Path(ticket_dir)
    if not ticket_dir.is_dir():
        raise EdgeTicketError(f"ticket folder not found: {ticket_dir}")
    info = store.read_json(ticket_dir / names.TICKET_JSON, "ticket.json")
    got = info.get("format_version") if isinstance(info, dict) else None
    if got not in READS:
        raise EdgeTicketError(f"{ticket_dir / names.TICKET_JSON} has format_version {got!r}; this edgeticket reads "
                              f"versions {', '.join(map(str, READS))}: upgrade edgeticket or re-run the search")
    info = upgrade(info)
    check_fields(info, ticket_dir / names.TICKET_JSON)
    return info


# the fields every reader relies on: (path of keys, the types its value may have)
FIELDS = ((("level",), int), (("branch",), str), (("hparams",), dict), (("sparsity", "global"), (int, float)),
          (("accuracy", "final"), (int, float)), (("accuracy", "best"), (int, float)),
          (("timesteps", "trained"), int), (("nnz",), int), (("cost", "wall_s"), (int, float)),
          (("cost", "timestep_epochs"), int), (("cost", "epochs"), int))


def check_fields(info: dict, path: Path) -> None:
    """Every field of FIELDS is there with a value of its type: a file missing one is refused naming it, never a
    KeyError wherever it is first used."""
    for keys, types in FIELDS:
        v = info
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        if v is None or isinstance(v, bool) or not isinstance(v, types):
            raise EdgeTicketError(f"{path} lacks a valid {'.'.join(keys)} (got {v!r}): the file was altered or is "
                                  "not a ticket.json; restore it, or re-run the search level")


def percent_to_fraction(percent):
    """An old file's percent as the fraction files hold now (None stays None); a non-number is a corrupt file."""
    if percent is None:
        return None
    if isinstance(percent, bool) or not isinstance(percent, (int, float)):
        raise EdgeTicketError(f"a percentage in an old-format file is {percent!r}, not a number: the file is "
                              "corrupted; restore it or re-create it")
    return percent / 100.0


def checked_files(folder: Path, files, what: str) -> dict:
    """A file list ({relative name: sha256}) that may be trusted to name files inside `folder`: names are plain
    relative paths (no absolute path, no '..'), digests are sha256 hex strings."""
    if not isinstance(files, dict):
        return {}
    for name, digest in files.items():
        parts = Path(str(name)).parts
        if not isinstance(name, str) or Path(name).is_absolute() or ".." in parts or not parts or \
                not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            raise EdgeTicketError(f"{what} lists {name!r} with {str(digest)[:20]!r}: not a file of this folder with a "
                                  "sha256; the file was altered; restore it or re-create it")
    return files


def upgrade_accuracy(acc: dict) -> dict:
    """A version-1 `accuracy` record (percent; also what a version-2 bundle manifest copied as
    `source_ticket.accuracy`) as version 2 has it (fractions)."""
    acc = dict(acc)
    for k in ("final", "best"):
        if k in acc:
            acc[k] = percent_to_fraction(acc[k])
    acc["metric"] = ACCURACY_METRIC
    return acc


def upgrade(info: dict) -> dict:
    """ticket.json of any version in READS as FORMAT_VERSION has it: the one place old files are converted."""
    if info.get("format_version") == FORMAT_VERSION:
        return info
    info = dict(info)
    if "accuracy" in info:
        info["accuracy"] = upgrade_accuracy(info["accuracy"])
    info["history"] = [{**h, **{k: percent_to_fraction(h[k]) for k in ("train_acc", "test_acc") if k in h}}
                       for h in info.get("history", [])]
    info["format_version"] = FORMAT_VERSION
    return info
