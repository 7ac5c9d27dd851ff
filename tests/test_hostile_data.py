"""Hostile data files (issue 18, item 1): every dataset loader checks counts (x and y agree, no empty split), label
ranges (integers 0..K-1), image dtypes (uint8 or finite float) and its own file format, and calibration records
holding NaN/inf or negative timings are refused: one line naming the file and the fix, exit code 2 at the CLI,
never a traceback, nothing written."""

import gzip
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from edgeticket.cli import main
from edgeticket.data import load
from edgeticket.device import calibration
from edgeticket.errors import EdgeTicketError
from edgeticket.hparams import DataHparams

from conftest import cli_args
from test_hostile import refused


def write_idx(path, arr):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def idx_dir(d, n_train_labels=20, train_labels=None, n_test=10):
    rng = np.random.RandomState(0)
    write_idx(d / "train-images-idx3-ubyte.gz", rng.randint(0, 255, (20, 28, 28)))
    labels = train_labels if train_labels is not None else rng.randint(0, 10, n_train_labels)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.asarray(labels))
    write_idx(d / "t10k-images-idx3-ubyte.gz", rng.randint(0, 255, (n_test, 28, 28)))
    write_idx(d / "t10k-labels-idx1-ubyte.gz", rng.randint(0, 10, n_test))
    return d


def good_npz(**over):
    rng = np.random.RandomState(0)
    arrays = dict(x_train=rng.rand(12, 8, 8).astype(np.float32), y_train=np.arange(12) % 3,
                  x_test=rng.rand(4, 8, 8).astype(np.float32), y_test=np.arange(4) % 3)
    arrays.update(over)
    return arrays


def load_npz_file(tmp_path, **over):
    p = tmp_path / "data.npz"
    np.savez(p, **good_npz(**over))
    return load(DataHparams(dataset="npz", data_dir=str(p)))


def search_refused(tmp_path, dataset, data_dir, needle):
    out = tmp_path / "runs"
    r = CliRunner().invoke(main, ["search", *cli_args(dataset=dataset), "--data-dir", str(data_dir),
                                  "--device", "cpu", "--out", str(out), "-q"])
    refused(r, needle)
    assert not out.exists()


# ---- IDX (mnist, fashion-mnist) ----------------------------------------------------------------------------------

def test_idx_image_and_label_counts_that_differ_are_refused_at_the_cli(tmp_path):
    idx_dir(tmp_path, n_train_labels=17)
    search_refused(tmp_path, "mnist", tmp_path, "20 images in train-images-idx3-ubyte.gz but 17 labels in "
                                                "train-labels-idx1-ubyte.gz")


def test_idx_labels_beyond_ten_classes_are_refused(tmp_path):
    idx_dir(tmp_path, train_labels=np.r_[np.arange(19) % 10, 10])
    with pytest.raises(EdgeTicketError, match=r"train-labels-idx1-ubyte.gz labels must lie in 0..9 \(found 0..10\)"):
        load(DataHparams(dataset="fashion-mnist", data_dir=str(tmp_path)))


def test_idx_empty_test_split_and_wrong_rank_are_refused(tmp_path):
    idx_dir(tmp_path, n_test=0)
    with pytest.raises(EdgeTicketError, match="the test split is empty"):
        load(DataHparams(dataset="mnist", data_dir=str(tmp_path)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros((20, 2)))
    with pytest.raises(EdgeTicketError, match=r"train-labels-idx1-ubyte.gz holds a 2-d array \[20, 2\]"):
        load(DataHparams(dataset="mnist", data_dir=str(tmp_path)))


def test_idx_header_that_overflows_is_refused(tmp_path):
    idx_dir(tmp_path)
    p = tmp_path / "train-images-idx3-ubyte.gz"
    # dims whose product wraps around to 0 in int64: an exact product never matches the bytes there
    header = bytes([0, 0, 8, 4]) + b"".join(int(d).to_bytes(4, "big") for d in (2**16, 2**16, 2**16, 2**16))
    with gzip.open(p, "wb") as f:
        f.write(header)
    with pytest.raises(EdgeTicketError, match="truncated"):
        load(DataHparams(dataset="mnist", data_dir=str(tmp_path)))


# ---- NPZ ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("over, needle", [
    (dict(x_train=np.full((12, 8, 8), np.nan, np.float32)), "x_train holds 768 non-finite value(s) (NaN or inf"),
    (dict(x_test=np.r_[np.zeros((3, 8, 8)), np.full((1, 8, 8), np.inf)]), "x_test holds 64 non-finite value(s)"),
    (dict(x_train=np.full((12, 8, 8), 1e39)), "x_train holds 768 non-finite value(s) (NaN or inf, or beyond float32)"),
    (dict(y_train=(np.arange(12) % 3).astype(np.float64)), "y_train is float64; labels must be integers 0..K-1"),
    (dict(y_test=np.array([0.0, 1.0, 2.0, 3.0])), "y_test is float64; labels must be integers"),
    (dict(y_train=np.arange(12) % 2 == 0), "y_train is bool; labels must be integers"),
    (dict(y_test=np.array([0, 1, 2, 9])), "y_test labels must lie in 0..2 (the classes of y_train) (found 0..9)"),
    (dict(y_train=np.r_[np.arange(11) % 10, 109]), "y_train labels reach 109 but only 11 of the classes 0..109 occur"),
    (dict(y_train=np.r_[np.arange(11) % 3, -1]), "y_train labels must be integers 0..K-1 (found -1)"),
    (dict(x_test=np.zeros((0, 8, 8), np.float32), y_test=np.zeros(0, np.int64)), "the test split is empty"),
    (dict(x_train=np.zeros((0, 8, 8), np.float32), y_train=np.zeros(0, np.int64)), "the train split is empty"),
    (dict(y_train=np.arange(11) % 3), "12 images in x_train but 11 labels in y_train"),
    (dict(x_train=np.zeros((12, 8, 8), np.int64)), "x_train is int64; images must be uint8 (0..255) or float"),
    (dict(x_test=np.zeros((4, 6, 6), np.float32)), "train images are [1, 8, 8] but test images [1, 6, 6]"),
])
def test_npz_hostile_arrays_are_refused(tmp_path, over, needle):
    with pytest.raises(EdgeTicketError) as e:
        load_npz_file(tmp_path, **over)
    msg = str(e.value)
    assert needle in msg and "\n" not in msg and str(tmp_path / "data.npz") in msg


@pytest.mark.parametrize("over, needle", [
    (dict(x_train=np.full((12, 8, 8), np.nan, np.float32)), "x_train holds 768 non-finite value(s)"),
    (dict(y_train=(np.arange(12) % 3).astype(np.float32)), "y_train is float32; labels must be integers"),
    (dict(y_test=np.array([0, 1, 2, 5])), "y_test labels must lie in 0..2 (the classes of y_train)"),
    (dict(x_test=np.zeros((0, 8, 8), np.float32), y_test=np.zeros(0, np.int64)), "the test split is empty"),
])
def test_npz_hostile_arrays_are_refused_at_the_cli(tmp_path, over, needle):
    p = tmp_path / "data.npz"
    np.savez(p, **good_npz(**over))
    search_refused(tmp_path, "npz", p, needle)


def test_npz_good_file_still_loads_with_a_label_column(tmp_path):
    ds = load_npz_file(tmp_path, y_train=(np.arange(12) % 3).astype(np.uint8)[:, None])
    assert ds.num_classes == 3 and ds.x_train.shape == (12, 1, 8, 8) and ds.y_train.dtype.is_floating_point is False


# ---- SVHN .mat ---------------------------------------------------------------------------------------------------

def svhn_dir(d, train_y=None, train_x=None):
    from scipy.io import savemat

    rng = np.random.RandomState(0)
    savemat(d / "train_32x32.mat", {"X": train_x if train_x is not None else
                                    rng.randint(0, 255, (32, 32, 3, 6)).astype(np.uint8),
                                    "y": train_y if train_y is not None else np.array([[10], [1], [2], [3], [4], [5]])})
    savemat(d / "test_32x32.mat", {"X": rng.randint(0, 255, (32, 32, 3, 3)).astype(np.uint8),
                                   "y": np.array([[1.0], [2.0], [10.0]])})  # MATLAB doubles: whole numbers pass
    return d


@pytest.mark.parametrize("kind, needle", [
    ("count", "train_32x32.mat: X holds 6 images but y 5 labels"),
    ("range", "train_32x32.mat: y holds labels outside 0..10"),
    ("fraction", "train_32x32.mat: y holds labels outside 0..10 (10 is the digit 0) or fractions"),
    ("rank", "train_32x32.mat: X is a 3-d array [32, 32, 18]"),
    ("nan", "train_32x32.mat X holds 3072 non-finite value(s)"),
    ("missing", "train_32x32.mat lacks y"),
])
def test_svhn_mat_contents_are_checked(tmp_path, kind, needle):
    from scipy.io import savemat

    y6 = np.array([[10], [1], [2], [3], [4], [5]])
    if kind == "count":
        svhn_dir(tmp_path, train_y=y6[:5])
    elif kind == "range":
        svhn_dir(tmp_path, train_y=np.array([[11], [1], [2], [3], [4], [5]]))
    elif kind == "fraction":
        svhn_dir(tmp_path, train_y=y6 + 0.5)
    elif kind == "rank":
        svhn_dir(tmp_path, train_x=np.zeros((32, 32, 18), np.uint8))
    elif kind == "nan":
        x = np.zeros((32, 32, 3, 6), np.float32)
        x[..., 0] = np.nan
        svhn_dir(tmp_path, train_x=x)
    else:
        svhn_dir(tmp_path)
        savemat(tmp_path / "train_32x32.mat", {"X": np.zeros((32, 32, 3, 6), np.uint8)})
    with pytest.raises(EdgeTicketError) as e:
        load(DataHparams(dataset="svhn", data_dir=str(tmp_path)))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_svhn_double_labels_that_are_whole_numbers_load(tmp_path):
    ds = load(DataHparams(dataset="svhn", data_dir=str(svhn_dir(tmp_path))))
    assert ds.y_test.tolist() == [1, 2, 0]


# ---- Tiny-ImageNet -----------------------------------------------------------------------------------------------

def test_tiny_imagenet_broken_image_is_named(tmp_path):
    from PIL import Image

    root = tmp_path / "tiny-imagenet-200"
    (root / "val" / "images").mkdir(parents=True)
    (root / "train" / "n01" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("n01\n")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "train" / "n01" / "images" / "a.JPEG")
    (root / "train" / "n01" / "images" / "b.JPEG").write_bytes(b"not a jpeg")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "val" / "images" / "v.JPEG")
    (root / "val" / "val_annotations.txt").write_text("v.JPEG\tn01\t0\t0\t64\t64\n")
    with pytest.raises(EdgeTicketError, match=r"b.JPEG is not a readable image"):
        load(DataHparams(dataset="tiny-imagenet", data_dir=str(tmp_path)))
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "train" / "n01" / "images" / "b.JPEG", "JPEG")
    with pytest.raises(EdgeTicketError, match=r"b.JPEG is \[3, 32, 32\] but .*a.JPEG is \[3, 64, 64\]"):
        load(DataHparams(dataset="tiny-imagenet", data_dir=str(tmp_path)))
    (root / "wnids.txt").write_text("n01\nn01\n")
    with pytest.raises(EdgeTicketError, match="must list each class id once"):
        load(DataHparams(dataset="tiny-imagenet", data_dir=str(tmp_path)))


# ---- calibration records -----------------------------------------------------------------------------------------

def shipped_record() -> dict:
    return json.loads(calibration.PACKAGED.joinpath("host.json").read_text())["records"][0]


@pytest.mark.parametrize("change, needle", [
    (lambda r: r.update(conv_gflops=math.nan), "'conv_gflops' is nan, not a finite number"),
    (lambda r: r.update(node_overhead_s=math.inf), "'node_overhead_s' is inf, not a finite number"),
    (lambda r: r.update(call_overhead_s=-1e-6), "'call_overhead_s' is -1e-06, a negative timing"),
    (lambda r: r["measured"].update(latency_p50_s=-0.5), "'measured.latency_p50_s' is -0.5, a negative timing"),
    (lambda r: r.update(gbytes_per_s=0.0), "the rate 'gbytes_per_s' is 0.0, not > 0"),
    (lambda r: r.update(runtime_overhead_bytes=-5), "'runtime_overhead_bytes' is -5, a negative byte count"),
    (lambda r: r.pop("gemm_gflops"), "'gemm_gflops' is missing or not a number"),
])
def test_calibration_record_with_nan_or_negative_timing_is_refused(tmp_path, change, needle):
    rec = shipped_record()
    change(rec)
    d = tmp_path / "cal"
    d.mkdir()
    f = d / "host.json"
    # json.dumps writes NaN/Infinity, which json.loads (and so the reader) accepts: the record check must refuse them
    f.write_text(json.dumps({"format_version": 1, "target": "host", "records": [shipped_record(), rec]}))
    before = f.read_bytes()
    with pytest.raises(EdgeTicketError) as e:
        calibration.newest_record("host", d)
    msg = str(e.value)
    assert "\n" not in msg and str(f) in msg and "calibration record 1" in msg and needle in msg
    assert "--calibrate" in msg
    with pytest.raises(EdgeTicketError):  # appending to such a file is refused too, and writes nothing
        calibration.append_record("host", shipped_record(), d)
    assert f.read_bytes() == before


def test_calibration_measurement_with_nan_is_never_written(tmp_path):
    rec = shipped_record()
    rec["conv_samples"]["standard"]["5x16x32x4"]["seconds"] = math.nan
    with pytest.raises(EdgeTicketError, match=r"unusable \('conv_samples.standard.5x16x32x4.seconds' is nan"):
        calibration.append_record("host", rec, tmp_path / "cal")
    assert not (tmp_path / "cal").exists()
