import gzip
import pickle

import numpy as np
import pytest
import torch

from edgeticket.data import augment_batch, batches, get, load
from edgeticket.data.dataset import epoch_generator
from edgeticket.errors import EdgeTicketError
from edgeticket.hparams import DataHparams


def write_idx(path, arr, gz):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def make_idx_dir(d, gz=True, n=20):
    rng = np.random.RandomState(0)
    suffix = ".gz" if gz else ""
    write_idx(d / f"train-images-idx3-ubyte{suffix}", rng.randint(0, 255, (n, 28, 28)), gz)
    write_idx(d / f"train-labels-idx1-ubyte{suffix}", rng.randint(0, 10, n), gz)
    write_idx(d / f"t10k-images-idx3-ubyte{suffix}", rng.randint(0, 255, (n // 2, 28, 28)), gz)
    write_idx(d / f"t10k-labels-idx1-ubyte{suffix}", rng.randint(0, 10, n // 2), gz)


def test_digits_is_embedded():
    ds = load(DataHparams())
    assert ds.x_train.shape[1:] == (1, 8, 8) and ds.num_classes == 10
    assert len(ds.y_train) + len(ds.y_test) == 1797
    assert abs(float(ds.x_train.mean())) < 0.05  # normalised


@pytest.mark.parametrize("gz", [True, False])
def test_idx_loader_gz_or_raw(tmp_path, gz):
    make_idx_dir(tmp_path, gz)
    ds = load(DataHparams(dataset="fashion-mnist", data_dir=str(tmp_path)))
    assert ds.x_train.shape == (20, 1, 28, 28) and ds.x_test.shape == (10, 1, 28, 28)


def test_missing_data_dir_names_expected_files(tmp_path):
    with pytest.raises(EdgeTicketError, match="needs --data-dir"):
        load(DataHparams(dataset="mnist"))
    with pytest.raises(EdgeTicketError, match=r"train-images-idx3-ubyte\[\.gz\] not found in .*expected"):
        load(DataHparams(dataset="mnist", data_dir=str(tmp_path)))
    with pytest.raises(EdgeTicketError, match="data_batch_1.*not found"):
        load(DataHparams(dataset="cifar10", data_dir=str(tmp_path)))


def test_truncated_idx_is_reported(tmp_path):
    make_idx_dir(tmp_path, gz=False)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(EdgeTicketError, match="truncated"):
        load(DataHparams(dataset="mnist", data_dir=str(tmp_path)))


def test_cifar10_python_batches(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.RandomState(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {"data": rng.randint(0, 255, (4, 3072)).astype(np.uint8), "labels": list(rng.randint(0, 10, 4))}
        pickle.dump(d, open(root / name, "wb"))
    ds = load(DataHparams(dataset="cifar10", data_dir=str(tmp_path)))
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.crop and ds.flip
    (root / "test_batch").write_bytes(b"garbage")
    with pytest.raises(EdgeTicketError, match="not a CIFAR python batch"):
        load(DataHparams(dataset="cifar10", data_dir=str(tmp_path)))


class _RunsACommand:
    """What a crafted pickle does: unpickling calls os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def _cifar_dir(tmp_path, test_batch):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir(exist_ok=True)
    rng = np.random.RandomState(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        d = {"data": rng.randint(0, 255, (4, 3072)).astype(np.uint8), "labels": [int(v) for v in rng.randint(0, 10, 4)]}
        pickle.dump(d, open(root / name, "wb"))
    pickle.dump(test_batch, open(root / "test_batch", "wb"))
    return tmp_path


def test_a_cifar_batch_is_never_run_as_code(tmp_path):
    marker = tmp_path / "pwned"
    crafted = {"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 2, 3], "x": _RunsACommand(marker)}
    with pytest.raises(EdgeTicketError, match="test_batch refused: it names posix.system, which a data file never "
                                              "needs \\(a data file is never run as code\\)"):
        load(DataHparams(dataset="cifar10", data_dir=str(_cifar_dir(tmp_path, crafted))))
    assert not marker.exists()  # refused before the call


@pytest.mark.parametrize("batch, needle", [
    ({"data": np.zeros((10, 3072), np.uint8), "labels": [0] * 7}, "10 images but 7 labels"),
    ({"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 2, 10]}, "labels must lie in 0..9"),
    ({"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 2, -1]}, "labels must lie in 0..9"),
    ({"data": np.zeros((4, 3072), np.uint8), "labels": [0.0, 1.0, 2.0, 3.0]}, "list of integer labels"),
    ({"data": np.zeros((4, 3072), np.float32), "labels": [0, 1, 2, 3]}, "expected uint8"),
    ([1, 2, 3], "not a dict"),
])
def test_cifar_batches_are_checked(tmp_path, batch, needle):
    with pytest.raises(EdgeTicketError, match=needle):
        load(DataHparams(dataset="cifar10", data_dir=str(_cifar_dir(tmp_path, batch))))


def test_npz_bring_your_own(tmp_path):
    rng = np.random.RandomState(0)
    np.savez(tmp_path / "data.npz", x_train=rng.randint(0, 255, (10, 12, 12, 3)).astype(np.uint8),
             y_train=rng.randint(0, 3, 10), x_test=rng.randint(0, 255, (4, 12, 12, 3)).astype(np.uint8),
             y_test=rng.randint(0, 3, 4))
    ds = load(DataHparams(dataset="npz", data_dir=str(tmp_path)))
    assert ds.x_train.shape == (10, 3, 12, 12) and ds.num_classes == 3
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((2, 4, 4)))
    with pytest.raises(EdgeTicketError, match="lacks y_train, x_test, y_test"):
        load(DataHparams(dataset="npz", data_dir=str(tmp_path / "bad.npz")))


def test_subsets_are_fixed_across_seeds():
    a = load(DataHparams(train_subset=100, test_subset=50))
    b = load(DataHparams(train_subset=100, test_subset=50))
    assert len(a.y_train) == 100 and len(a.y_test) == 50
    assert torch.equal(a.x_train, b.x_train)


def test_augmentation_is_reproducible_and_shape_preserving():
    x = torch.randn(16, 3, 32, 32)
    a = augment_batch(x, epoch_generator(0, 1, 2), crop=True, flip=True)
    b = augment_batch(x, epoch_generator(0, 1, 2), crop=True, flip=True)
    c = augment_batch(x, epoch_generator(0, 1, 3), crop=True, flip=True)
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    # a zero shift without flip is the identity: crops come from the padded image
    same = augment_batch(x, epoch_generator(0), crop=False, flip=False)
    assert torch.equal(same, x)


def test_batches_cover_the_epoch_and_shard_under_ddp():
    ds = load(DataHparams(train_subset=100))
    seen = torch.cat([y for _, y in batches(ds, 32, epoch_generator(0, 0), train=True)])
    assert len(seen) == 100
    r0 = sum(len(y) for _, y in batches(ds, 32, epoch_generator(0, 0), rank=0, world=2))
    r1 = sum(len(y) for _, y in batches(ds, 32, epoch_generator(0, 0), rank=1, world=2))
    assert r0 + r1 == 100


def test_unknown_dataset_lists_valid():
    with pytest.raises(EdgeTicketError, match="valid: digits, mnist, fashion-mnist"):
        get("imagenet")


def test_svhn_mat_files(tmp_path):
    from scipy.io import savemat

    rng = np.random.RandomState(0)
    for split, n in (("train", 6), ("test", 3)):
        savemat(tmp_path / f"{split}_32x32.mat", {"X": rng.randint(0, 255, (32, 32, 3, n)).astype(np.uint8),
                                                  "y": np.array([[10], [1], [2], [3], [4], [5]][:n])})
    ds = load(DataHparams(dataset="svhn", data_dir=str(tmp_path)))
    assert ds.x_train.shape == (6, 3, 32, 32) and int(ds.y_train[0]) == 0  # label 10 is digit 0
    assert ds.crop and not ds.flip  # digits are not flipped


def test_tiny_imagenet_folder(tmp_path):
    from PIL import Image

    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n01", "n02"]
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids))
    lines = []
    for i, w in enumerate(wnids):
        d = root / "train" / w / "images"
        d.mkdir(parents=True)
        for j in range(2):
            Image.fromarray(np.full((64, 64, 3), 40 * i + j, np.uint8)).save(d / f"{w}_{j}.JPEG")
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{w}\t0\t0\t64\t64")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines))
    ds = load(DataHparams(dataset="tiny-imagenet", data_dir=str(tmp_path)))
    assert ds.x_train.shape == (4, 3, 64, 64) and ds.num_classes == 2 and list(ds.y_test.tolist()) == [0, 1]


def test_cutout_is_a_black_hole_of_the_right_size_drawn_from_the_generator():
    from edgeticket.data.augment import cutout_batch

    x = torch.rand(64, 3, 32, 32) + 1.0  # nothing is 0 before the hole
    a = cutout_batch(x, epoch_generator(0, 1), 16)
    assert torch.equal(a, cutout_batch(x, epoch_generator(0, 1), 16))  # the generator alone decides
    assert not torch.equal(a, cutout_batch(x, epoch_generator(0, 2), 16))
    full = 0
    for img in a:
        hole = img == 0
        assert torch.equal(hole[0], hole[1]) and torch.equal(hole[0], hole[2])  # every channel
        rows, cols = hole[0].any(1).nonzero().flatten(), hole[0].any(0).nonzero().flatten()
        h, w = len(rows), len(cols)
        assert 8 <= h <= 16 and 8 <= w <= 16 and int(hole[0].sum()) == h * w  # one rectangle, clipped at the border
        assert torch.equal(rows, torch.arange(int(rows[0]), int(rows[0]) + h))
        full += h == w == 16
        assert h == 16 or rows[0] == 0 or rows[-1] == 31  # shorter only where the border clips it
    assert full > 0
    # the fill value: a black pixel after normalisation, per channel
    fill = torch.tensor([-1.0, -2.0, -3.0])
    b = cutout_batch(x, epoch_generator(0, 1), 16, fill)
    assert torch.equal(b == fill[None, :, None, None], a == 0)


def test_cutout_through_batches_is_deterministic_and_off_by_default(tmp_path):
    ds = load(DataHparams(train_subset=64))
    assert ds.cutout == 0 and "cutout" not in ds.describe()["augment"]
    plain = [xb for xb, _ in batches(ds, 32, epoch_generator(0, 0))]
    ds_c = load(DataHparams(train_subset=64, cutout=4, augment="none"))
    assert ds_c.describe()["augment"]["cutout"] == 4
    one = [xb for xb, _ in batches(ds_c, 32, epoch_generator(0, 0))]
    two = [xb for xb, _ in batches(ds_c, 32, epoch_generator(0, 0))]
    assert all(torch.equal(a, b) for a, b in zip(one, two))
    black = ds_c.black[None, :, None, None].expand_as(one[0])
    for xb, p in zip(one, plain):  # same images in the same order: the shuffle is drawn before the holes
        changed = xb != p
        assert torch.equal(xb[changed], black[: len(xb)][changed])  # what changed became black
        assert int(changed.flatten(1).sum(1).max()) <= 16  # at most a 4x4 hole on 8x8 digits
    assert sum(int(torch.count_nonzero(xb != p)) for xb, p in zip(one, plain)) > 64  # holes (digits' black is kept)


def test_normalize_authors_uses_the_papers_constants(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.RandomState(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {"data": rng.randint(0, 255, (4, 3072)).astype(np.uint8), "labels": [int(v) for v in rng.randint(0, 10, 4)]}
        pickle.dump(d, open(root / name, "wb"))
    mean, std = [0.4913, 0.4821, 0.4465], [0.2023, 0.1994, 0.2010]
    ds = load(DataHparams(dataset="cifar10", data_dir=str(tmp_path), normalize="authors"))
    assert ds.mean == pytest.approx(mean) and ds.std == pytest.approx(std)
    raw = get("cifar10")(str(tmp_path))
    m, s = (np.array(v, np.float32)[None, :, None, None] for v in (mean, std))
    want = (raw.x_train - m) / s
    assert np.allclose(ds.x_train.numpy(), want, atol=1e-6)
    assert torch.allclose(ds.black, torch.tensor([-m / s for m, s in zip(mean, std)]))
    dflt = load(DataHparams(dataset="cifar10", data_dir=str(tmp_path)))  # default: the training set's statistics
    assert dflt.mean == pytest.approx(raw.x_train.mean(axis=(0, 2, 3)).tolist(), abs=1e-6)
    with pytest.raises(EdgeTicketError, match="--normalize authors has no constants for dataset 'digits'"):
        load(DataHparams(normalize="authors"))
    from edgeticket.hparams import SearchConfig

    with pytest.raises(EdgeTicketError, match="--normalize authors has no constants for dataset 'mnist'"):
        SearchConfig.from_flat({"dataset": "mnist", "normalize": "authors"}).validate()


def test_resize_to_32_reaches_the_model(tmp_path):
    from edgeticket.hparams import ModelHparams
    from edgeticket.models import build

    make_idx_dir(tmp_path, gz=True)
    hp = DataHparams(dataset="fashion-mnist", data_dir=str(tmp_path), resize=32, normalize="authors",
                     augment="crop-flip")
    ds = load(hp)
    assert ds.x_train.shape == (20, 1, 32, 32) and ds.x_test.shape == (10, 1, 32, 32)
    assert ds.image_size == 32 and ds.describe()["input_shape"] == [1, 32, 32] and ds.describe()["resize"] == 32
    assert ds.mean == [0.5] and ds.std == [0.5]
    # bilinear with half-pixel centres: a constant image stays constant, the corners keep the corner pixels
    raw = get("fashion-mnist")(str(tmp_path))
    x = ds.x_train.numpy() * 0.5 + 0.5
    assert np.allclose(x[:, :, 0, 0], raw.x_train[:, :, 0, 0], atol=1e-6)
    assert np.allclose(x[:, :, -1, -1], raw.x_train[:, :, -1, -1], atol=1e-6)
    assert np.allclose(x.mean(), raw.x_train.mean(), atol=0.01)
    net = build(ModelHparams(arch="tiny", timesteps=2), ds.num_classes, ds.in_channels, ds.image_size)
    xb, _ = next(batches(ds, 8, epoch_generator(0, 0)))
    assert xb.shape == (8, 1, 32, 32) and net(xb).shape == (2, 8, 10)
    assert load(DataHparams(dataset="fashion-mnist", data_dir=str(tmp_path))).x_train.shape[2:] == (28, 28)
