"""Loaders for the standard dataset files. Each returns numpy arrays
(x_train uint8/float [N, C, H, W], y_train int64 [N], x_test, y_test) plus the dataset's traits."""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import EdgeTicketError


@dataclass(frozen=True)
class RawData:
    x_train: np.ndarray  # [N, C, H, W], float32 in [0, 1]
    y_train: np.ndarray  # [N] int64
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    cifar_like: bool  # natural images: crop+flip augmentation by default
    flip: bool = True  # horizontal flips are label-preserving (not for digits / SVHN)


def _need_dir(data_dir: Optional[str], name: str, expected: str) -> Path:
    if not data_dir:
        raise EdgeTicketError(f"dataset '{name}' needs --data-dir pointing at a folder with {expected}")
    d = Path(data_dir).expanduser()
    if not d.is_dir():
        raise EdgeTicketError(f"--data-dir {d} is not a folder; dataset '{name}' expects {expected} there")
    return d


def _to_float(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / 255.0) if x.dtype == np.uint8 else x.astype(np.float32)


# ---------------------------------------------------------------------------------------------- digits
def load_digits(data_dir: Optional[str] = None) -> RawData:
    """scikit-learn's bundled 8x8 digits (1797 images), a fixed 80/20 split. No download."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    perm = np.random.RandomState(0).permutation(len(y))
    n_test = len(y) // 5
    te, tr = perm[:n_test], perm[n_test:]
    return RawData(x[tr], y[tr], x[te], y[te], 10, cifar_like=False, flip=False)


# ---------------------------------------------------------------------------------------------- IDX
def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise EdgeTicketError(f"{path} cannot be read as an IDX file ({e}); replace it with the original") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise EdgeTicketError(f"{path} is not an IDX file of uint8 data (bad magic); replace it with the original")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - offset != count:
        raise EdgeTicketError(f"{path} holds {len(raw) - offset} bytes of data but its header says {count}: "
                              "it is truncated; replace it with the original")
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(dims)


def _idx_loader(name: str) -> Callable[[Optional[str]], RawData]:
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

    def load(data_dir: Optional[str]) -> RawData:
        expected = ", ".join(s + "[.gz]" for s in stems)
        d = _need_dir(data_dir, name, expected)
        found = []
        for stem in stems:
            cands = [d / (stem + ".gz"), d / stem, d / name / (stem + ".gz"), d / name / stem]
            hit = next((c for c in cands if c.is_file()), None)
            if hit is None:
                raise EdgeTicketError(f"dataset '{name}': {stem}[.gz] not found in {d}; expected {expected}")
            found.append(_read_idx(hit))
        xtr, ytr, xte, yte = found
        if len(xtr) != len(ytr) or len(xte) != len(yte):
            raise EdgeTicketError(f"dataset '{name}' in {d}: image and label counts differ; replace the files")
        return RawData(_to_float(xtr)[:, None], ytr.astype(np.int64), _to_float(xte)[:, None],
                       yte.astype(np.int64), 10, cifar_like=False, flip=name == "fashion-mnist")

    load.__name__ = f"load_{name.replace('-', '_')}"
    return load


# ---------------------------------------------------------------------------------------------- CIFAR
# The globals a CIFAR python batch needs (numpy arrays and scalars: numpy.core before numpy 2, numpy._core after). Any other
# global is how a crafted pickle runs code (os.system via __reduce__): it is refused before anything is called.
_BATCH_GLOBALS = {(f"numpy{core}.multiarray", f) for core in (".core", "._core") for f in ("_reconstruct", "scalar")}
_BATCH_GLOBALS |= {("numpy", "ndarray"), ("numpy", "dtype")}


class _Refused(pickle.UnpicklingError):
    """A pickle that names a callable a data file never needs."""


class _BatchUnpickler(pickle.Unpickler):
    """Reads dicts, lists, str/bytes, numbers and numpy arrays; a data file never names another callable."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _BATCH_GLOBALS:
            raise _Refused(f"it names {module}.{name}, which a data file never needs")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="latin1").load()  # python batches: pickled dicts of arrays
    except _Refused as e:
        raise EdgeTicketError(f"{path} refused: {e} (a data file is never run as code); replace it with the "
                              "original CIFAR batch") from None
    except Exception as e:  # noqa: BLE001 - any other unpickling failure means a bad file
        raise EdgeTicketError(f"{path} is not a CIFAR python batch ({type(e).__name__}); replace it") from None
    if not isinstance(batch, dict):
        raise EdgeTicketError(f"{path} is not a CIFAR python batch (a {type(batch).__name__}, not a dict); replace it")
    return batch


def _cifar_arrays(batch: dict, key: str, path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The images [N, 3, 32, 32] uint8 and labels [N] of a batch, checked: shapes, dtypes, counts, label range."""
    if "data" not in batch or key not in batch:
        raise EdgeTicketError(f"{path} lacks the '{'data' if 'data' not in batch else key}' entry of a CIFAR batch")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise EdgeTicketError(f"{path}: 'data' is {what}, expected uint8 [N, 3072]; replace the file")
    labels = batch[key]
    if not isinstance(labels, (list, np.ndarray)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels):
        raise EdgeTicketError(f"{path}: '{key}' must be a list of integer labels; replace the file")
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(y) != len(data):
        raise EdgeTicketError(f"{path}: {len(data)} images but {len(y)} labels; replace the file")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise EdgeTicketError(f"{path}: labels must lie in 0..{num_classes - 1} (found {y.min()}..{y.max()}); "
                              "replace the file")
    return data.reshape(-1, 3, 32, 32), y


def load_cifar10(data_dir: Optional[str]) -> RawData:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    expected = "cifar-10-batches-py/{data_batch_1..5, test_batch}"
    d = _need_dir(data_dir, "cifar10", expected)
    root = d / "cifar-10-batches-py" if (d / "cifar-10-batches-py").is_dir() else d
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise EdgeTicketError(f"dataset 'cifar10': {', '.join(missing)} not found in {root}; expected {expected}")
    parts = [_cifar_arrays(_unpickle(root / n), "labels", root / n, 10) for n in names]
    xtr = np.concatenate([p[0] for p in parts[:5]])
    ytr = np.concatenate([p[1] for p in parts[:5]])
    return RawData(_to_float(xtr), ytr, _to_float(parts[5][0]), parts[5][1], 10, cifar_like=True)


def load_cifar100(data_dir: Optional[str]) -> RawData:
    expected = "cifar-100-python/{train, test}"
    d = _need_dir(data_dir, "cifar100", expected)
    root = d / "cifar-100-python" if (d / "cifar-100-python").is_dir() else d
    missing = [n for n in ("train", "test") if not (root / n).is_file()]
    if missing:
        raise EdgeTicketError(f"dataset 'cifar100': {', '.join(missing)} not found in {root}; expected {expected}")
    xtr, ytr = _cifar_arrays(_unpickle(root / "train"), "fine_labels", root / "train", 100)
    xte, yte = _cifar_arrays(_unpickle(root / "test"), "fine_labels", root / "test", 100)
    return RawData(_to_float(xtr), ytr, _to_float(xte), yte, 100, cifar_like=True)


# ---------------------------------------------------------------------------------------------- SVHN
def load_svhn(data_dir: Optional[str]) -> RawData:
    expected = "train_32x32.mat and test_32x32.mat"
    d = _need_dir(data_dir, "svhn", expected)
    from scipy.io import loadmat

    out = []
    for n in ("train_32x32.mat", "test_32x32.mat"):
        p = d / n
        if not p.is_file():
            raise EdgeTicketError(f"dataset 'svhn': {n} not found in {d}; expected {expected}")
        try:
            m = loadmat(str(p))
            x = np.transpose(m["X"], (3, 2, 0, 1))  # [H, W, C, N] -> [N, C, H, W]
            y = m["y"].reshape(-1).astype(np.int64) % 10  # label 10 means digit 0
        except Exception as e:  # noqa: BLE001
            raise EdgeTicketError(f"{p} is not an SVHN .mat file with X and y ({type(e).__name__}); replace it") \
                from None
        out += [_to_float(x), y]
    return RawData(out[0], out[1], out[2], out[3], 10, cifar_like=True, flip=False)


# ---------------------------------------------------------------------------------------------- Tiny-ImageNet
def load_tiny_imagenet(data_dir: Optional[str]) -> RawData:
    expected = "tiny-imagenet-200/{wnids.txt, train/<wnid>/images/*.JPEG, val/val_annotations.txt, val/images/}"
    d = _need_dir(data_dir, "tiny-imagenet", expected)
    root = d / "tiny-imagenet-200" if (d / "tiny-imagenet-200").is_dir() else d
    for need in ("wnids.txt", "train", "val/val_annotations.txt", "val/images"):
        if not (root / need).exists():
            raise EdgeTicketError(f"dataset 'tiny-imagenet': {need} not found in {root}; expected {expected}")
    from PIL import Image

    wnids = [w.strip() for w in (root / "wnids.txt").read_text().split() if w.strip()]
    index = {w: i for i, w in enumerate(wnids)}

    def read(paths):
        return np.stack([np.asarray(Image.open(p).convert("RGB"), dtype=np.uint8).transpose(2, 0, 1) for p in paths])

    tr_paths, tr_y = [], []
    for w in wnids:
        files = sorted((root / "train" / w / "images").glob("*.JPEG"))
        tr_paths += files
        tr_y += [index[w]] * len(files)
    te_paths, te_y = [], []
    for line in (root / "val" / "val_annotations.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1] in index:
            te_paths.append(root / "val" / "images" / parts[0])
            te_y.append(index[parts[1]])
    if not tr_paths or not te_paths:
        raise EdgeTicketError(f"dataset 'tiny-imagenet': no images found under {root}; expected {expected}")
    return RawData(_to_float(read(tr_paths)), np.array(tr_y, np.int64), _to_float(read(te_paths)),
                   np.array(te_y, np.int64), len(wnids), cifar_like=True)


# ---------------------------------------------------------------------------------------------- npz
def load_npz(data_dir: Optional[str]) -> RawData:
    """Bring your own: an .npz file (or a folder holding data.npz) with x_train, y_train, x_test, y_test.
    Images as [N, H, W], [N, H, W, C] (C in 1..4) or [N, C, H, W]; uint8 (0..255) or float."""
    expected = "an .npz with x_train, y_train, x_test, y_test"
    if not data_dir:
        raise EdgeTicketError(f"dataset 'npz' needs --data-dir pointing at {expected}")
    p = Path(data_dir).expanduser()
    if p.is_dir():
        p = p / "data.npz"
    if not p.is_file():
        raise EdgeTicketError(f"dataset 'npz': {p} not found; expected {expected}")
    try:
        z = np.load(p, allow_pickle=False)
        arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test") if k in z.files}
    except Exception as e:  # noqa: BLE001
        raise EdgeTicketError(f"{p} is not a readable .npz ({type(e).__name__}); expected {expected}") from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise EdgeTicketError(f"{p} lacks {', '.join(missing)}; expected {expected}")

    def chw(x: np.ndarray, key: str) -> np.ndarray:
        if x.ndim == 3:
            return x[:, None]
        if x.ndim == 4:
            channels_last = x.shape[3] <= 4 and x.shape[1] > 4  # [N, H, W, C]
            return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if channels_last else x
        raise EdgeTicketError(f"{p}: {key} has shape {x.shape}; expected [N, H, W], [N, H, W, C] or [N, C, H, W]")

    xtr, xte = chw(arrays["x_train"], "x_train"), chw(arrays["x_test"], "x_test")
    ytr, yte = arrays["y_train"].astype(np.int64).reshape(-1), arrays["y_test"].astype(np.int64).reshape(-1)
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise EdgeTicketError(f"{p}: x and y counts differ (train {len(xtr)}/{len(ytr)}, test {len(xte)}/{len(yte)})")
    if xtr.shape[2] != xtr.shape[3]:
        raise EdgeTicketError(f"{p}: images must be square, got {xtr.shape[2]}x{xtr.shape[3]}")
    if ytr.min() < 0:
        raise EdgeTicketError(f"{p}: labels must be 0..K-1, found {ytr.min()}")
    num_classes = int(max(ytr.max(), yte.max())) + 1
    return RawData(_to_float(xtr), ytr, _to_float(xte), yte, num_classes, cifar_like=xtr.shape[1] == 3)


REGISTRY: dict[str, Callable[[Optional[str]], RawData]] = {
    "digits": load_digits,
    "mnist": _idx_loader("mnist"),
    "fashion-mnist": _idx_loader("fashion-mnist"),
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "svhn": load_svhn,
    "tiny-imagenet": load_tiny_imagenet,
    "npz": load_npz,
}
