"""The onnxruntime backend: the bundle's ONNX graph (dense kernels, weights decoded at load). numpy +
onnxruntime only."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ...errors import EdgeTicketError
from ...formats import graph, names
from ...formats.bundle import state_init
from .base import Runner


def _ort_errors() -> tuple:
    """onnxruntime's own exception classes (plain Exception subclasses, one per status code)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return tuple(c for c in vars(state).values() if isinstance(c, type) and issubclass(c, Exception)
                 and c.__module__ == state.__name__)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def make_session(model, providers: list[str] | None = None, threads: int | None = None, spinning: bool = False):
    """An onnxruntime session. Spinning is off by default: onnxruntime's thread pool otherwise busy-waits after
    each run, which on a small device (or next to other work) steals the cores it does not use."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if threads:
        opts.intra_op_num_threads = int(threads)
    from ... import console

    opts.log_severity_level = 2 if console.verbose() else 3  # onnxruntime's warnings with -v, else errors only
    src = str(model) if isinstance(model, (str, Path)) else model
    avail = ort.get_available_providers()
    chosen = [p for p in (providers or ["CPUExecutionProvider"]) if p in avail] or ["CPUExecutionProvider"]
    return ort.InferenceSession(src, sess_options=opts, providers=chosen)


class OnnxRunner(Runner):
    name = "onnxruntime"

    def __init__(self, session, layout: str, timesteps: int, v_init: Sequence[float] | None = None):
        """v_init: each LIF layer's first membrane value in the streaming layout (None: 0)."""
        self.sess = session
        self.inputs = [i.name for i in session.get_inputs()]
        self.outputs = [o.name for o in session.get_outputs()]
        lifs = [n[len(graph.SPIKES):] for n in self.outputs if n.startswith(graph.SPIKES)]
        syns = [n[len(graph.EVENTS):] for n in self.outputs if n.startswith(graph.EVENTS)]
        super().__init__(layout, timesteps, lifs, syns, v_init)
        self.counted = [n for n in self.outputs if graph.is_count(n)]
        self.state_shapes = [tuple(i.shape[1:]) for i in session.get_inputs()[1:]]

    @classmethod
    def open(cls, bundle_dir: Path, manifest: dict, threads: int | None = None):
        path = Path(bundle_dir) / names.MODEL
        try:
            sess = make_session(path, providers=manifest["target"].get("providers"), threads=threads)
        except _ort_errors() as e:
            raise EdgeTicketError(f"{path}: onnxruntime cannot load it ({_first_line(e)}); copy the whole bundle "
                                  "folder again, or re-compile the ticket") from None
        return cls(sess, manifest["layout"], manifest["timesteps"], v_init=state_init(manifest))

    def _run(self, wanted, feed):
        try:
            return self.sess.run(wanted, feed)
        except _ort_errors() as e:
            raise EdgeTicketError(f"onnxruntime failed to run the graph ({_first_line(e)}); copy the whole bundle "
                                  "folder again, or re-compile the ticket") from None

    @property
    def provider(self) -> str:
        return self.sess.get_providers()[0]

    def run_folded(self, x, with_counts):
        wanted = [graph.LOGITS] + (self.counted if with_counts else [])
        out = self._run(wanted, {self.inputs[0]: x})
        return out[0], out[1:]

    def initial_states(self, batch):
        return self.state_arrays(batch, self.state_shapes)

    def step(self, x, states, with_counts):
        L = len(states)
        wanted = [graph.LOGITS] + self.outputs[1:1 + L] + (self.counted if with_counts else [])
        out = self._run(wanted, {self.inputs[0]: x, **dict(zip(self.inputs[1:], states))})
        return out[0], out[1:1 + L], out[1 + L:]
