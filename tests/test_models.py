import pytest
import torch

from edgeticket.errors import EdgeTicketError
from edgeticket.hparams import ModelHparams
from edgeticket.models import REGISTRY, build, get


LARGE = ("vgg11", "vgg16", "resnet19")  # checked on the CIFAR shape only, to keep the suite fast
CASES = [(a, sh) for a in REGISTRY for sh in [(1, 8), (1, 28), (3, 32)] if a not in LARGE or sh == (3, 32)]


@pytest.mark.parametrize("arch,shape", CASES)
def test_every_arch_follows_the_dataset_shape(arch, shape):
    c, s = shape
    m = build(ModelHparams(arch=arch, timesteps=2), num_classes=7, in_channels=c, image_size=s)
    m.eval()
    with torch.no_grad():
        y = m(torch.randn(2, c, s, s))
    assert y.shape == (2, 2, 7)
    prunable = m.prunable()
    sd = m.state_dict()
    assert all(n in sd and sd[n].dim() in (2, 4) for n in prunable)
    assert not any("bn" in n for n in prunable)


def test_paper_architectures_layer_counts():
    v16 = REGISTRY["vgg16"](10, 3, 32)
    convs = [n for n in v16.prunable() if n.endswith("conv.weight")]
    assert len(convs) == 13 and v16.classifier.in_features == 512
    r19 = REGISTRY["resnet19"](10, 3, 32)
    names = r19.prunable()
    conv3 = [n for n in names if r19.state_dict()[n].dim() == 4 and r19.state_dict()[n].shape[-1] == 3]
    fcs = [n for n in names if r19.state_dict()[n].dim() == 2]
    assert len(conv3) + len(fcs) == 19  # 17 3x3 convs + fc256 + fc classes (1x1 shortcuts not counted)
    assert r19.fc1.out_features == 256


def test_unknown_arch_lists_valid_ones():
    with pytest.raises(EdgeTicketError, match="valid: tiny, vgg5"):
        get("vgg99")
