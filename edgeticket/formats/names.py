"""Every file name of the folders edgeticket writes, in one place (open_lth foundations/paths.py style).

Run folder:    run.json, early_time.json, summary.{csv,json,png}, level_<k>/ (a ticket folder),
               level_<k>/branch_<control>/ (a control's ticket folder)
Ticket folder: mask / rewind / trained .safetensors, ticket.json (written last: it marks the level finished),
               checkpoint.pt while a level trains
Bundle folder: manifest.json, model.onnx, validation.npz, event/model.etsp + event/libetevent-<arch>.so,
               tvm/<target>.so, tensorrt/model.onnx (TensorRT targets), profile.json (written by `edgeticket profile`),
               profile-<host>.json (brought back by `edgeticket profile --host`)
Experiment:    experiment.json
"""

from __future__ import annotations

from pathlib import Path

# run folder
RUN_JSON = "run.json"
ET_JSON = "early_time.json"
SUMMARY_CSV = "summary.csv"
SUMMARY_PNG = "summary.png"
SUMMARY_JSON = "summary.json"
EXPERIMENT_JSON = "experiment.json"

# ticket folder
MASK = "mask.safetensors"
REWIND = "rewind.safetensors"
TRAINED = "trained.safetensors"
TICKET_JSON = "ticket.json"
CHECKPOINT = "checkpoint.pt"

# bundle folder
MANIFEST = "manifest.json"
MODEL = "model.onnx"
VALIDATION_SAMPLES = "validation.npz"  # the validation samples: x (normalised inputs) and y
PROFILE_JSON = "profile.json"
EVENT_DIR = "event"
EVENT_NET = f"{EVENT_DIR}/model.etsp"
TVM_DIR = "tvm"
TENSORRT_MODEL = "tensorrt/model.onnx"  # TensorRT targets: model.onnx with the weight decode folded (dense)


def slug(text: str) -> str:
    """A name fit for a folder name: an imported network's `package.module:factory` as package-module-factory."""
    import re

    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "model"


def event_library(arch: str) -> str:
    """The event-driven kernels built for one CPU architecture, inside the bundle."""
    return f"{EVENT_DIR}/libetevent-{arch}.so"


def remote_profile(host_label: str) -> str:
    """The profile `edgeticket profile --host` brought back from a board, inside the bundle."""
    return f"profile-{host_label}.json"


def tvm_library(target_name: str) -> str:
    return f"{TVM_DIR}/{target_name}.so"


def level_dir(run_dir: Path, level: int) -> Path:
    return Path(run_dir) / f"level_{level}"


def branch_dir(run_dir: Path, level: int, branch: str) -> Path:
    """A control branch (random-reinit / random-mask) of a level lives inside the level's folder."""
    return level_dir(run_dir, level) / f"branch_{branch}"


def is_finished(ticket_dir: Path) -> bool:
    """A ticket folder with ticket.json is finished and never redone."""
    return (Path(ticket_dir) / TICKET_JSON).is_file()


def calibration_file(directory: Path, target: str) -> Path:
    """The calibration records of one target in a calibration folder."""
    return Path(directory) / f"{target}.json"
