"""A user's own spikingjelly network: `--arch package.module:factory` (docs/models.md).

The factory is imported, called with the keyword arguments it accepts among num_classes, in_channels, image_size
and timesteps, and must return a torch.nn.Module built from spikingjelly activation_based layers and neurons. It
runs in multi-step mode on direct-encoded input: the image is repeated over T ([T, B, C, H, W]) and the module
returns logits per timestep ([T, B, classes]). `ImportedNet` wraps it so the search treats it like the zoo's
networks (timesteps attribute, a fresh simulation per call, conv/linear weights prunable).

The ticket records the arch string, which is how the model is rebuilt later (compile): the module must import
there too.
"""

from __future__ import annotations

import importlib
import inspect
import re

import torch
from torch import nn

from ..errors import EdgeTicketError
from .base import SpikingNet

ARGUMENTS = ("num_classes", "in_channels", "image_size", "timesteps")
SPEC = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")


def is_spec(arch: str) -> bool:
    return ":" in arch


def resolve(spec: str):
    """The factory an `package.module:factory` spec names; one line naming the fix when it cannot be found."""
    if not SPEC.fullmatch(spec):
        raise EdgeTicketError(f"--arch '{spec}' is not an import path: use package.module:factory (a function or "
                              "class that returns the network)")
    module_name, attr = spec.split(":")
    try:
        obj = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - whatever the user's module raises while importing is one line here
        raise EdgeTicketError(f"--arch {spec}: cannot import module '{module_name}' ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}): install it, or add its folder to "
                              "PYTHONPATH (the ticket is rebuilt from this import path)") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise EdgeTicketError(f"--arch {spec}: module '{module_name}' has no '{attr}'")
        obj = getattr(obj, part)
    if not callable(obj):
        raise EdgeTicketError(f"--arch {spec}: '{attr}' is not callable; name a function or class that returns the "
                              "network")
    return obj


def accepted_arguments(factory, values: dict) -> dict:
    """The values among ARGUMENTS the factory's signature accepts (all of them with **kwargs)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(values)
    return {k: v for k, v in values.items() if k in params}


def builder(spec: str):
    """A builder with the zoo's signature for an imported factory."""
    def build(num_classes: int, in_channels: int, image_size: int, timesteps: int = 5, tau: float = 4 / 3,
              v_threshold: float = 1.0) -> "ImportedNet":
        factory = resolve(spec)
        values = {"num_classes": num_classes, "in_channels": in_channels, "image_size": image_size,
                  "timesteps": timesteps}
        try:
            net = factory(**accepted_arguments(factory, values))
        except Exception as e:  # noqa: BLE001 - the user's factory failing is one line naming it
            raise EdgeTicketError(f"--arch {spec}: the factory raised {type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else ''}") from None
        if not isinstance(net, nn.Module):
            raise EdgeTicketError(f"--arch {spec}: the factory returned {type(net).__name__}, not a torch.nn.Module")
        return ImportedNet(net, timesteps, spec)

    return build


class ImportedNet(SpikingNet):
    """A user's multi-step spikingjelly module as a SpikingNet: forward(x [B, C, H, W]) -> [T, B, classes]."""

    def __init__(self, net: nn.Module, timesteps: int, spec: str):
        super().__init__(timesteps)
        from spikingjelly.activation_based import functional, neuron

        if not any(isinstance(m, neuron.BaseNode) for m in net.modules()):
            raise EdgeTicketError(f"--arch {spec}: the network has no spikingjelly neuron (activation_based "
                                  "neuron.*Node): edgeticket searches spiking networks")
        if not any(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules()):
            raise EdgeTicketError(f"--arch {spec}: the network has no Conv2d or Linear layer to prune")
        functional.set_step_mode(net, "m")
        self.net, self.spec = net, spec

    def forward_seq(self, x: torch.Tensor) -> torch.Tensor:
        x_seq = x.unsqueeze(0).repeat(self.timesteps, *([1] * x.dim()))
        out = self.net(x_seq)
        if not isinstance(out, torch.Tensor) or out.dim() != 3 or out.shape[:2] != x_seq.shape[:2]:
            got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise EdgeTicketError(f"--arch {self.spec}: the network returned {got} for input {list(x_seq.shape)}; it "
                                  "must return logits per timestep [T, B, classes] (multi-step, step_mode 'm')")
        return out
