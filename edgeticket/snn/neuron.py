"""LIF neurons of the paper: tau 4/3, v_th 1, hard reset to 0, detach_reset, ATan surrogate.

Training uses spikingjelly's LIFNode in multi-step mode ([T, N, ...] tensors); on CPU it dispatches to a
fused op with a hand-written backward, on CUDA to its cupy/triton kernels. `lif_step` is the same
arithmetic as plain tensor ops, for exporters (ONNX/TVM graphs) and tests; tests/test_snn.py proves
module == function spike for spike.
"""

from __future__ import annotations

import logging

import torch

# torch warns "Triton not available" when spikingjelly probes for its GPU kernels on a CPU-only machine
logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

from spikingjelly.activation_based import functional, neuron, surrogate  # noqa: E402


def make_lif(tau: float = 4.0 / 3.0, v_threshold: float = 1.0) -> neuron.LIFNode:
    return neuron.LIFNode(
        tau=float(tau),
        decay_input=True,
        v_threshold=float(v_threshold),
        v_reset=0.0,
        surrogate_function=surrogate.ATan(),
        detach_reset=True,
        step_mode="m",
    )


def lif_step(x: torch.Tensor, v: torch.Tensor, tau: float, v_threshold: float):
    """One update of the zoo's LIF (hard reset to 0, decay_input): `neurons.step` of its NeuronSpec.

    h = v + (x - v) / tau ; s = (h >= v_th) ; v' = h * (1 - s)
    Returns (spike, v').
    """
    from .neurons import NeuronSpec, step

    return step(NeuronSpec("lif", float(v_threshold), 0.0, tau=float(tau)), x, v)


def reset_states(model: torch.nn.Module) -> None:
    functional.reset_net(model)
