"""compile's supported set (issue 14, item 2): every network of the zoo and the users' test networks pass; anything
else is one line naming the module's path and type, before any work."""

import pytest
from spikingjelly.activation_based import layer, neuron
from torch import nn

from edgeticket.compile.supported import check_supported
from edgeticket.errors import EdgeTicketError
from edgeticket.models import REGISTRY

import user_models


@pytest.mark.parametrize("arch", sorted(REGISTRY))
def test_every_zoo_network_is_in_the_supported_set(arch):
    check_supported(REGISTRY[arch](10, 3, 32))


@pytest.mark.parametrize("factory", [user_models.if_vgg, lambda **kw: user_models.PlifNet(**kw)])
def test_the_users_test_networks_are_in_the_supported_set(factory):
    check_supported(factory(num_classes=10, in_channels=1, image_size=8))


@pytest.mark.parametrize("net, needle", [
    (nn.Sequential(layer.Conv2d(1, 4, 3), neuron.LIFNode(), nn.LSTM(4, 4)),
     "2: torch.nn.modules.rnn.LSTM cannot be exported (not a layer compile exports)"),
    (nn.Sequential(nn.Sequential(layer.Conv2d(1, 4, 3, dilation=2)), neuron.IFNode()),
     "0.0: spikingjelly.activation_based.layer"),
    (nn.Sequential(layer.Conv2d(1, 4, 3, padding=1, padding_mode="reflect"), neuron.IFNode()),
     "padding_mode 'reflect' (only zeros)"),
    (nn.Sequential(layer.Conv2d(1, 4, 3), neuron.IFNode(), nn.AvgPool2d(2, divisor_override=3)),
     "2: torch.nn.modules.pooling.AvgPool2d cannot be exported (divisor_override=3)"),
    (nn.Sequential(layer.Conv2d(1, 4, 3), neuron.QIFNode()), "1: spikingjelly.activation_based.neuron"),
])
def test_anything_else_is_one_line_naming_the_module(net, needle):
    with pytest.raises(EdgeTicketError) as e:
        check_supported(net)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert "compile supports" in str(e.value) or "is not supported" in str(e.value)


def test_a_neurons_own_parts_are_not_layers():
    assert list(neuron.LIFNode().children())  # its surrogate function is a module of its own
    check_supported(nn.Sequential(layer.Linear(4, 2), neuron.LIFNode()))
