"""The Runner protocol every backend follows, and the one streaming loop.

run(x) -> (logits summed over T [B, K], counts): counts maps each LIF layer (graph name) to its spikes [T, B]
and each synaptic layer `events__<name>` to its nonzero inputs [T, B] (formats/graph.py). A backend implements
`run_folded` (all T steps in one call) and, for the streaming layout, `initial_states` + `step` (one timestep,
membrane states in and out); `stream` issues the steps the same way for every backend and for the PyTorch
reference in compile/deploy.py. The states start at each LIF layer's resting value `v_init` (the manifest's
`formats.bundle.state_init`: v_reset, 0 for a soft reset; zeros where the caller gives none).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ...errors import EdgeTicketError
from ...formats.graph import count_keys


def stream(step: Callable, states, timesteps: int, stack: Callable = np.stack):
    """Run `step(states) -> (logits, states, counts)` `timesteps` times, each step's states feeding the next.
    Returns (logits summed over the steps, [each count stacked over the steps]) (counts may be empty)."""
    total, per_t = None, None
    for _ in range(int(timesteps)):
        logits, states, counts = step(states)
        total = logits if total is None else total + logits
        if per_t is None:
            per_t = [[] for _ in counts]
        for acc, c in zip(per_t, counts):
            acc.append(c)
    return total, [stack(c) for c in per_t or []]


class Runner:
    """A bundle loaded for one backend. Subclasses set `name` and implement run_folded / initial_states / step."""

    name = ""

    def __init__(self, layout: str, timesteps: int, lif_layers: Sequence[str], synaptic_layers: Sequence[str],
                 v_init: Sequence[float] | None = None):
        """v_init: each LIF layer's first membrane value (formats.bundle.state_init); None: all 0."""
        self.layout, self.timesteps = layout, int(timesteps)
        self.keys = count_keys(list(lif_layers), list(synaptic_layers))
        self.layers = self.keys[:len(lif_layers)]
        self.synapses = list(synaptic_layers)
        self.v_init = [0.0] * len(self.layers) if v_init is None else [float(v) for v in v_init]
        if len(self.v_init) != len(self.layers):
            raise EdgeTicketError(f"{self.name or 'runner'}: {len(self.v_init)} initial membrane values for "
                                  f"{len(self.layers)} LIF layers: the manifest's lif.neurons and lif.layers "
                                  "disagree; re-compile the ticket")

    def run(self, x: np.ndarray, with_counts: bool = True):
        x = np.ascontiguousarray(x, dtype=np.float32)
        batch, xin = len(x), self.prepare(x)
        if self.layout == "time-folded":
            logits, counts = self.run_folded(xin, with_counts)
        else:
            logits, counts = stream(lambda s: self.step(xin, s, with_counts), self.initial_states(batch),
                                    self.timesteps)
        return logits, (dict(zip(self.keys, counts)) if with_counts else {})

    def prepare(self, x: np.ndarray):
        """The input as the backend takes it (converted once per run, not once per step)."""
        return x

    def run_folded(self, x, with_counts: bool):
        """(logits [B, K], [counts [T, B] in `keys` order] or [])."""
        raise NotImplementedError

    def initial_states(self, batch: int):
        """The first states of a streaming run (and of the event kernels' folded call), at `v_init`."""
        raise NotImplementedError

    def state_arrays(self, batch: int, shapes: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """float32 [batch, *shape] per LIF layer, filled with its v_init (np.zeros where that is 0)."""
        return [np.zeros((batch, *s), np.float32) if v == 0 else np.full((batch, *s), v, np.float32)
                for s, v in zip(shapes, self.v_init)]

    def step(self, x, states, with_counts: bool):
        """One timestep: (logits [B, K], next states, [counts [B] in `keys` order] or [])."""
        raise NotImplementedError
