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


def lif_vgg(num_classes, in_channels, image_size):
    """LIF with a negative hard reset, no input decay and its own threshold; max-pooling; a hidden Linear with
    BatchNorm1d, Dropout; AdaptiveAvgPool2d to a fixed size."""
    def lif():
        return neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=0.8, v_reset=-0.2,
                              surrogate_function=surrogate.Sigmoid(), detach_reset=True)

    return nn.Sequential(
        layer.Conv2d(in_channels, 8, 3, padding=1, bias=False), layer.BatchNorm2d(8), lif(),
        layer.MaxPool2d(2), layer.Conv2d(8, 8, 3, padding=1), lif(), layer.AdaptiveAvgPool2d(2), layer.Flatten(),
        layer.Linear(32, 16, bias=False), layer.BatchNorm1d(16), lif(), layer.Dropout(0.2),
        layer.Linear(16, num_classes))


class SEWBlock(nn.Module):
    """Spike-element-wise residual block (Fang et al. 2021): connect(SN(BN(conv(SN(BN(conv(s)))))), s)."""

    def __init__(self, c, cnf):
        super().__init__()
        self.cnf = cnf
        self.conv1 = layer.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = layer.BatchNorm2d(c)
        self.sn1 = neuron.IFNode(surrogate_function=surrogate.ATan(), detach_reset=True)
        self.conv2 = layer.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = layer.BatchNorm2d(c)
        self.sn2 = neuron.IFNode(surrogate_function=surrogate.ATan(), detach_reset=True)

    def forward(self, s):
        out = self.sn2(self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(s))))))
        if self.cnf == "ADD":
            return out + s
        if self.cnf == "AND":
            return out * s
        return s * (1.0 - out)  # IAND


class SpikingBlock(nn.Module):
    """Spiking ResNet block: SN(BN(conv(SN(BN(conv(s))))) + BN(conv1x1(s))), the sum before the neuron."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = layer.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False)
        self.bn1 = layer.BatchNorm2d(cout)
        self.sn1 = neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), detach_reset=True)
        self.conv2 = layer.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = layer.BatchNorm2d(cout)
        self.down = nn.Sequential(layer.Conv2d(cin, cout, 1, stride=2, bias=False), layer.BatchNorm2d(cout))
        self.sn2 = neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), detach_reset=True)

    def forward(self, s):
        return self.sn2(self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(s))))) + self.down(s))


def _resnet(block, num_classes, in_channels, image_size):
    return nn.Sequential(
        layer.Conv2d(in_channels, 8, 3, padding=1, bias=False), layer.BatchNorm2d(8),
        neuron.IFNode(surrogate_function=surrogate.ATan(), detach_reset=True), block,
        layer.AdaptiveAvgPool2d(1), layer.Flatten(), layer.Linear(block.conv2.out_channels, num_classes))


def sew_add(num_classes, in_channels, image_size):
    return _resnet(SEWBlock(8, "ADD"), num_classes, in_channels, image_size)


def sew_and(num_classes, in_channels, image_size):
    return _resnet(SEWBlock(8, "AND"), num_classes, in_channels, image_size)


def sew_iand(num_classes, in_channels, image_size):
    return _resnet(SEWBlock(8, "IAND"), num_classes, in_channels, image_size)


def spiking_resnet(num_classes, in_channels, image_size):
    return _resnet(SpikingBlock(8, 16), num_classes, in_channels, image_size)


def with_relu(num_classes, in_channels, image_size):
    """A layer outside compile's supported set (a ReLU between conv and neuron)."""
    return nn.Sequential(layer.Conv2d(in_channels, 4, 3, padding=1), nn.ReLU(), neuron.LIFNode(),
                         layer.Flatten(), layer.Linear(4 * image_size ** 2, num_classes))
