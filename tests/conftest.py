import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


def tiny_flat(**over):
    """CLI-style settings of a search that runs in seconds: tiny net, digits subset, few epochs."""
    flat = dict(arch="tiny", dataset="digits", train_subset=256, test_subset=128, epochs=3, rounds=2,
                rewind_epoch=1, batch_size=64, lr=0.1, seed=0, timesteps=4, et_candidates="2,3")
    flat.update(over)
    return flat


def tiny_cfg(**over):
    from edgeticket.hparams import SearchConfig, iter_fields

    flat = {f.name: f.default for _, f in iter_fields()}
    flat.update(tiny_flat(**over))
    return SearchConfig.from_flat(flat)


def cli_args(**over):
    args = []
    for k, v in tiny_flat(**over).items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    return args


@pytest.fixture
def tiny():
    return tiny_cfg


@pytest.fixture(scope="module")
def ticket(tmp_path_factory):
    """The last level of a tiny 2-round IMP search (one per test module)."""
    from edgeticket import api

    out = tmp_path_factory.mktemp("runs")
    cfg = tiny_cfg(rounds=2)
    api.search(cfg, out=out, device="cpu", quiet=True)
    return out / cfg.hashname() / "level_2"


@pytest.fixture(autouse=True, scope="session")
def _user_state_in_tmp(tmp_path_factory):
    """Calibration records written by tests go to a temp folder, never to the user's data folder."""
    if "EDGETICKET_CALIBRATION" not in os.environ:
        os.environ["EDGETICKET_CALIBRATION"] = str(tmp_path_factory.mktemp("calibration"))
    yield
