import pytest

from edgeticket.errors import EdgeTicketError
from edgeticket.hparams import SearchConfig

from conftest import tiny_cfg


def test_default_hash_is_pinned():
    # Changing a default or the hashing silently orphans every existing run folder: this pins it.
    assert SearchConfig().hashname() == "imp_vgg5_digits_44136fa355"


def test_hash_covers_only_non_default_and_skips_data_dir():
    a = tiny_cfg()
    b = tiny_cfg(data_dir="/somewhere/else")
    assert a.hashname() == b.hashname()
    assert "data.data_dir" not in a.non_default()
    assert tiny_cfg(seed=1).hashname() != a.hashname()
    assert a.non_default()["model.arch"] == "tiny"


def test_roundtrip_dict():
    a = tiny_cfg(early_time=True, controls="random-reinit")
    assert SearchConfig.from_dict(a.to_dict()) == a


def test_unknown_setting_is_named():
    with pytest.raises(EdgeTicketError, match="unknown setting 'archh'"):
        SearchConfig.from_flat({"archh": "x"})


@pytest.mark.parametrize("over,needle", [
    (dict(rewind_epoch=5, epochs=3), "--rewind-epoch"),
    (dict(prune_rate=1.5), "--prune-rate"),
    (dict(early_time=True, et_candidates="2,9"), "--et-candidates"),
    (dict(controls="random-reinit,bogus"), "unknown control 'bogus'"),
    (dict(et_candidates="a,b", early_time=True), "comma-separated integers"),
])
def test_validation_names_the_option(over, needle):
    with pytest.raises(EdgeTicketError, match=needle):
        tiny_cfg(**over).validate()


def test_eb_target_defaults_to_imp_sparsity():
    cfg = tiny_cfg(rounds=8, prune_rate=0.25)
    assert cfg.eb_target_sparsity == pytest.approx(1 - 0.75 ** 8)
    assert tiny_cfg(eb_sparsity=0.5).eb_target_sparsity == 0.5
