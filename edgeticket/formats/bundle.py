"""Bundle folders (docs/bundle-format.md): reading and checking them needs numpy alone.

format_version 3: accuracies and agreements are fractions in [0, 1] (`validation.accuracy`,
`validation.prediction_agreement_with_ticket`, `validation.quantization`, `source_ticket.accuracy`), and the
quantization limit is `max_drop` (a fraction); version 2 held them in percent (`max_drop_points`) and is converted
on read (`upgrade`). format_version 2: the event-driven backend is `backends.event` with its files under event/,
the validation samples are validation.npz (version 1 called them `sparse` and calib.npz): a version-1 bundle is
re-compiled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import store
from ..errors import EdgeTicketError
from . import names
from .ticket import checked_files, upgrade_accuracy
from .ticket import percent_to_fraction as _fraction

FORMAT_VERSION = 3
READS = (2, 3)  # format_versions read_manifest accepts (older ones are converted to FORMAT_VERSION)


def read_manifest(bundle_dir: Path) -> dict:
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise EdgeTicketError(f"bundle folder not found: {bundle_dir}")
    m = store.read_json(bundle_dir / names.MANIFEST, "bundle manifest")
    if not isinstance(m, dict) or m.get("format_version") not in READS:
        got = m.get("format_version") if isinstance(m, dict) else None
        raise EdgeTicketError(f"{bundle_dir / names.MANIFEST} has format_version {got!r}; this edgeticket "
                              f"reads versions {', '.join(map(str, READS))}: re-compile the ticket with this "
                              "edgeticket, or install the edgeticket that wrote it")
    return upgrade(m)




def upgrade(m: dict) -> dict:
    """A manifest of any version in READS as FORMAT_VERSION has it: the one place old manifests are converted
    (version 2 -> 3: percent -> fractions). `format_version` then reads FORMAT_VERSION; `upgraded_from` keeps the
    version the file holds."""
    if m.get("format_version") == FORMAT_VERSION:
        return m
    m = dict(m, format_version=FORMAT_VERSION, upgraded_from=m.get("format_version"))
    if isinstance(m.get("source_ticket"), dict) and isinstance(m["source_ticket"].get("accuracy"), dict):
        m["source_ticket"] = dict(m["source_ticket"], accuracy=upgrade_accuracy(m["source_ticket"]["accuracy"]))
    v = m.get("validation")
    if isinstance(v, dict):
        v = dict(v)
        if isinstance(v.get("accuracy"), dict):
            v["accuracy"] = {k: _fraction(x) for k, x in v["accuracy"].items()}
        if "prediction_agreement_with_ticket" in v:
            v["prediction_agreement_with_ticket"] = _fraction(v["prediction_agreement_with_ticket"])
        if isinstance(v.get("quantization"), dict):
            q = dict(v["quantization"])
            for k in ("accuracy_fp32", "accuracy", "prediction_agreement_with_fp32"):
                if k in q:
                    q[k] = _fraction(q[k])
            if "max_drop_points" in q:
                q["max_drop"] = _fraction(q.pop("max_drop_points"))
            v["quantization"] = q
        m["validation"] = v
    return m


def required_files(manifest: dict) -> list[str]:
    """The files a bundle of this manifest must list (and hold): the graph, the validation samples, and the
    files of every backend it says it carries."""
    need = [names.MODEL, names.VALIDATION_SAMPLES]
    b = manifest.get("backends") or {}
    event, tvm = b.get("event") or {}, b.get("tvm") or {}
    if event.get("built"):
        need.append(names.EVENT_NET)
        if (event.get("library") or {}).get("file"):
            need.append(event["library"]["file"])
    if tvm.get("built") and tvm.get("library"):
        need.append(tvm["library"])
    if manifest.get("tensorrt"):
        need.append(names.TENSORRT_MODEL)
    return need


def verify(bundle_dir: Path, manifest: dict) -> None:
    """Every required file is listed with its sha256 and matches it: a file list that is missing, empty or short
    is refused, never taken as 'nothing to check'."""
    files = checked_files(bundle_dir, manifest.get("files"), f"{Path(bundle_dir) / names.MANIFEST}")
    listed = set(files)
    missing = [f for f in required_files(manifest) if f not in listed]
    if missing:
        raise EdgeTicketError(f"{Path(bundle_dir) / names.MANIFEST} does not list the sha256 of {', '.join(missing)}: "
                              "the manifest was altered; copy the whole bundle folder again, or re-compile it")
    for name, digest in files.items():
        store.verify_sha256(Path(bundle_dir) / name, digest, f"bundle file {name}",
                            fix="copy the whole bundle folder again, or re-compile it")


def load(bundle_dir: Path, verify_files: bool = True) -> dict:
    m = read_manifest(bundle_dir)
    if verify_files:
        verify(bundle_dir, m)
    return m


def synaptic_layers(manifest: dict) -> list[str]:
    """The conv/linear layers fed by spikes (their input events are counted), in graph order."""
    return [L["name"] for L in manifest["layers"] if L["input"] == "spikes"]


def validation_samples(bundle_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The inputs the bundle was validated on (normalised like the training data) and their labels."""
    with np.load(Path(bundle_dir) / names.VALIDATION_SAMPLES, allow_pickle=False) as z:
        return z["x"].astype(np.float32), z["y"].astype(np.int64)
