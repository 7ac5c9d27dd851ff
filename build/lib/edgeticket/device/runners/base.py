"""The Runner protocol every backend follows, and the one streaming loop.

run(x) -> (logits summed over T [B, K], counts): counts maps each LIF layer (graph name) to its spikes [T, B]
and each synaptic layer `events__<name>` to its nonzero inputs [T, B] (formats/graph.py). A backend implements
`run_folded` (all T steps in one call) and, for the streaming layout, `initial_states` + `step` (one timestep,
membrane states in and out); `stream` issues the steps the same way for every backend and for the PyTorch
reference in compile/deploy.py.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

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

    def __init__(self, layout: str, timesteps: int, lif_layers: Sequence[str], synaptic_layers: Sequence[str]):
        self.layout, self.timesteps = layout, int(timesteps)
        self.keys = count_keys(list(lif_layers), list(synaptic_layers))
        self.layers = self.keys[:len(lif_layers)]
        self.synapses = list(synaptic_layers)

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
        raise NotImplementedError

    def step(self, x, states, with_counts: bool):
        """One timestep: (logits [B, K], next states, [counts [B] in `keys` order] or [])."""
        raise NotImplementedError
