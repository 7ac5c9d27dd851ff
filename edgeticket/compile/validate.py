"""Validation of a bundle against the model the user trained, in three stages, each per layer, per timestep, per
sample (spike counts) and on the logits:

A. the ticket's own model (its spikingjelly modules, in eval) against edgeticket's deploy net before BN folding
   (PlainNeurons from the neuron table, the same layers): spike counts equal, logits within 1e-4 relative (in
   practice bit for bit: the same ops on the same weights); a difference means the deploy net
   computes another network (e.g. a reset or decay it does not model) and refuses the bundle.
B. that deploy net against the BN-folded one: folding changes rounding, so a neuron whose membrane lies within
   FLIP_MARGIN of its threshold may flip. At the first place they part (earliest timestep, then execution order)
   every flipped neuron must be such a rounding flip; after it the nets legitimately differ (the flip propagates),
   which is reported, not refused.
C. the folded deploy net, with the weights exactly as the bundle holds them, against the ONNX graph in
   onnxruntime: equal spikes, logits within 1e-4 relative to the logits' magnitude.
A mismatch names the first layer (its path in the user's model and its type) and timestep where they part.
Accuracies and agreements are fractions in [0, 1] (bundle format_version 3 on)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..device.runners.onnx_runner import OnnxRunner
from ..formats.graph import graph_name
from ..snn.neurons import charge, step
from .deploy import lif_layers, run_torch

LOGIT_RTOL = 1e-4
FLIP_MARGIN = 1e-4  # x max(1, |v_threshold|): how near the threshold a membrane may be for a rounding flip


def first_mismatch(ref_counts: dict, got_counts: dict, key=lambda n: n) -> dict | None:
    """The earliest (timestep, then layer in ref_counts' order) place where the [T, B] counts differ."""
    best = None
    for i, (layer, ref) in enumerate(ref_counts.items()):
        got = got_counts[key(layer)]
        diff = np.argwhere(np.asarray(ref) != np.asarray(got))
        if len(diff):
            t, b = diff[0]
            if best is None or (t, i) < (best["timestep"], best["_order"]):
                best = {"layer": layer, "timestep": int(t), "sample": int(b), "expected": float(ref[t, b]),
                        "got": float(got[t, b]), "_order": i}
    if best is not None:
        best.pop("_order")
    return best


def compare(ref_logits: np.ndarray, ref_counts: dict, got_logits: np.ndarray, got_counts: dict,
            key=graph_name) -> dict:
    mismatch = first_mismatch(ref_counts, got_counts, key)  # spikes of each LIF layer (events__ keys derive from them)
    scale = max(1.0, float(np.abs(ref_logits).max()))
    max_diff = float(np.abs(ref_logits - got_logits).max())
    return {"spikes_equal": mismatch is None, "first_mismatch": mismatch,
            "total_spikes": int(sum(int(np.asarray(v).sum()) for v in ref_counts.values())),
            "logits_max_abs_diff": max_diff, "logits_scale": scale,
            "logits_ok": max_diff <= LOGIT_RTOL * scale}


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float((logits.argmax(1) == y).mean())


@torch.no_grad()
def run_ticket(model, x: torch.Tensor, timesteps: int) -> tuple[np.ndarray, dict]:
    """The trained model as the user has it: (logits summed over T, {neuron path: spike counts [T, B]})."""
    from spikingjelly.activation_based import neuron

    counts, handles = {}, []
    for name, m in model.named_modules():
        if isinstance(m, neuron.BaseNode):
            handles.append(m.register_forward_hook(
                lambda mod, args, out, name=name: counts.__setitem__(name, out.flatten(2).sum(2).numpy())))
    try:
        model.eval()
        model.timesteps = timesteps
        logits = model(x).sum(0).numpy()
    finally:
        for h in handles:
            h.remove()
    return logits, counts


def _torch_counts(net, x, timesteps, layout: str = "time-folded") -> tuple[np.ndarray, dict]:
    logits, counts = run_torch(net, x, timesteps, layout)
    return logits.numpy(), {k: v.numpy() for k, v in counts.items()}


@torch.no_grad()
def _membrane(net, layer: str, x: torch.Tensor, timesteps: int, t: int) -> torch.Tensor:
    """The charged membrane h of `layer` at timestep t (before firing), for one input."""
    neuron = next(l for l in lif_layers(net) if l.name == layer)
    seen = {}

    def hook(mod, args):
        x_seq, v = args[0], torch.full_like(args[0][0], mod.spec.v_init)
        for k in range(t + 1):
            h = charge(mod.spec, x_seq[k], v)
            _, v = step(mod.spec, x_seq[k], v)
        seen["h"] = h

    handle = neuron.register_forward_pre_hook(hook)
    try:
        run_torch(net, x, timesteps, "time-folded")
    finally:
        handle.remove()
    return seen["h"]


def folding_check(unfolded, folded, x: torch.Tensor, timesteps: int) -> dict:
    """Stage B: where the folded net first parts from the unfolded one, are all flips rounding flips?"""
    ul, uc = _torch_counts(unfolded, x, timesteps)
    fl, fc = _torch_counts(folded, x, timesteps)
    mm = first_mismatch(uc, fc)
    out = {"spikes_equal": mm is None, "first_divergence": mm,
           "prediction_agreement": float((ul.argmax(1) == fl.argmax(1)).mean())}
    if mm is None:
        return out | {"rounding_flips_only": True}
    xb = x[mm["sample"]:mm["sample"] + 1]
    hu = _membrane(unfolded, mm["layer"], xb, timesteps, mm["timestep"])
    hf = _membrane(folded, mm["layer"], xb, timesteps, mm["timestep"])
    th = next(l for l in lif_layers(folded) if l.name == mm["layer"]).spec.v_threshold
    flips = (hu >= th) != (hf >= th)
    distance = float((hu[flips] - th).abs().max()) if bool(flips.any()) else 0.0
    return out | {"flips_at_first_divergence": int(flips.sum()), "max_distance_to_threshold": distance,
                  "rounding_flips_only": distance <= FLIP_MARGIN * max(1.0, abs(th))}


@dataclass
class Nets:
    """What the stages compare: the user's model, the deploy net before and after folding (fp32), and the folded
    net with the weights exactly as the bundle holds them (fp16/int8 rounding; the folded net itself for fp32)."""
    ticket: torch.nn.Module
    unfolded: torch.nn.Module
    folded: torch.nn.Module
    bundle: torch.nn.Module


def validate(nets: Nets, runner: OnnxRunner, x: np.ndarray, y: np.ndarray, timesteps: int, layout: str) -> dict:
    xt = torch.from_numpy(x)
    trained_logits, trained_counts = run_ticket(nets.ticket, xt, timesteps)
    ul, uc = _torch_counts(nets.unfolded, xt, timesteps)
    stage_a = compare(trained_logits, trained_counts, ul, uc, key=lambda n: n)
    stage_b = folding_check(nets.unfolded, nets.folded, xt, timesteps)
    ref_logits, ref_counts = _torch_counts(nets.bundle, xt, timesteps, layout)
    got_logits, got_counts = runner.run(x)
    result = compare(ref_logits, ref_counts, got_logits, got_counts)
    result.update({
        "inputs": int(len(x)),
        "timesteps": timesteps,
        "layout": layout,
        "ticket_vs_deploy": {k: stage_a[k] for k in ("spikes_equal", "first_mismatch", "logits_max_abs_diff",
                                                      "logits_ok")},
        "folding": stage_b,
        "accuracy": {"ticket_pytorch": accuracy(trained_logits, y), "bundle_onnxruntime": accuracy(got_logits, y)},
        "prediction_agreement_with_ticket": float((trained_logits.argmax(1) == got_logits.argmax(1)).mean()),
        "spikes_per_layer": {k: int(v.sum()) for k, v in ref_counts.items()},
    })
    result["passed"] = bool(result["spikes_equal"] and result["logits_ok"] and stage_a["spikes_equal"]
                            and stage_a["logits_ok"] and stage_b["rounding_flips_only"])
    return result
