"""SNN statistics from spike counts: spike rate per layer per timestep, and SynOps (synaptic operations:
presynaptic spikes x fan-out over the nonzero weights) next to the dense MAC count.

counts[layer] is [T, B] spikes of each LIF layer; counts['events__<conv>'] is [T, B] nonzero inputs of each
conv/linear fed by spikes (exact after max-pooling). SynOps of a layer = events x mean fan-out of its nonzero
weights (nnz x output positions / input neurons: exact for interior positions, borders ignored). A layer reading
the image (real-valued, direct encoding) counts its nonzero-weight MACs each time it runs (once per inference, or
every timestep where the network repeats the image)."""

from __future__ import annotations

import numpy as np

from ...formats.bundle import runs_per_call


def spike_rates(counts: dict, manifest: dict) -> dict:
    out = {}
    for layer, shape in zip(manifest["lif"]["layers"], manifest["lif"]["state_shapes"]):
        c = counts[layer]  # [T, B]
        neurons = int(np.prod(shape))
        out[layer] = {"neurons": neurons, "rate_per_timestep": (c.sum(1) / (neurons * c.shape[1])).round(6).tolist(),
                      "rate": float(c.sum() / (neurons * c.size))}
    return out


def synops(counts: dict, manifest: dict) -> dict:
    """Per sample: SynOps per layer and in total, next to dense MACs and nonzero-weight MACs."""
    rows, total_syn, total_dense, total_nz = [], 0.0, 0, 0.0
    for L in manifest["layers"]:
        key = "events__" + L["name"].replace(".", "_")
        dense = L["macs_per_sample_dense"]
        nz_macs = L["nnz"] * L["out_positions"] * runs_per_call(L, manifest["timesteps"])
        if L["input"] == "image" or key not in counts:
            syn = float(nz_macs)  # real-valued input: MACs of the nonzero weights, each time it runs
            events = None
        else:
            c = counts[key]  # [T, B]
            events = float(c.sum() / c.shape[1])
            syn = events * L["mean_fanout_nonzero"]
        rows.append({"layer": L["name"], "input": L["input"], "events_per_sample": events, "synops": syn,
                     "dense_macs": dense, "nonzero_weight_macs": nz_macs})
        total_syn += syn
        total_dense += dense
        total_nz += nz_macs
    return {"layers": rows, "synops_per_sample": total_syn, "dense_macs_per_sample": total_dense,
            "nonzero_weight_macs_per_sample": total_nz,
            "synops_over_dense_macs": total_syn / total_dense if total_dense else None}
