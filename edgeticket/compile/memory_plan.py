"""Memory plan of a bundle: what the process will hold on the device, estimated from the graph.

- weights_stored_bytes: the ONNX file (what is copied to the device).
- weights_resident_bytes: weights in RAM after load. onnxruntime constant-folds the sparse decode, so fp32 and
  fp16 weights become dense fp32; int8 weights stay int8 (DequantizeLinear runs per inference, adding the
  largest layer's fp32 copy to the activations).
- load_transient_bytes: intermediates of the decode subgraphs while onnxruntime folds them at load.
- activation_peak_bytes: the largest (input + output) of any layer, plus each LIF's per-step temporaries,
  at the planned batch: T x larger for time-folded than for streaming.
- state_bytes: streaming only: the membrane potentials passed in and out of each call.
- runtime_overhead_bytes: the process's fixed cost: Python + numpy + onnxruntime with its session arena and threads.
  Planned at 80 MiB without calibration (measured on the host: 79.3 MiB peak RSS profiling the 0.5 MiB demo
  bundle); a calibration record of the target replaces it with the device's figure (measured peak minus the
  plan's model-dependent parts).
`edgeticket profile` measures the real peak RSS next to this plan.
"""

from __future__ import annotations

import torch
from torch import nn

from .deploy import PlainNeuron, Streaming, TimeFolded, lif_layers, state_shapes

RUNTIME_OVERHEAD_BYTES = 80 * 2**20
LEAVES = (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, PlainNeuron)


def _nbytes(t) -> int:
    if isinstance(t, torch.Tensor):
        return t.numel() * t.element_size()
    if isinstance(t, (tuple, list)):
        return sum(_nbytes(x) for x in t)
    return 0


@torch.no_grad()
def activation_peak(net: nn.Module, layout: str, timesteps: int, batch: int, input_shape: tuple) -> int:
    peak = [0]

    def hook(mod, inp, out):
        extra = 0
        if isinstance(mod, PlainNeuron):  # h and v of one step live next to the input and the output
            extra = 2 * _nbytes(out) // max(out.shape[0], 1)
        peak[0] = max(peak[0], _nbytes(inp) + _nbytes(out) + extra)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, LEAVES)]
    try:
        x = torch.zeros(batch, *input_shape)
        if layout == "time-folded":
            TimeFolded(net, timesteps)(x)
        else:
            shapes = state_shapes(net, input_shape)
            Streaming(net)(x, *[torch.zeros(batch, *s) for s in shapes])
    finally:
        for h in handles:
            h.remove()
    return peak[0]


def plan(net: nn.Module, layout: str, timesteps: int, batch: int, input_shape: tuple, weight_format: str,
         storage: dict, file_bytes: int, budget_bytes: int, runtime_overhead: int | None = None) -> dict:
    params = [p for p in net.parameters()]
    dense_fp32 = sum(p.numel() * 4 for p in params)
    prunable_numel = storage["prunable_numel"]
    if weight_format == "int8":
        largest = max(l["numel"] for l in storage["layers"])
        resident = dense_fp32 - prunable_numel * 4 + prunable_numel * 1
        per_run_dequant = largest * 4
    else:
        resident, per_run_dequant = dense_fp32, 0
    act = activation_peak(net, layout, timesteps, batch, input_shape) + per_run_dequant
    if layout == "streaming":
        neurons = sum(int(torch.tensor(s).prod()) for s in state_shapes(net, input_shape))
        state = 2 * neurons * batch * 4
    else:
        state = 0
    overhead = RUNTIME_OVERHEAD_BYTES if runtime_overhead is None else int(runtime_overhead)
    load_transient = storage.get("decode_transient_bytes", 0)
    steady = resident + act + state + overhead
    peak_at_load = resident + load_transient + overhead
    total = max(steady, peak_at_load)
    return {"batch": batch, "layout": layout, "weights_stored_bytes": file_bytes,
            "weights_resident_bytes": resident, "load_transient_bytes": load_transient,
            "activation_peak_bytes": act, "state_bytes": state, "runtime_overhead_bytes": overhead,
            "steady_total_bytes": steady, "load_peak_bytes": peak_at_load, "total_bytes": total,
            "budget_bytes": budget_bytes, "fits": total <= budget_bytes,
            "lif_layers": len(lif_layers(net))}


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"
