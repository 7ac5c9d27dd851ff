"""Networks a user brings (`--arch user_models:<factory>`), written as a spikingjelly user writes them: no edgeticket
base class, no naming convention (tests/test_imported_models.py)."""

from spikingjelly.activation_based import layer, neuron, surrogate
from torch import nn


def if_vgg(num_classes, in_channels, image_size):
    """A VGG-like net with soft-reset IF neurons and average pooling."""
    return nn.Sequential(
        layer.Conv2d(in_channels, 8, 3, padding=1, bias=False), layer.BatchNorm2d(8),
        neuron.IFNode(v_reset=None, surrogate_function=surrogate.ATan(), detach_reset=True),
        layer.AvgPool2d(2), layer.Flatten(), layer.Linear(8 * (image_size // 2) ** 2, num_classes))


class PlifNet(nn.Module):
    """A class as the factory, taking **kwargs."""

    def __init__(self, **kwargs):
        super().__init__()
        c, k, s = kwargs["in_channels"], kwargs["num_classes"], kwargs["image_size"]
        self.body = nn.Sequential(layer.Conv2d(c, 4, 3, padding=1), neuron.ParametricLIFNode(),
                                  layer.Flatten(), layer.Linear(4 * s * s, k))

    def forward(self, x):
        return self.body(x)


def returns_none(num_classes):
    return None


def raises(num_classes):
    raise ValueError("no such width")


def no_neuron(num_classes, in_channels, image_size):
    return nn.Sequential(layer.Flatten(), layer.Linear(in_channels * image_size ** 2, num_classes))


def single_step(num_classes, in_channels, image_size):
    return SingleStep(num_classes, in_channels, image_size)


class SingleStep(nn.Module):
    """Returns one logit tensor [B, K], not per timestep."""

    def __init__(self, num_classes, in_channels, image_size):
        super().__init__()
        self.fc = layer.Linear(in_channels * image_size ** 2, num_classes)
        self.lif = neuron.LIFNode()

    def forward(self, x_seq):
        return self.fc(self.lif(x_seq.flatten(2))).mean(0)
