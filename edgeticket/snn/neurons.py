"""The one table of spiking neurons edgeticket deploys: each supported spikingjelly neuron as a NeuronSpec, and its
update as plain tensor ops (`step`), the arithmetic every exporter (ONNX, TVM, the event kernels) and the deploy
network use. tests/test_neurons.py proves `step` equals spikingjelly's own multi-step neuron, spikes and membrane
bit for bit, for every supported configuration.

    LIF  (LIFNode):            H = V + (X - (V - V_reset)) / tau        decay_input=True
                               H = V - (V - V_reset) / tau + X          decay_input=False
    PLIF (ParametricLIFNode):  the same with "* k", k = sigmoid(w) (its learned 1/tau, folded to a constant)
    IF   (IFNode):             H = V + X
    fire: S = (H >= V_th);  reset: V = H * (1 - S) + V_reset * S (hard), V = H - V_th * S (soft: v_reset None)

V_reset None (soft reset) charges with V_reset = 0. The state starts at V_reset (0 for a soft reset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import EdgeTicketError

KINDS = ("lif", "plif", "if")


@dataclass(frozen=True)
class NeuronSpec:
    kind: str  # one of KINDS
    v_threshold: float
    v_reset: Optional[float]  # None: soft reset (the threshold is subtracted)
    tau: Optional[float] = None  # lif: the membrane time constant (the charge divides by it)
    k: Optional[float] = None  # plif: sigmoid(w) as float32 (the charge multiplies by it)
    decay_input: bool = True

    @property
    def v_init(self) -> float:
        return 0.0 if self.v_reset is None else float(self.v_reset)


def spec_of(module: torch.nn.Module, name: str = "") -> NeuronSpec:
    """The NeuronSpec of a spikingjelly neuron module; any other neuron type is one line naming it (subclasses may
    change the dynamics, so the type must be exactly one of the table's)."""
    from spikingjelly.activation_based import neuron

    t = type(module)
    where = name or "a neuron"
    if getattr(getattr(module, "surrogate_function", None), "spiking", True) is False:
        raise EdgeTicketError(f"{where}: its surrogate function is in non-spiking mode (spiking=False: the forward "
                              "pass is the surrogate, not a spike); train with spiking surrogates to deploy")
    if getattr(module, "_neuron_precision", None) is not None:
        raise EdgeTicketError(f"{where}: an explicit neuron precision is set (set_neuron_precision); edgeticket "
                              "deploys float32 neurons: clear it before saving the ticket")
    if t is neuron.LIFNode:
        return NeuronSpec("lif", float(module.v_threshold), _reset(module), tau=float(module.tau),
                          decay_input=bool(module.decay_input))
    if t is neuron.ParametricLIFNode:
        k = float(module.w.detach().sigmoid().to(torch.float32))
        return NeuronSpec("plif", float(module.v_threshold), _reset(module), k=k, decay_input=bool(module.decay_input))
    if t is neuron.IFNode:
        return NeuronSpec("if", float(module.v_threshold), _reset(module))
    raise EdgeTicketError(f"{name or 'a neuron'}: {t.__module__}.{t.__name__} is not supported; edgeticket deploys "
                          "spikingjelly's LIFNode, ParametricLIFNode and IFNode")


def _reset(module) -> Optional[float]:
    return None if module.v_reset is None else float(module.v_reset)


def charge(spec: NeuronSpec, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    if spec.kind == "if":
        return v + x
    leak = v - spec.v_reset if spec.v_reset else v  # V - V_reset (V itself for a reset to 0 or a soft reset)
    if spec.kind == "lif":
        return v + (x - leak) / spec.tau if spec.decay_input else v - leak / spec.tau + x
    return v + (x - leak) * spec.k if spec.decay_input else v - leak * spec.k + x


def step(spec: NeuronSpec, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One update: (spikes, the membrane after the reset)."""
    h = charge(spec, x, v)
    s = (h >= spec.v_threshold).to(x.dtype)
    if spec.v_reset is None:
        return s, h - spec.v_threshold * s
    v_next = h * (1.0 - s)
    return s, (v_next + spec.v_reset * s) if spec.v_reset else v_next
