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
    """One LIF update, the arithmetic of spikingjelly's CPU op written as plain ops.

    h = v + (x - v) / tau ; s = (h >= v_th) ; v' = h * (1 - s)   (hard reset to 0)
    Returns (spike, v').
    """
    h = v + (x - v) / tau
    s = (h >= v_threshold).to(x.dtype)
    return s, h * (1.0 - s)


def reset_states(model: torch.nn.Module) -> None:
    functional.reset_net(model)
