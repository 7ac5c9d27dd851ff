import pytest
import torch

from edgeticket.models import REGISTRY
from edgeticket.pruning import (Mask, MaskedTraining, bn_channel_mask, mask_at_sparsity, prune,
                                random_mask_like, sparsity_after_rounds)
from edgeticket.pruning.scoring import magnitude


def model_and_mask():
    torch.manual_seed(0)
    m = REGISTRY["tiny"](10, 1, 8)
    return m, Mask.ones_like(m, m.prunable())


def weights(m, mask):
    sd = m.state_dict()
    return {n: sd[n] for n in mask}


def test_global_prune_removes_exactly_p_of_remaining_smallest():
    m, mask = model_and_mask()
    total = mask.numel()
    m1 = prune(mask, magnitude(weights(m, mask)), 0.25)
    assert m1.nnz() == total - round(0.25 * total)
    # global: every kept weight is at least as large as every pruned one
    w = weights(m, mask)
    kept = torch.cat([w[n][m1[n]].abs().flatten() for n in m1])
    gone = torch.cat([w[n][~m1[n]].abs().flatten() for n in m1])
    assert kept.min() >= gone.max()
    m2 = prune(m1, magnitude(w), 0.25)
    assert m2.nnz() == m1.nnz() - round(0.25 * m1.nnz())
    assert all(not (m2[n] & ~m1[n]).any() for n in m2)  # pruned weights never come back


def test_sparsity_schedule_matches_paper_table():
    got = [round(100 * sparsity_after_rounds(0.25, k), 2) for k in (1, 2, 3, 8, 12)]
    assert got == [25.0, 43.75, 57.81, 89.99, 96.83]


def test_layerwise_prunes_each_layer_by_p():
    m, mask = model_and_mask()
    m1 = prune(mask, magnitude(weights(m, mask)), 0.5, strategy="layerwise")
    for n in m1:
        assert m1[n].sum() == mask[n].numel() - round(0.5 * mask[n].numel())


def test_frozen_layers_stay_dense():
    m, mask = model_and_mask()
    first, last = m.prunable()[0], m.prunable()[-1]
    m1 = prune(mask, magnitude(weights(m, mask)), 0.5, frozen=(first, last))
    assert m1[first].all() and m1[last].all()
    assert m1.sparsity() > 0


def test_pruned_weights_stay_exactly_zero_under_momentum_and_weight_decay():
    m, mask = model_and_mask()
    mask = prune(mask, magnitude(weights(m, mask)), 0.8)
    # put nonzero momentum into the pruned positions first: without the mask re-application they would regrow
    opt = torch.optim.SGD(m.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    torch.nn.functional.cross_entropy(m(x).mean(0), y).backward()
    opt.step()
    guard = MaskedTraining(m, mask)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x).mean(0), y).backward()
        params = dict(m.named_parameters())
        assert all((params[n].grad[~mask[n]] == 0).all() for n in mask)  # gradient masked
        opt.step()
        guard.after_step()
    params = dict(m.named_parameters())
    for n in mask:
        assert (params[n][~mask[n]] == 0).all()
        assert (params[n][mask[n]] != 0).any()


def test_random_mask_keeps_layer_sparsity():
    m, mask = model_and_mask()
    m1 = prune(mask, magnitude(weights(m, mask)), 0.7)
    r = random_mask_like(m1, torch.Generator().manual_seed(1))
    assert {n: int(v.sum()) for n, v in r.items()} == {n: int(v.sum()) for n, v in m1.items()}
    assert r.hamming(m1) > 0


def test_mask_at_sparsity_and_hamming():
    m, mask = model_and_mask()
    a = mask_at_sparsity(magnitude(weights(m, mask)), 0.9)
    assert a.sparsity() == pytest.approx(0.9, abs=1e-3)
    assert a.hamming(a) == 0.0


def test_bn_channel_mask_zeroes_whole_output_channels():
    m, mask = model_and_mask()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.copy_(torch.rand(mod.num_features))
    wm, channels = bn_channel_mask(m, m.prunable(), 0.5)
    assert channels.numel() == 8 + 16 and int(channels.sum()) == 12
    conv = "stem.conv.weight"
    per_channel = wm[conv].flatten(1)
    assert ((per_channel.all(1)) | (~per_channel.any(1))).all()  # each output channel fully kept or fully pruned


def test_mask_save_load_roundtrip(tmp_path):
    m, mask = model_and_mask()
    m1 = prune(mask, magnitude(weights(m, mask)), 0.3)
    m1.save(tmp_path / "mask.safetensors")
    back = Mask.load(tmp_path / "mask.safetensors")
    assert all(torch.equal(back[n], m1[n]) and back[n].dtype == torch.bool for n in m1)


def test_masks_at_several_sparsities_match_one_at_a_time():
    from edgeticket.pruning.selection import masks_at_sparsities

    m, mask = model_and_mask()
    scores = magnitude(weights(m, mask))
    many = masks_at_sparsities(scores, [0.0, 0.5, 0.9])
    for s, got in zip([0.0, 0.5, 0.9], many):
        one = mask_at_sparsity(scores, s)
        assert all(torch.equal(one[n], got[n]) for n in one)


def test_a_mask_keeps_its_layer_order_through_save_and_load(tmp_path):
    """safetensors lists tensors sorted by name; "the first layer" and the random-mask control's draws follow the
    mask's order, so a finished level loaded on resume must give the order the uninterrupted run had."""
    from edgeticket.pruning import Mask

    m = Mask({"stem.conv.weight": torch.ones(3, dtype=torch.bool), "a.weight": torch.zeros(2, dtype=torch.bool)})
    m.save(tmp_path / "m.safetensors")
    assert list(Mask.load(tmp_path / "m.safetensors")) == ["stem.conv.weight", "a.weight"]
