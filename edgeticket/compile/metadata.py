"""The bundle graph's self-description: ONNX metadata_props and doc_string (keys: formats/onnx_metadata.py,
docs/bundle-format.md "ONNX metadata"), set on the ModelProto before compile serializes it, so the bytes that are
validated, hashed into manifest.files and written as model.onnx carry them (and tensorrt/model.onnx after them)."""

from __future__ import annotations

import json
from typing import Optional

import onnx

from .. import __version__
from ..data.classes import class_names
from ..formats import graph, names
from ..formats import onnx_metadata as K

_OUTPUTS = {
    "time-folded": {
        graph.LOGITS: "[batch, K] float32: logits summed over the T timesteps; argmax is the predicted class",
        graph.SPIKES + "<layer>": "[T, batch]: spikes of each LIF layer per timestep and sample",
        graph.EVENTS + "<layer>": "[T, batch]: nonzero inputs of each conv/linear layer fed by spikes",
    },
    "streaming": {
        graph.LOGITS: "[batch, K] float32: logits of this timestep; call the graph T times and sum them",
        graph.STATE_OUT + "<layer>": "membrane potential after this step: feed it back as " + graph.STATE_IN
                                     + "<layer> on the next call (at t = 0: the neuron's v_reset, 0 for soft reset)",
        graph.SPIKES + "<layer>": "[batch]: spikes of each LIF layer in this timestep per sample",
        graph.EVENTS + "<layer>": "[batch]: nonzero inputs of each conv/linear layer fed by spikes in this timestep",
    },
}

_LAYOUTS = {
    "time-folded": "One call runs all {T} timesteps (logits summed over T).",
    "streaming": "One call is one of the {T} timesteps: membrane states go in as v__<layer> (at t = 0 each neuron's "
                 "v_reset, 0 with soft reset) and "
                 "come out as v_out__<layer>; sum the logits of T calls.",
}


def _json(v) -> str:
    return json.dumps(v, separators=(",", ":"))


def props(info: dict, *, ticket_sha: str, bundle_id: str, layout: str, weight_format: str, storage: str,
          target: str, neurons: list[dict], data_dir: Optional[str] = None) -> dict[str, str]:
    """The edgeticket.* key/value pairs of one bundle graph (info: the ticket's ticket.json; neurons: each spiking
    layer's NeuronSpec as a dict, in graph order)."""
    ds = info["dataset"]
    T = int(info["timesteps"]["deploy"])
    if data_dir is None:
        data_dir = info["hparams"].get("data", {}).get("data_dir")
    labels = class_names(ds["name"], int(ds["num_classes"]), data_dir)
    return {
        K.METADATA_VERSION: _json(K.FORMAT_VERSION),
        K.VERSION: __version__,
        K.BUNDLE_ID: bundle_id,
        K.TICKET_ID: ticket_sha,
        K.TICKET: _json({"run": info.get("run"), "level": info.get("level"), "branch": info.get("branch")}),
        K.SPARSITY: _json(float(info["sparsity"]["global"])),
        K.ARCH: info["arch"],
        K.DATASET: ds["name"],
        K.NUM_CLASSES: _json(int(ds["num_classes"])),
        **({K.CLASS_NAMES: _json(labels)} if labels is not None else {}),  # absent where the dataset has none
        K.TIMESTEPS: _json(T),
        K.LAYOUT: layout,
        K.TARGET: target,
        K.INPUT_NAME: graph.INPUT,
        K.INPUT_SHAPE: _json(["batch", *[int(d) for d in ds["input_shape"]]]),
        K.INPUT_LAYOUT: "NCHW",
        K.NORMALIZATION: _json({"mean": [float(v) for v in ds["mean"]], "std": [float(v) for v in ds["std"]],
                                "note": "scale pixels to [0, 1], then (x - mean) / std per channel"}),
        K.WEIGHT_FORMAT: weight_format,
        K.WEIGHT_STORAGE: storage,
        K.OUTPUTS: _json(_OUTPUTS[layout]),
        K.LIF: _json({"tau": neurons[0]["tau"], "v_threshold": neurons[0]["v_threshold"], "neurons": neurons,
                      "update": "per kind, as in edgeticket's docs/models.md (the neuron table); the state starts "
                                "at v_reset (0 with soft reset, v_reset None)"}),
        K.GRAPH: names.MODEL,
    }


def doc_string(p: dict[str, str]) -> str:
    T = json.loads(p[K.TIMESTEPS])
    return (f"edgeticket {p[K.VERSION]} bundle {p[K.BUNDLE_ID]} for {p[K.TARGET]}: a spiking {p[K.ARCH]} lottery "
            f"ticket trained on {p[K.DATASET]} ({100 * json.loads(p[K.SPARSITY]):.2f}% of its prunable weights "
            f"pruned; ticket.json sha256 {p[K.TICKET_ID][:12]}), {p[K.NUM_CLASSES]} classes. Input "
            f"'{p[K.INPUT_NAME]}': float32 {p[K.INPUT_SHAPE]} {p[K.INPUT_LAYOUT]}, pixels scaled to [0, 1] then normalised "
            f"with the per-channel mean/std of {K.NORMALIZATION}. {_LAYOUTS[p[K.LAYOUT]].format(T=T)} Weights "
            f"{p[K.WEIGHT_FORMAT]}, stored {p[K.WEIGHT_STORAGE]}. The {K.PREFIX}* metadata_props hold these facts "
            "(JSON where structured), class names included where the dataset has them.")


def attach(model: onnx.ModelProto, p: dict[str, str]) -> None:
    """Replace the edgeticket.* metadata_props of `model` with `p` and set its doc_string and producer_version."""
    keep = [(e.key, e.value) for e in model.metadata_props if not e.key.startswith(K.PREFIX)]
    onnx.helper.set_model_props(model, {**dict(keep), **p})
    model.doc_string = doc_string(p)
    model.producer_version = __version__


def mark_tensorrt(model: onnx.ModelProto) -> None:
    """tensorrt/model.onnx keeps model.onnx's metadata, saying which graph it is and that its weights are dense
    float32 initializers (holding the values of the weight format)."""
    p = {e.key: e.value for e in model.metadata_props}
    if K.VERSION not in p:
        return
    p[K.GRAPH] = names.TENSORRT_MODEL
    p[K.WEIGHT_STORAGE] = "dense"
    attach(model, p)
    model.doc_string += (f" This is {names.TENSORRT_MODEL}: {names.MODEL} with the packed-weight decode folded into "
                         "dense float32 initializers, for TensorRT's ONNX parser.")
