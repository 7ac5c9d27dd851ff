import pytest
import torch

from edgeticket.errors import EdgeTicketError
from edgeticket.hparams import ModelHparams
from edgeticket.models import REGISTRY, build, get


LARGE = ("vgg11", "vgg16", "resnet19", "resnet19-tdbn")  # checked on the CIFAR shape only, to keep the suite fast
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


def macs_per_timestep(model, shape) -> int:
    """Multiply-accumulates of the conv and linear layers for one image and one timestep: a forward hook counts
    out_channels x H_out x W_out x (in_channels / groups) x kh x kw per conv, in x out per linear row."""
    total = [0]

    def count(m, _inp, out):
        if isinstance(m, torch.nn.Conv2d):
            kh, kw = m.kernel_size
            total[0] += out.numel() * (m.in_channels // m.groups) * kh * kw
        else:
            total[0] += out.shape[:-1].numel() * m.in_features * m.out_features

    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    hooks = [m.register_forward_hook(count) for m in layers]
    model.timesteps = 1  # the static stem runs once per image anyway; every other layer once per timestep
    with torch.no_grad():
        model.eval()(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    return total[0]


def test_resnet19_is_the_authors_layout():
    """resnet19 as the paper's code builds it: 64-channel stem at 32x32, stages of 128/256/512 at 16x16, 8x8, 4x4;
    about 0.556 GMAC per timestep on 3x32x32 (conv + linear). resnet19-tdbn (128 stem, stride-1 first stage) is
    about 2.29 GMAC."""
    torch.manual_seed(0)
    r19 = REGISTRY["resnet19"](10, 3, 32)
    assert r19.stem.conv.out_channels == 64 and r19.stem.conv.stride == (1, 1)
    sizes = []
    for b in r19.layers:
        b.register_forward_hook(lambda m, i, o: sizes.append((o.shape[2], o.shape[-1])))
    macs = macs_per_timestep(r19, (3, 32, 32))
    assert sizes == [(128, 16)] * 3 + [(256, 8)] * 3 + [(512, 4)] * 2
    assert macs == pytest.approx(0.556e9, rel=0.01)
    assert macs == 555_551_232
    assert sum(p.numel() for p in r19.parameters()) == 12_630_858  # the authors' ResNet19 (10 classes) has as many
    assert r19.fc1.in_features == 512 and r19.fc1.out_features == 256
    # PyTorch's default conv init (kaiming_uniform, a=sqrt(5)): |w| <= 1/sqrt(fan_in); kaiming fan_out normal is wider
    w = r19.layers[0].conv1.conv.weight.detach()
    assert float(w.abs().max()) <= 1 / (w[0].numel() ** 0.5) + 1e-6

    tdbn = REGISTRY["resnet19-tdbn"](10, 3, 32)
    assert tdbn.stem.conv.out_channels == 128
    assert macs_per_timestep(tdbn, (3, 32, 32)) == pytest.approx(2.29e9, rel=0.01)
    assert sum(p.numel() for p in tdbn.parameters()) == 12_697_994


def test_unknown_arch_lists_valid_ones():
    with pytest.raises(EdgeTicketError, match="valid: tiny, vgg5"):
        get("vgg99")
