import torch

from edgeticket.models import REGISTRY
from edgeticket.snn import lif_step, make_lif, reset_states


def test_lif_module_equals_pure_step_function():
    """The exporters use lif_step; it must reproduce spikingjelly's multi-step LIF spike for spike."""
    torch.manual_seed(0)
    T = 8
    x = torch.randn(T, 16, 32) * 1.5 + 0.5
    lif = make_lif(4.0 / 3.0, 1.0)
    reset_states(lif)
    spikes_mod = lif(x)
    v = torch.zeros_like(x[0])
    spikes_fn = []
    for t in range(T):
        s, v = lif_step(x[t], v, 4.0 / 3.0, 1.0)
        spikes_fn.append(s)
    spikes_fn = torch.stack(spikes_fn)
    assert spikes_mod.sum() > 0
    assert torch.equal(spikes_mod, spikes_fn)


def test_lif_settings_are_the_papers():
    lif = make_lif()
    assert lif.tau == 4.0 / 3.0 and lif.v_threshold == 1.0 and lif.v_reset == 0.0
    assert lif.detach_reset is True and lif.step_mode == "m"
    assert type(lif.surrogate_function).__name__ == "ATan"


def test_surrogate_gradient_flows():
    lif = make_lif()
    x = (torch.randn(4, 8) + 0.8).requires_grad_()
    lif(x.unsqueeze(1).expand(4, 3, 8)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_direct_encoding_runs_stem_once_and_forward_is_stateless():
    m = REGISTRY["tiny"](10, 1, 8, timesteps=5)
    calls = []
    m.stem.conv.register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(3, 1, 8, 8)
    m.eval()
    y1 = m(x)
    assert len(calls) == 1  # the static image is encoded once, not once per timestep
    y2 = m(x)
    assert torch.equal(y1, y2)  # membrane state is reset at every call
    assert y1.shape == (5, 3, 10)
