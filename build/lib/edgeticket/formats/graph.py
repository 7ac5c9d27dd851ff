"""The bundle graph's input/output naming rule, shared by the exporter (compile) and every runner (device).

A layer name is made a graph name by replacing dots with underscores. Outputs: `logits` (summed over T in the
time-folded layout, of one step in the streaming layout), `spikes__<lif>` [T, B] spikes of each LIF layer per
timestep and sample, `events__<synaptic layer>` [T, B] nonzero inputs of each conv/linear fed by spikes.
Streaming graphs also take `v__<lif>` (each membrane state) and return `v_out__<lif>`.
"""

from __future__ import annotations

INPUT = "input"
LOGITS = "logits"
SPIKES = "spikes__"
EVENTS = "events__"
STATE_IN = "v__"
STATE_OUT = "v_out__"


def graph_name(layer: str) -> str:
    return layer.replace(".", "_")


def is_count(output: str) -> bool:
    return output.startswith(SPIKES) or output.startswith(EVENTS)


def count_keys(lif_layers: list[str], synaptic_layers: list[str]) -> list[str]:
    """The keys of a runner's counts dict, in graph output order: LIF layers by name, then events__<layer>."""
    return [graph_name(n) for n in lif_layers] + [EVENTS + graph_name(n) for n in synaptic_layers]


def io_names(lif_layers: list[str], synaptic_layers: list[str], layout: str) -> tuple[list[str], list[str]]:
    names = [graph_name(n) for n in lif_layers]
    counts = [SPIKES + n for n in names] + [EVENTS + graph_name(n) for n in synaptic_layers]
    if layout == "time-folded":
        return [INPUT], [LOGITS, *counts]
    return [INPUT, *[STATE_IN + n for n in names]], [LOGITS, *[STATE_OUT + n for n in names], *counts]
