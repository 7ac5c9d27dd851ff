"""The neuron table (edgeticket/snn/neurons.py): its plain-ops step equals spikingjelly's own multi-step neuron,
spikes and membrane bit for bit, for every supported configuration (issue 14, item 2); other neurons are one line."""

import itertools

import pytest
import torch
from spikingjelly.activation_based import functional, neuron, surrogate

from edgeticket.errors import EdgeTicketError
from edgeticket.snn.neurons import spec_of, step

T, SHAPE = 8, (64, 32)

LIF = [dict(tau=tau, decay_input=di, v_threshold=vth, v_reset=vr)
       for tau, di, vth, vr in itertools.product([4 / 3, 2.0, 3.7], [True, False], [1.0, 0.5], [0.0, -0.3, 0.2, None])]
IF = [dict(v_threshold=vth, v_reset=vr) for vth, vr in itertools.product([1.0, 0.7], [0.0, -0.2, None])]
PLIF = [dict(init_tau=tau, decay_input=di, v_threshold=vth, v_reset=vr)
        for tau, di, vth, vr in itertools.product([2.0, 3.1], [True, False], [1.0, 0.6], [0.0, -0.3, None])]


def _module(kind, kwargs):
    cls = {"lif": neuron.LIFNode, "if": neuron.IFNode, "plif": neuron.ParametricLIFNode}[kind]
    m = cls(**kwargs, surrogate_function=surrogate.ATan(), detach_reset=True, step_mode="m")
    if kind == "plif":
        with torch.no_grad():
            m.w.add_(0.137)  # a learned value, not the initial one
    return m


@pytest.mark.parametrize("kind, kwargs", [("lif", k) for k in LIF] + [("if", k) for k in IF] +
                         [("plif", k) for k in PLIF])
def test_the_plain_step_is_spikingjellys_neuron_bit_for_bit(kind, kwargs):
    torch.manual_seed(len(str(kwargs)))
    x = torch.randn(T, *SHAPE) * 1.5
    m = _module(kind, kwargs)
    functional.reset_net(m)
    with torch.no_grad():
        spikes_ref = m(x)
    spec = spec_of(m, "layer")
    assert spec.kind == kind
    v = torch.full_like(x[0], spec.v_init)
    spikes = []
    for t in range(T):
        s, v = step(spec, x[t], v)
        spikes.append(s)
    assert torch.equal(torch.stack(spikes), spikes_ref)
    assert torch.equal(v, m.v)  # the membrane too, bit for bit
    assert 0 < float(spikes_ref.mean()) < 1  # the configuration fires and rests: the test has work to do


def test_a_neuron_outside_the_table_is_one_line():
    with pytest.raises(EdgeTicketError, match=r"features\.3: spikingjelly\.activation_based\.neuron\.\w+\.QIFNode "
                                               r"is not supported; edgeticket deploys spikingjelly's LIFNode"):
        spec_of(neuron.QIFNode(), "features.3")

    class MyLIF(neuron.LIFNode):  # a subclass may change the dynamics: refused too
        pass

    with pytest.raises(EdgeTicketError, match="MyLIF is not supported"):
        spec_of(MyLIF(), "x")


def test_a_non_spiking_surrogate_is_one_line():
    m = neuron.LIFNode(surrogate_function=surrogate.ATan(spiking=False))
    with pytest.raises(EdgeTicketError, match="features.1: its surrogate function is in non-spiking mode"):
        spec_of(m, "features.1")


@pytest.mark.parametrize("layout", ["time-folded", "streaming"])
def test_every_configuration_round_trips_through_the_bundle_graph(layout):
    """Each configuration in a network (flatten -> linear -> neuron -> linear), through compile's deploy net and the
    ONNX export, run in onnxruntime from the neuron's resting state: spike counts per timestep and sample equal
    spikingjelly's own module, logits within 1e-5 (issue 14, item 6)."""
    import numpy as np
    from spikingjelly.activation_based import layer

    from edgeticket.compile.deploy import to_deploy, v_init
    from edgeticket.compile.onnx_export import export
    from edgeticket.compile.validate import run_ticket
    from edgeticket.device.runners.onnx_runner import OnnxRunner, make_session
    from edgeticket.formats.graph import graph_name
    from edgeticket.models.imported import ImportedNet

    shape, steps = (1, 4, 8), 6
    for kind, kwargs in [("lif", k) for k in LIF] + [("if", k) for k in IF] + [("plif", k) for k in PLIF]:
        torch.manual_seed(len(str(kwargs)))
        net = torch.nn.Sequential(layer.Flatten(), layer.Linear(32, 24), _module(kind, kwargs), layer.Linear(24, 10))
        model = ImportedNet(net, steps, "tests:neuron").eval()
        x = torch.randn(16, *shape) * 1.5
        ref_logits, ref_counts = run_ticket(model, x, steps)
        deploy = to_deploy(model, shape)
        proto, _, _ = export(deploy, layout, steps, shape, 17, model.prunable(), "packed", "fp32")
        runner = OnnxRunner(make_session(proto.SerializeToString()), layout, steps, v_init=v_init(deploy))
        logits, counts = runner.run(x.numpy())
        assert np.array_equal(counts[graph_name("net.2")], ref_counts["net.2"]), (kind, kwargs)
        assert 0 < ref_counts["net.2"].mean() < 24, (kind, kwargs)  # it fires and rests
        assert np.abs(logits - ref_logits).max() <= 1e-5 * max(1.0, np.abs(ref_logits).max()), (kind, kwargs)
