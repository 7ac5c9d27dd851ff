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
    (nn.Sequential(layer.Conv2d(1, 4, 3), layer.BatchNorm2d(4, affine=False), neuron.IFNode()),
     "1: spikingjelly.activation_based.layer.bn.BatchNorm2d cannot be exported (affine=False"),
    (nn.Sequential(layer.Conv2d(1, 4, 3), layer.BatchNorm2d(4, track_running_stats=False), neuron.IFNode()),
     "(track_running_stats=False"),
])
def test_anything_else_is_one_line_naming_the_module(net, needle):
    with pytest.raises(EdgeTicketError) as e:
        check_supported(net)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert "compile supports" in str(e.value) or "is not supported" in str(e.value)


def test_a_neurons_own_parts_are_not_layers():
    assert list(neuron.LIFNode().children())  # its surrogate function is a module of its own
    check_supported(nn.Sequential(layer.Linear(4, 2), neuron.LIFNode()))


class _Unused(nn.Module):
    def __init__(self, twice=False):
        super().__init__()
        self.fc, self.sn, self.aux, self.twice = layer.Linear(64, 10), neuron.LIFNode(), layer.Linear(10, 10), twice

    def forward(self, x_seq):
        y = self.sn(self.fc(x_seq.flatten(2)))
        return self.aux(self.aux(y)) if self.twice else y


@pytest.mark.parametrize("twice, needle", [(False, "net.aux: spikingjelly.activation_based.layer.stateless_wrapper."
                                                   "Linear never runs in forward: remove it"),
                                           (True, "net.aux: spikingjelly.activation_based.layer.stateless_wrapper."
                                                  "Linear runs 2 times in forward: compile needs one module per use")])
def test_a_layer_never_run_or_run_twice_is_one_line(twice, needle):
    from edgeticket.compile.deploy import to_deploy
    from edgeticket.models.imported import ImportedNet

    with pytest.raises(EdgeTicketError) as e:
        to_deploy(ImportedNet(_Unused(twice), 3, "tests:unused"), (1, 8, 8))
    assert needle in str(e.value)


def test_nir_export_refuses_max_pooling_of_real_values_and_arithmetic_it_cannot_sum():
    from edgeticket.compile.nir_export import to_nir
    from edgeticket.models.imported import ImportedNet

    pool_first = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1), layer.MaxPool2d(2), neuron.LIFNode(),
                               layer.Flatten(), layer.Linear(64, 10))
    with pytest.raises(EdgeTicketError, match=r"net\.1: MaxPool2d on real values \(not spikes\) has no NIR form"):
        to_nir(ImportedNet(pool_first, 3, "tests:pool"), (1, 8, 8))

    class Shift(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.sn = layer.Linear(64, 10), neuron.LIFNode()

        def forward(self, x_seq):
            return self.sn(self.fc(x_seq.flatten(2)) + 0.5)

    with pytest.raises(EdgeTicketError, match="the tensor operation add after net.fc has no NIR form"):
        to_nir(ImportedNet(Shift(), 3, "tests:shift"), (1, 8, 8))


def test_a_batchnorm_that_does_not_follow_a_conv_or_linear_is_one_line():
    from edgeticket.compile.deploy import to_deploy
    from edgeticket.models.imported import ImportedNet

    net = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1), layer.MaxPool2d(2), layer.BatchNorm2d(4), neuron.LIFNode(),
                        layer.Flatten(), layer.Linear(64, 10))
    with pytest.raises(EdgeTicketError) as e:
        to_deploy(ImportedNet(net, 3, "tests:bn-after-pool"), (1, 8, 8))
    assert "net.2: spikingjelly.activation_based.layer.bn.BatchNorm2d does not directly follow a Conv2d" in str(e.value)
    assert "\n" not in str(e.value)
