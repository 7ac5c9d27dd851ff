"""Spike-exact validation: the PyTorch deploy network (BN folded, the weights exactly as the bundle will hold
them) against the ONNX graph in onnxruntime, per layer, per timestep, per sample; logits within 1e-4
relative to the logits' magnitude. Also reports how the folded network agrees with the trained ticket and the
top-1 accuracy of each on the validation samples (what validates int8). Accuracies and agreements are fractions
in [0, 1] (bundle format_version 3)."""

from __future__ import annotations

import numpy as np
import torch

from ..device.runners.onnx_runner import OnnxRunner
from ..formats.graph import graph_name
from .deploy import run_torch

LOGIT_RTOL = 1e-4


def compare(ref_logits: np.ndarray, ref_counts: dict, got_logits: np.ndarray, got_counts: dict) -> dict:
    mismatch = None
    total_spikes = 0
    for layer, ref in ref_counts.items():
        got = got_counts[graph_name(layer)]  # spikes of each LIF layer (events__ keys are derived from them)
        total_spikes += int(ref.sum())
        if not np.array_equal(ref, got):
            t, b = np.argwhere(ref != got)[0]
            mismatch = {"layer": layer, "timestep": int(t), "sample": int(b), "expected": float(ref[t, b]),
                        "got": float(got[t, b])}
            break
    scale = max(1.0, float(np.abs(ref_logits).max()))
    max_diff = float(np.abs(ref_logits - got_logits).max())
    return {"spikes_equal": mismatch is None, "first_mismatch": mismatch, "total_spikes": total_spikes,
            "logits_max_abs_diff": max_diff, "logits_scale": scale,
            "logits_ok": max_diff <= LOGIT_RTOL * scale}


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float((logits.argmax(1) == y).mean())


def validate(ticket_model, deploy_net, runner: OnnxRunner, x: np.ndarray, y: np.ndarray, timesteps: int,
             layout: str) -> dict:
    xt = torch.from_numpy(x)
    ref_logits, ref_counts = run_torch(deploy_net, xt, timesteps, layout)
    ref_logits = ref_logits.numpy()
    ref_counts = {k: v.numpy() for k, v in ref_counts.items()}
    got_logits, got_counts = runner.run(x)
    result = compare(ref_logits, ref_counts, got_logits, got_counts)
    with torch.no_grad():
        ticket_model.eval()
        ticket_model.timesteps = timesteps
        trained_logits = ticket_model(xt).sum(0).numpy()
    result.update({
        "inputs": int(len(x)),
        "timesteps": timesteps,
        "layout": layout,
        "accuracy": {"ticket_pytorch": accuracy(trained_logits, y), "bundle_onnxruntime": accuracy(got_logits, y)},
        "prediction_agreement_with_ticket": float((trained_logits.argmax(1) == got_logits.argmax(1)).mean()),
        "spikes_per_layer": {k: int(v.sum()) for k, v in ref_counts.items()},
    })
    result["passed"] = bool(result["spikes_equal"] and result["logits_ok"])
    return result
