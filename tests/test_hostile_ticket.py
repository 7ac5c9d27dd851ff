"""Hostile tickets (issue 18, item 2): compile checks the mask against the network, the weights and ticket.json.
A mask of the wrong shape or dtype, a mask missing a layer or holding an extra one, pruned positions that hold
nonzero weights, and a sparsity record that disagrees with the mask each end in exit code 2 with one line that
names the file and the fix, never a traceback, and write nothing. The files are tampered and their sha256s in
ticket.json rewritten, so the hash check passes and only the mask check can catch them."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from edgeticket import store
from edgeticket.cli import main
from edgeticket.compile.ticket_source import check_mask
from edgeticket.formats import names
from edgeticket.formats.ticket import REQUIRED_FILES

from test_hostile import refused, snapshot


def rehash(ticket_dir: Path) -> None:
    """ticket.json's `files` (and `mask_sha256`) recomputed, as a forger would, so the sha256 check passes."""
    path = ticket_dir / names.TICKET_JSON
    info = json.loads(path.read_text())
    info["files"] = {n: store.sha256_file(ticket_dir / n) for n in REQUIRED_FILES}
    info["mask_sha256"] = info["files"][names.MASK]
    path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def _pruned_layer(mask: dict) -> str:
    return next(n for n, m in mask.items() if not bool(m.all()))


def _shape(mask, weights, info):
    n = next(iter(mask))
    mask[n] = mask[n].flatten()[:-1].clone()
    return f"{names.MASK}: {n} has shape"


def _missing(mask, weights, info):
    n = list(mask)[-1]
    del mask[n]
    return f"{names.MASK} lacks 1 of the network's {len(mask) + 1} masks of prunable weights (e.g. {n})"


def _extra(mask, weights, info):
    mask["bogus.weight"] = torch.ones(3, dtype=torch.bool)
    return f"{names.MASK} holds 1 masks of prunable weights the network lacks (e.g. bogus.weight)"


def _float(mask, weights, info):
    n = _pruned_layer(mask)
    mask[n] = mask[n].float()  # 0/1 values: the same mask, one layer stored as float
    return f"{names.MASK}: {n} is float32, not bool"


def _nonzero(mask, weights, info):
    n = _pruned_layer(mask)
    w = weights[n].clone().flatten()
    idx = (~mask[n].flatten()).nonzero()[:2, 0]
    w[idx] = 0.5
    weights[n] = w.reshape(weights[n].shape)
    return f"{names.TRAINED}: {n} holds 2 nonzero weights at positions {names.MASK} prunes"


def _global(mask, weights, info):
    info["sparsity"]["global"] = 0.4375 if abs(info["sparsity"]["global"] - 0.4375) > 0.01 else 0.0
    return f"{names.TICKET_JSON} records sparsity.global"


def _layer(mask, weights, info):
    n = _pruned_layer(mask)
    info["sparsity"]["layers"][n] += 0.01
    return f"{names.TICKET_JSON} records sparsity.layers[{n!r}]"


def _nnz(mask, weights, info):
    info["nnz"] += 1
    return f"{names.TICKET_JSON} records nnz"


def _weights_extra(mask, weights, info):
    weights["bogus.bias"] = torch.zeros(3)
    return f"{names.TRAINED} holds 1 tensors the network lacks (e.g. bogus.bias)"


def _weights_shape(mask, weights, info):
    n = next(k for k in weights if k not in mask and weights[k].dim() == 1)  # a BN or bias vector
    weights[n] = torch.cat([weights[n], weights[n][:1]])
    return f"{names.TRAINED}: {n} is float32 [{weights[n].numel()}], the network's is float32 [{weights[n].numel() - 1}]"


@pytest.mark.parametrize("tamper", [_shape, _missing, _extra, _float, _nonzero, _global, _layer, _nnz, _weights_extra,
                                    _weights_shape],
                         ids=["mask-shape", "mask-missing-layer", "mask-extra-key", "float-mask",
                              "pruned-weight-nonzero", "global-sparsity", "layer-sparsity", "nnz", "weights-extra",
                              "weights-shape"])
def test_compile_refuses_a_ticket_whose_mask_does_not_fit(ticket, tmp_path, tamper):
    bad = tmp_path / "ticket"
    shutil.copytree(ticket, bad)
    mask, weights = load_file(str(bad / names.MASK)), load_file(str(bad / names.TRAINED))
    info = json.loads((bad / names.TICKET_JSON).read_text())
    needle = tamper(mask, weights, info)
    save_file(mask, str(bad / names.MASK))
    save_file(weights, str(bad / names.TRAINED))
    (bad / names.TICKET_JSON).write_text(json.dumps(info))
    rehash(bad)
    before = snapshot(bad)
    out = tmp_path / "bundles"
    r = CliRunner().invoke(main, ["compile", str(bad), "--target", "host", "--out", str(out)])
    refused(r, needle)
    assert str(bad) in r.output and "re-run the search level that wrote it" in r.output
    assert not out.exists()
    assert snapshot(bad) == before


def test_an_untampered_ticket_passes_the_mask_check(ticket):
    from edgeticket import api

    model, mask, info = api.load_ticket(ticket)  # load runs check_mask too
    raw = store.load_tensors(ticket / names.MASK)
    weights = store.load_tensors(ticket / names.TRAINED)
    assert all(m.dtype == torch.bool for m in raw.values()) and list(mask) == model.prunable()
    assert 0 < info["sparsity"]["global"] < 1  # level 2: something is pruned, so the checks have work to do
    check_mask(raw, weights, info, ticket, model.prunable())
