"""Run a bundle's ONNX graph with onnxruntime. Needs numpy + onnxruntime only (no torch): this is what runs
on the device. Both layouts return the same things: logits summed over T [B, K] and spike counts per layer
per timestep per sample {layer: [T, B]}."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_session(model, providers: list[str] | None = None, threads: int | None = None, spinning: bool = False):
    """An onnxruntime session. Spinning is off by default: onnxruntime's thread pool otherwise busy-waits after
    each run, which on a small device (or next to other work) steals the cores it does not use."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.log_severity_level = 3
    src = str(model) if isinstance(model, (str, Path)) else model
    avail = ort.get_available_providers()
    chosen = [p for p in (providers or ["CPUExecutionProvider"]) if p in avail] or ["CPUExecutionProvider"]
    return ort.InferenceSession(src, sess_options=opts, providers=chosen)


class OnnxRunner:
    def __init__(self, session, layout: str, timesteps: int):
        self.sess, self.layout, self.timesteps = session, layout, int(timesteps)
        self.inputs = [i.name for i in session.get_inputs()]
        self.outputs = [o.name for o in session.get_outputs()]
        self.layers = [n[len("spikes__"):] for n in self.outputs if n.startswith("spikes__")]
        self.synapses = [n[len("events__"):] for n in self.outputs if n.startswith("events__")]
        self.counted = [n for n in self.outputs if n.startswith("spikes__") or n.startswith("events__")]
        self.state_shapes = [tuple(i.shape[1:]) for i in session.get_inputs()[1:]]

    def run(self, x: np.ndarray, with_counts: bool = True):
        """(logits summed over T, counts). counts maps each LIF layer to its spikes [T, B] and each synaptic layer
        'events__<name>' to its nonzero inputs [T, B] (with_counts=False fetches the logits only)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        keys = self.layers + [f"events__{n}" for n in self.synapses]
        if self.layout == "time-folded":
            wanted = (["logits"] + self.counted) if with_counts else ["logits"]
            out = self.sess.run(wanted, {self.inputs[0]: x})
            counts = {k: c for k, c in zip(keys, out[1:])} if with_counts else {}
            return out[0], counts
        B = x.shape[0]
        states = [np.zeros((B, *s), np.float32) for s in self.state_shapes]
        L = len(states)
        wanted = ["logits"] + self.outputs[1:1 + L] + (self.counted if with_counts else [])
        total = None
        per_t = {k: [] for k in keys}
        for _ in range(self.timesteps):
            feed = {self.inputs[0]: x, **{n: s for n, s in zip(self.inputs[1:], states)}}
            out = self.sess.run(wanted, feed)
            total = out[0] if total is None else total + out[0]
            states = out[1:1 + L]
            for k, c in zip(keys, out[1 + L:]):
                per_t[k].append(c)
        counts = {k: np.stack(c) for k, c in per_t.items()} if with_counts else {}
        return total, counts
