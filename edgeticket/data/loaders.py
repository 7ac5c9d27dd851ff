"""Loaders for the standard dataset files. Each returns numpy arrays
(x_train uint8/float [N, C, H, W], y_train int64 [N], x_test, y_test) plus the dataset's traits."""

from __future__ import annotations

import gzip
import math
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


def check_split(x, y, num_classes: int | None, where: str, split: str = "train", names: tuple[str, str] | None = None,
                classes: str = "") -> tuple[np.ndarray, np.ndarray]:
    """One split of a dataset, checked the same way for every loader; returns (images float32, labels int64).
    Images: a numpy array of uint8 (0..255) or float (every value finite, also once cast to float32), at least
    one; labels: one integer (never float or bool) per image, in 0..num_classes-1 (None: any label >= 0, the
    classes are then those the labels name). `where` names the file(s),
    `names` the two arrays (default x_<split>, y_<split>), `classes` says where num_classes comes from."""
    xn, yn = names or (f"x_{split}", f"y_{split}")
    fix = "replace the file(s) with a correct copy"
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise EdgeTicketError(f"{where}: {xn} and {yn} must be numpy arrays; {fix}")
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise EdgeTicketError(f"{where}: {xn} is {x.dtype}; images must be uint8 (0..255) or float: save them as "
                              "uint8 or float32")
    if x.ndim < 1 or len(x) == 0:
        raise EdgeTicketError(f"{where}: the {split} split is empty ({xn} holds no image); every split needs at "
                              f"least one image: {fix}")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise EdgeTicketError(f"{where}: {yn} is {y.dtype}; labels must be integers 0..K-1 (not float or bool): "
                              "save them as int64")
    if y.ndim == 2 and y.shape[1] == 1:  # a column of labels
        y = y[:, 0]
    if y.ndim != 1 or len(y) != len(x):
        got = f"{len(y)} labels" if y.ndim == 1 else f"labels of shape {list(y.shape)}"
        raise EdgeTicketError(f"{where}: {len(x)} images in {xn} but {got} in {yn}; every image needs one label: "
                              f"{fix}")
    lo, hi = int(y.min()), int(y.max())
    if num_classes is None and lo < 0:
        raise EdgeTicketError(f"{where}: {yn} labels must be integers 0..K-1 (found {lo}); {fix}")
    if num_classes is not None and (lo < 0 or hi >= num_classes):
        raise EdgeTicketError(f"{where}: {yn} labels must lie in 0..{num_classes - 1}{classes} (found {lo}..{hi}); "
                              f"{fix}")
    with np.errstate(over="ignore", invalid="ignore"):  # a value beyond float32 becomes inf: counted below
        xf = _to_float(x)
    if x.dtype != np.uint8:
        bad = int(xf.size - np.count_nonzero(np.isfinite(xf)))
        if bad:
            raise EdgeTicketError(f"{where}: {xn} holds {bad} non-finite value(s) (NaN or inf, or beyond float32); "
                                  f"images must be finite: {fix}")
    return xf, y.astype(np.int64)


def checked(where: str, train: tuple, test: tuple, num_classes: int | None, cifar_like: bool, flip: bool = True,
            names: tuple[tuple[str, str], tuple[str, str]] | None = None, classes: str = "") -> RawData:
    """RawData of a train and a test split (x, y), each checked by check_split; both hold images of one shape.
    num_classes None: the classes are 0..max of the training labels, each of which must occur there (label 109 in a
    set of 10 classes is a mistake, not 100 empty classes), and a test label beyond them is refused."""
    xtr, ytr = check_split(*train, num_classes, where, "train", names and names[0], classes)
    if num_classes is None:
        num_classes = int(ytr.max()) + 1
        seen = len(np.unique(ytr))
        if seen != num_classes:
            yn = (names and names[0][1]) or "y_train"
            raise EdgeTicketError(f"{where}: {yn} labels reach {num_classes - 1} but only {seen} of the classes "
                                  f"0..{num_classes - 1} occur; labels must be 0..K-1 with every class in the "
                                  "training split: renumber them")
    xte, yte = check_split(*test, num_classes, where, "test", names and names[1], classes)
    if xtr.shape[1:] != xte.shape[1:]:
        raise EdgeTicketError(f"{where}: train images are {list(xtr.shape[1:])} but test images "
                              f"{list(xte.shape[1:])}; both splits need one image shape")
    return RawData(xtr, ytr, xte, yte, num_classes, cifar_like=cifar_like, flip=flip)


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
    return checked("scikit-learn digits", (x[tr], y[tr]), (x[te], y[te]), 10, cifar_like=False, flip=False)


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
    offset = 4 + 4 * ndim
    if ndim == 0 or len(raw) < offset:
        raise EdgeTicketError(f"{path} has a bad IDX header ({ndim} dimensions, {len(raw)} bytes); replace it with "
                              "the original")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    count = math.prod(dims)  # exact: a crafted header cannot wrap around
    if len(raw) - offset != count:
        raise EdgeTicketError(f"{path} holds {len(raw) - offset} bytes of data but its header says {count}: "
                              "it is truncated; replace it with the original")
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(dims)


def _idx_loader(name: str) -> Callable[[Optional[str]], RawData]:
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

    def load(data_dir: Optional[str]) -> RawData:
        expected = ", ".join(s + "[.gz]" for s in stems)
        d = _need_dir(data_dir, name, expected)
        found, paths = [], []
        for stem in stems:
            cands = [d / (stem + ".gz"), d / stem, d / name / (stem + ".gz"), d / name / stem]
            hit = next((c for c in cands if c.is_file()), None)
            if hit is None:
                raise EdgeTicketError(f"dataset '{name}': {stem}[.gz] not found in {d}; expected {expected}")
            arr = _read_idx(hit)
            want = 3 if "images" in stem else 1
            if arr.ndim != want:
                raise EdgeTicketError(f"{hit} holds a {arr.ndim}-d array {list(arr.shape)}; {stem} must be "
                                      f"{'[N, H, W] images' if want == 3 else '[N] labels'}: replace it with the "
                                      "original")
            found.append(arr)
            paths.append(hit.name)
        xtr, ytr, xte, yte = found
        return checked(f"dataset '{name}' in {d}", (xtr[:, None], ytr), (xte[:, None], yte), 10, cifar_like=False,
                       flip=name == "fashion-mnist", names=((paths[0], paths[1]), (paths[2], paths[3])))

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
    return checked(f"dataset 'cifar10' in {root}", (xtr, ytr), parts[5], 10, cifar_like=True,
                   names=(("data_batch_*", "data_batch_* labels"), ("test_batch", "test_batch labels")))


def load_cifar100(data_dir: Optional[str]) -> RawData:
    expected = "cifar-100-python/{train, test}"
    d = _need_dir(data_dir, "cifar100", expected)
    root = d / "cifar-100-python" if (d / "cifar-100-python").is_dir() else d
    missing = [n for n in ("train", "test") if not (root / n).is_file()]
    if missing:
        raise EdgeTicketError(f"dataset 'cifar100': {', '.join(missing)} not found in {root}; expected {expected}")
    xtr, ytr = _cifar_arrays(_unpickle(root / "train"), "fine_labels", root / "train", 100)
    xte, yte = _cifar_arrays(_unpickle(root / "test"), "fine_labels", root / "test", 100)
    return checked(f"dataset 'cifar100' in {root}", (xtr, ytr), (xte, yte), 100, cifar_like=True,
                   names=(("train", "train fine_labels"), ("test", "test fine_labels")))


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
        except Exception as e:  # noqa: BLE001
            raise EdgeTicketError(f"{p} is not an SVHN .mat file with X and y ({type(e).__name__}); replace it") \
                from None
        out.append(_svhn_arrays(m, p))
    return checked(f"dataset 'svhn' in {d}", out[0], out[1], 10, cifar_like=True, flip=False,
                   names=(("train_32x32.mat X", "train_32x32.mat y"), ("test_32x32.mat X", "test_32x32.mat y")))


def _svhn_arrays(m: dict, p: Path) -> tuple[np.ndarray, np.ndarray]:
    """X [H, W, C, N] -> [N, C, H, W] and y [N] (SVHN's label 10 is the digit 0) of a .mat file, checked.
    MATLAB stores numbers as doubles: a float y is taken when every value is a whole number 0..10."""
    fix = "replace it with the original"
    missing = [k for k in ("X", "y") if k not in m]
    if missing:
        raise EdgeTicketError(f"{p} lacks {' and '.join(missing)}: not an SVHN .mat file; {fix}")
    x, y = m["X"], m["y"]
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        what = f"a {x.ndim}-d array {list(x.shape)}" if isinstance(x, np.ndarray) else type(x).__name__
        raise EdgeTicketError(f"{p}: X is {what}; expected [H, W, C, N] images: {fix}")
    if not isinstance(y, np.ndarray) or y.ndim > 2 or (y.ndim == 2 and 1 not in y.shape):
        raise EdgeTicketError(f"{p}: y must be a column of labels; {fix}")
    y = y.reshape(-1)
    if y.dtype == np.bool_ or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise EdgeTicketError(f"{p}: y is {y.dtype}; SVHN labels are whole numbers 1..10 (10 is the digit 0): {fix}")
    if len(y) and not (np.all(np.isfinite(y)) and np.all(y == np.round(y)) and y.min() >= 0 and y.max() <= 10):
        raise EdgeTicketError(f"{p}: y holds labels outside 0..10 (10 is the digit 0) or fractions; {fix}")
    if x.shape[3] != len(y):
        raise EdgeTicketError(f"{p}: X holds {x.shape[3]} images but y {len(y)} labels; {fix}")
    return np.transpose(x, (3, 2, 0, 1)), y.astype(np.int64) % 10


# ---------------------------------------------------------------------------------------------- Tiny-ImageNet
def load_tiny_imagenet(data_dir: Optional[str]) -> RawData:
    expected = "tiny-imagenet-200/{wnids.txt, train/<wnid>/images/*.JPEG, val/val_annotations.txt, val/images/}"
    d = _need_dir(data_dir, "tiny-imagenet", expected)
    root = d / "tiny-imagenet-200" if (d / "tiny-imagenet-200").is_dir() else d
    for need in ("wnids.txt", "train", "val/val_annotations.txt", "val/images"):
        if not (root / need).exists():
            raise EdgeTicketError(f"dataset 'tiny-imagenet': {need} not found in {root}; expected {expected}")
    from PIL import Image

    try:
        wnids = [w.strip() for w in (root / "wnids.txt").read_text(encoding="utf-8").split() if w.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise EdgeTicketError(f"{root / 'wnids.txt'} cannot be read ({type(e).__name__}); replace it") from None
    if not wnids or len(set(wnids)) != len(wnids):
        raise EdgeTicketError(f"{root / 'wnids.txt'} must list each class id once (found {len(wnids)} ids, "
                              f"{len(wnids) - len(set(wnids))} repeated); replace it")
    index = {w: i for i, w in enumerate(wnids)}

    def image(p):
        try:
            with Image.open(p) as im:
                return np.asarray(im.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
        except Exception as e:  # noqa: BLE001 - a missing, truncated or non-image file
            raise EdgeTicketError(f"{p} is not a readable image ({type(e).__name__}); replace it") from None

    def read(paths):
        imgs = [image(p) for p in paths]
        odd = next((p for p, a in zip(paths, imgs) if a.shape != imgs[0].shape), None)
        if odd is not None:
            raise EdgeTicketError(f"{odd} is {list(imgs[paths.index(odd)].shape)} but {paths[0]} is "
                                  f"{list(imgs[0].shape)}; every image needs one size: replace it")
        return np.stack(imgs)

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
    return checked(f"dataset 'tiny-imagenet' in {root}", (read(tr_paths), np.array(tr_y, np.int64)),
                   (read(te_paths), np.array(te_y, np.int64)), len(wnids), cifar_like=True,
                   classes=f" (the {len(wnids)} ids of wnids.txt)")


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
    ytr, yte = arrays["y_train"], arrays["y_test"]
    # the classes are those of the training labels (0..max): labels of a class never trained on are refused
    raw = checked(str(p), (xtr, ytr), (xte, yte), None, cifar_like=xtr.shape[1] == 3,
                  classes=" (the classes of y_train)")
    if raw.x_train.shape[2] != raw.x_train.shape[3]:
        raise EdgeTicketError(f"{p}: images must be square, got {raw.x_train.shape[2]}x{raw.x_train.shape[3]}")
    return raw


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
