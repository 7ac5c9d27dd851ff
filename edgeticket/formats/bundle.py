"""Bundle folders (docs/bundle-format.md): reading and checking them needs numpy alone.

format_version 4: `lif.neurons` states each spiking layer's neuron (kind lif / plif / if, threshold, reset,
tau or k, decay_input; one per `lif.layers`), and every runner starts the membrane at the neuron's resting value
(`state_init`: v_reset, 0 for a soft reset) instead of 0. A version-3 manifest is converted on read (`upgrade`):
every layer the one LIF of `lif.tau` / `lif.v_threshold`, hard reset to 0, decay_input (what version 3 ran).
format_version 3: accuracies and agreements are fractions in [0, 1] (`validation.accuracy`,
`validation.prediction_agreement_with_ticket`, `validation.quantization`, `source_ticket.accuracy`), and the
quantization limit is `max_drop` (a fraction); version 2 held them in percent (`max_drop_points`) and is converted
on read (`upgrade`, then to 4 as above). format_version 2: the event-driven backend is `backends.event` with its
files under event/, the validation samples are validation.npz (version 1 called them `sparse` and calib.npz): a
version-1 bundle is re-compiled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .. import store
from ..errors import EdgeTicketError
from . import names
from .ticket import checked_files, upgrade_accuracy
from .ticket import percent_to_fraction as _fraction

FORMAT_VERSION = 4
READS = (2, 3, 4)  # format_versions read_manifest accepts (older ones are converted to FORMAT_VERSION)


def read_manifest(bundle_dir: Path) -> dict:
    """The manifest (upgraded to FORMAT_VERSION), its fields checked (`check_manifest`) and, where the folder holds
    model.onnx, checked against the graph (`check_graph`): what every device command reads is refused in one line
    when it is out of range or disagrees with the graph, before anything runs. The sha256s are `load`'s."""
    bundle_dir = Path(bundle_dir)
    m = _read(bundle_dir)
    check_manifest(bundle_dir, m)
    if (bundle_dir / names.MODEL).is_file():
        try:
            check_graph(bundle_dir, m)
        except EdgeTicketError:
            _model_sha_first(bundle_dir, m)  # an altered model.onnx whose sha256 was not rewritten: say that
            raise
    return m


def _read(bundle_dir: Path) -> dict:
    if not bundle_dir.is_dir():
        raise EdgeTicketError(f"bundle folder not found: {bundle_dir}")
    m = store.read_json(bundle_dir / names.MANIFEST, "bundle manifest")
    if not isinstance(m, dict) or m.get("format_version") not in READS:
        got = m.get("format_version") if isinstance(m, dict) else None
        raise EdgeTicketError(f"{bundle_dir / names.MANIFEST} has format_version {got!r}; this edgeticket "
                              f"reads versions {', '.join(map(str, READS))}: re-compile the ticket with this "
                              "edgeticket, or install the edgeticket that wrote it")
    return upgrade(m)




def upgrade(m: dict) -> dict:
    """A manifest of any version in READS as FORMAT_VERSION has it: the one place old manifests are converted
    (version 2 -> 3: percent -> fractions; 3 -> 4: `lif.neurons` from `lif.tau` / `lif.v_threshold`). A version-2
    manifest goes through both. `format_version` then reads FORMAT_VERSION; `upgraded_from` keeps the version the
    file holds. The argument is not changed."""
    src = m.get("format_version")
    if src == FORMAT_VERSION:
        return m
    m = dict(m, format_version=FORMAT_VERSION, upgraded_from=src)
    if src == 2:
        _fractions(m)
    if src in (2, 3):
        _neurons_from_lif(m)
    return m


def _fractions(m: dict) -> None:
    """Version 2 -> 3, in place on the (shallow) copy upgrade made: percent -> fractions."""
    if isinstance(m.get("source_ticket"), dict) and isinstance(m["source_ticket"].get("accuracy"), dict):
        m["source_ticket"] = dict(m["source_ticket"], accuracy=upgrade_accuracy(m["source_ticket"]["accuracy"]))
    v = m.get("validation")
    if isinstance(v, dict):
        v = dict(v)
        if isinstance(v.get("accuracy"), dict):
            v["accuracy"] = {k: _fraction(x) for k, x in v["accuracy"].items()}
        if "prediction_agreement_with_ticket" in v:
            v["prediction_agreement_with_ticket"] = _fraction(v["prediction_agreement_with_ticket"])
        if isinstance(v.get("quantization"), dict):
            q = dict(v["quantization"])
            for k in ("accuracy_fp32", "accuracy", "prediction_agreement_with_fp32"):
                if k in q:
                    q[k] = _fraction(q[k])
            if "max_drop_points" in q:
                q["max_drop"] = _fraction(q.pop("max_drop_points"))
            v["quantization"] = q
        m["validation"] = v


def _neurons_from_lif(m: dict) -> None:
    """Version 3 -> 4: every LIF layer the network's one neuron (what version 3 compiled and ran: LIF of
    `lif.tau` and `lif.v_threshold`, hard reset to 0, decay_input). A lif without layers is left for
    check_manifest to name; missing tau / v_threshold are named there too (as lif.tau, lif.v_threshold)."""
    lif = m.get("lif")
    if not isinstance(lif, dict) or "neurons" in lif or not isinstance(lif.get("layers"), list):
        return
    one = {"kind": "lif", "v_threshold": lif.get("v_threshold"), "v_reset": 0.0, "tau": lif.get("tau"), "k": None,
           "decay_input": True}
    m["lif"] = dict(lif, neurons=[dict(one) for _ in lif["layers"]])


def state_init(manifest: dict) -> list[float]:
    """Each LIF layer's resting membrane value, in `lif.layers` order: where the streaming states (and the event
    kernels' states) start. v_reset for a hard reset, 0 for a soft one (snn/neurons.py NeuronSpec.v_init). A
    manifest without `lif.neurons` (before version 4, not passed through `upgrade`) reset every neuron to 0."""
    lif = manifest["lif"]
    neurons = lif.get("neurons")
    if neurons is None:
        return [0.0] * len(lif["layers"])
    return [0.0 if n["v_reset"] is None else float(n["v_reset"]) for n in neurons]


def required_files(manifest: dict) -> list[str]:
    """The files a bundle of this manifest must list (and hold): the graph, the validation samples, and the
    files of every backend it says it carries."""
    need = [names.MODEL, names.VALIDATION_SAMPLES]
    b = manifest.get("backends")
    b = b if isinstance(b, dict) else {}  # check_manifest names what is wrong with one that is not
    event, tvm = (b.get(k) if isinstance(b.get(k), dict) else {} for k in ("event", "tvm"))
    if event.get("built"):
        need.append(names.EVENT_NET)
        if isinstance(event.get("library"), dict) and isinstance(event["library"].get("file"), str):
            need.append(event["library"]["file"])
    if tvm.get("built") and isinstance(tvm.get("library"), str):
        need.append(tvm["library"])
    if manifest.get("tensorrt"):
        need.append(names.TENSORRT_MODEL)
    return need


def verify(bundle_dir: Path, manifest: dict) -> None:
    """Every required file is listed with its sha256 and matches it: a file list that is missing, empty or short
    is refused, never taken as 'nothing to check'."""
    files = checked_files(bundle_dir, manifest.get("files"), f"{Path(bundle_dir) / names.MANIFEST}")
    listed = set(files)
    missing = [f for f in required_files(manifest) if f not in listed]
    if missing:
        raise EdgeTicketError(f"{Path(bundle_dir) / names.MANIFEST} does not list the sha256 of {', '.join(missing)}: "
                              "the manifest was altered; copy the whole bundle folder again, or re-compile it")
    for name, digest in files.items():
        store.verify_sha256(Path(bundle_dir) / name, digest, f"bundle file {name}",
                            fix="copy the whole bundle folder again, or re-compile it")


def load(bundle_dir: Path, verify_files: bool = True) -> dict:
    """The manifest with its fields checked, every file's sha256 verified, and the manifest checked against
    model.onnx's graph (in that order: an altered file whose sha256 was not rewritten is named as such)."""
    bundle_dir = Path(bundle_dir)
    m = _read(bundle_dir)
    check_manifest(bundle_dir, m)
    if verify_files:
        verify(bundle_dir, m)
    check_graph(bundle_dir, m)
    return m


def runs_per_call(layer: dict, timesteps: int) -> int:
    """How often a `layers` row runs per inference: spikes every timestep; the image once, or every timestep where
    the network repeats the image over T (`runs_per_call`, written from format_version 4 on; before, the image layer
    ran once)."""
    return int(layer.get("runs_per_call", 1 if layer["input"] == "image" else timesteps))


def synaptic_layers(manifest: dict) -> list[str]:
    """The conv/linear layers fed by spikes (their input events are counted), in graph order."""
    return [L["name"] for L in manifest["layers"] if L["input"] == "spikes"]


def validation_samples(bundle_dir: Path, manifest: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The inputs the bundle was validated on (normalised like the training data) and their labels. A file that
    is not such samples (or, given the manifest, whose samples are not of its input shape) is a one-line error."""
    import zipfile

    path = Path(bundle_dir) / names.VALIDATION_SAMPLES
    try:
        with np.load(path, allow_pickle=False) as z:
            x, y = z["x"], z["y"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        text = (e.strerror if isinstance(e, OSError) else None) or str(e).strip()
        why = text.splitlines()[0][:80] if text else type(e).__name__
        raise EdgeTicketError(f"{path} holds no readable validation samples ({why}): copy the whole bundle folder "
                              "again, or re-compile the ticket") from None
    want = tuple(manifest["input"]["shape"][1:]) if manifest is not None else None
    if x.ndim != 4 or not len(x) or x.dtype.kind not in "fiub" or y.shape != (len(x),) or y.dtype.kind not in "iub" \
            or (want is not None and tuple(x.shape[1:]) != want):
        raise EdgeTicketError(f"{path} holds samples x {list(x.shape)} ({x.dtype}) and labels y {list(y.shape)} "
                              f"({y.dtype}), not [N, {', '.join(map(str, want)) if want else 'C, H, W'}] float inputs "
                              "with one integer label each: copy the whole bundle folder again, or re-compile the "
                              "ticket")
    return x.astype(np.float32), y.astype(np.int64)


# ---- the manifest's fields, and their agreement with model.onnx's graph (docs/bundle-format.md) ---------------
# A manifest whose sha256s were rewritten with it can say anything: every field a device command reads is
# checked for type and range, and against the graph, before a runner starts (a T of 0 measured nothing, a wrong
# input shape was onnxruntime's traceback).

FIX = "the manifest was altered; copy the whole bundle folder again, or re-compile the ticket"
LAYOUTS = ("time-folded", "streaming")
WEIGHT_FORMATS = ("fp32", "fp16", "int8")
MAX_TIMESTEPS = 1 << 16
MAX_SAMPLE_VALUES = 1 << 24  # C x H x W of one input, and of one LIF layer's state
MAX_CLASSES = 1 << 20
_MISSING = object()


def _shown(v) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    """A finite JSON number (not a bool; not an integer too large for a float)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


class _Fields:
    """Look-ups into the manifest by dotted key: a missing key, or a value of the wrong type or range, is one line
    naming the key, the file and the fix."""

    def __init__(self, bundle_dir: Path, m: dict):
        self.where, self.m = f"{Path(bundle_dir) / names.MANIFEST}", m

    def fail(self, key: str, rule: str, got=_MISSING):
        if got is _MISSING:
            raise EdgeTicketError(f"{self.where} has no {key}: {FIX}")
        raise EdgeTicketError(f"{self.where}: {key} must be {rule} (got {_shown(got)}): {FIX}")

    def get(self, key: str, optional: bool = False):
        """The value at a dotted key; None for an absent optional one (its parents are checked by the caller)."""
        cur = self.m
        for part in key.split("."):
            if not isinstance(cur, dict) or part not in cur:
                if optional:
                    return None
                self.fail(key, "")
            cur = cur[part]
        return cur

    def obj(self, key: str, optional: bool = False) -> dict:
        v = self.get(key, optional)
        if v is None and optional:
            return {}
        if not isinstance(v, dict):
            self.fail(key, "an object", v)
        return v

    def integer(self, key: str, least: int, most: int | None = None, optional: bool = False):
        v = self.get(key, optional)
        if v is None and optional:
            return None
        if not _is_int(v) or v < least or (most is not None and v > most):
            self.fail(key, f"an integer >= {least}" if most is None else f"an integer in [{least}, {most}]", v)
        return v

    def number(self, key: str, positive: bool = False, optional: bool = False):
        v = self.get(key, optional)
        if v is None and optional:
            return None
        if not _is_number(v) or (positive and v <= 0):
            self.fail(key, "a finite number > 0" if positive else "a finite number", v)
        return v

    def text(self, key: str, choices: tuple | None = None, optional: bool = False):
        v = self.get(key, optional)
        if v is None and optional:
            return None
        if not isinstance(v, str) or not v or (choices and v not in choices):
            self.fail(key, f"one of {', '.join(choices)}" if choices else "a non-empty string", v)
        return v

    def shape(self, key: str, v, n: int | None = None) -> list:
        """A list of positive integers (n of them where given) whose product is at most MAX_SAMPLE_VALUES."""
        ok = isinstance(v, list) and v and all(_is_int(d) and d >= 1 for d in v) and (n is None or len(v) == n)
        if not ok or int(np.prod([float(d) for d in v])) > MAX_SAMPLE_VALUES:
            self.fail(key, f"{n or 'a list of'} positive integers (at most {MAX_SAMPLE_VALUES:,} values)", v)
        return v


def check_manifest(bundle_dir: Path, m: dict) -> None:
    """The fields the device commands (inspect, check, predict, profile) read: present, of their type, in range.
    One line naming the field, manifest.json and the fix."""
    f = _Fields(bundle_dir, m)
    f.text("id")
    f.text("arch")
    f.text("layout", LAYOUTS)
    f.integer("timesteps", 1, MAX_TIMESTEPS)
    f.integer("num_classes", 2, MAX_CLASSES)
    f.obj("input")
    f.text("input.name")
    shape = f.get("input.shape")
    if not (isinstance(shape, list) and len(shape) == 4 and (isinstance(shape[0], str) or
                                                             (_is_int(shape[0]) and shape[0] >= 1))):
        f.fail("input.shape", "[batch, C, H, W]", shape)
    f.shape("input.shape[1:] (C, H, W)", shape[1:], 3)
    f.obj("lif")
    lifs, states = f.get("lif.layers"), f.get("lif.state_shapes")
    if not isinstance(lifs, list) or not lifs or not all(isinstance(n, str) and n for n in lifs) \
            or len(set(lifs)) != len(lifs):
        f.fail("lif.layers", "a list of distinct layer names", lifs)
    if not isinstance(states, list) or len(states) != len(lifs):
        f.fail("lif.state_shapes", f"a list of {len(lifs)} shapes (one per lif.layers)", states)
    for i, s in enumerate(states):
        f.shape(f"lif.state_shapes[{i}]", s)
    if m.get("upgraded_from") in (2, 3):  # lif.neurons was made from these (upgrade): name them, not it
        f.number("lif.tau", positive=True)
        f.number("lif.v_threshold")
    _check_neurons(f, len(lifs))
    f.obj("target")
    f.text("target.name")
    f.integer("target.model_budget_bytes", 1)
    providers = f.get("target.providers", optional=True)
    if providers is not None and not (isinstance(providers, list) and all(isinstance(p, str) for p in providers)):
        f.fail("target.providers", "a list of onnxruntime provider names", providers)
    f.obj("weights")
    f.text("weights.format", WEIGHT_FORMATS)
    f.obj("memory_plan")
    f.integer("memory_plan.batch", 1)
    for k in ("total_bytes", "runtime_overhead_bytes", "steady_total_bytes", "load_peak_bytes"):
        f.integer(f"memory_plan.{k}", 0)
    backends = f.obj("backends", optional=True)
    if backends.get("default") is not None:
        f.text("backends.default")
    for b in ("onnxruntime", "event", "tvm"):
        rec = f.obj(f"backends.{b}", optional=True)
        if b == "event" and rec.get("built"):
            lib = f.get("backends.event.library", optional=True)
            if lib is not None:
                f.obj("backends.event.library")
                f.text("backends.event.library.file")
                f.text("backends.event.library.arch")
        if b == "tvm" and rec.get("built"):
            f.text("backends.tvm.library")
            f.text("backends.tvm.arch")
    if "layers" in m:
        _check_layers(f)
    if "graph" in m:
        f.obj("graph")
        f.integer("graph.nodes", 0)
        ops = f.obj("graph.op_types")
        if not all(isinstance(k, str) and _is_int(v) and v >= 0 for k, v in ops.items()):
            f.fail("graph.op_types", "op type -> count", ops)


NEURON_KINDS = ("lif", "plif", "if")  # snn/neurons.py KINDS (not imported here: it imports torch)
NEURON_KEYS = ("kind", "v_threshold", "v_reset", "tau", "k", "decay_input")


def _check_neurons(f: _Fields, n: int) -> None:
    """`lif.neurons`: one neuron per lif.layers entry, as snn/neurons.py NeuronSpec has it (a lif neuron needs its
    tau, a plif its k; v_reset null is a soft reset)."""
    neurons = f.get("lif.neurons")
    if not isinstance(neurons, list) or len(neurons) != n:
        f.fail("lif.neurons", f"a list of {n} neurons (one per lif.layers)", neurons)
    for i, nr in enumerate(neurons):
        key = f"lif.neurons[{i}]"
        if not isinstance(nr, dict):
            f.fail(key, "an object", nr)
        for k in NEURON_KEYS:
            if k not in nr:
                f.fail(f"{key}.{k}", "")
        if nr["kind"] not in NEURON_KINDS:
            f.fail(f"{key}.kind", f"one of {', '.join(NEURON_KINDS)}", nr["kind"])
        if not _is_number(nr["v_threshold"]):
            f.fail(f"{key}.v_threshold", "a finite number", nr["v_threshold"])
        if nr["v_reset"] is not None and not _is_number(nr["v_reset"]):
            f.fail(f"{key}.v_reset", "a finite number, or null (soft reset)", nr["v_reset"])
        tau, k = nr["tau"], nr["k"]
        if (tau is not None or nr["kind"] == "lif") and not (_is_number(tau) and tau > 0):
            f.fail(f"{key}.tau", "a finite number > 0" + (" (a lif neuron's time constant)"
                                                          if nr["kind"] == "lif" else ", or null"), tau)
        if (k is not None or nr["kind"] == "plif") and not (_is_number(k) and 0 <= k <= 1):
            f.fail(f"{key}.k", "a number in [0, 1]" + (" (a plif neuron's sigmoid(w))"
                                                       if nr["kind"] == "plif" else ", or null"), k)
        if not isinstance(nr["decay_input"], bool):
            f.fail(f"{key}.decay_input", "true or false", nr["decay_input"])


_LAYER_INTS = ("nnz", "out_positions", "macs_per_sample_dense")


def _check_layers(f: _Fields) -> None:
    """`layers`: the conv/linear layers in graph order (compile/deploy.py layer_table), as predict and the SNN
    statistics read them."""
    layers = f.get("layers")
    if not isinstance(layers, list) or not layers:
        f.fail("layers", "a non-empty list of the conv/linear layers", layers)
    seen = set()
    for i, L in enumerate(layers):
        key = f"layers[{i}]"
        if not isinstance(L, dict):
            f.fail(key, "an object", L)
        for k, rule in (("name", "a layer name"), ("kind", "conv or linear"), ("input", "image or spikes")):
            if k not in L:
                f.fail(f"{key}.{k}", rule)
        if not isinstance(L["name"], str) or not L["name"] or L["name"] in seen:
            f.fail(f"{key}.name", "a distinct layer name", L["name"])
        seen.add(L["name"])
        if L["kind"] not in ("conv", "linear"):
            f.fail(f"{key}.kind", "conv or linear", L["kind"])
        if L["input"] not in ("image", "spikes"):
            f.fail(f"{key}.input", "image or spikes", L["input"])
        for k in _LAYER_INTS:
            if k not in L:
                f.fail(f"{key}.{k}", "")
            if not _is_int(L[k]) or L[k] < (1 if k == "out_positions" else 0):
                f.fail(f"{key}.{k}", f"an integer >= {1 if k == 'out_positions' else 0}", L[k])
        runs = L.get("runs_per_call", _MISSING)  # written since edgeticket 0.5 (runs_per_call reads older ones)
        if runs is not _MISSING and not (_is_int(runs) and 1 <= runs <= MAX_TIMESTEPS):
            f.fail(f"{key}.runs_per_call", f"an integer in [1, {MAX_TIMESTEPS}]", runs)
        fan = L.get("mean_fanout_nonzero", _MISSING)
        if fan is _MISSING:
            f.fail(f"{key}.mean_fanout_nonzero", "")
        if not isinstance(fan, (int, float)) or isinstance(fan, bool) or not np.isfinite(fan) or fan < 0:
            f.fail(f"{key}.mean_fanout_nonzero", "a finite number >= 0", fan)
    if layers[0]["input"] != "image":
        f.fail("layers[0].input", "image (the first layer takes the image)", layers[0]["input"])


def check_graph(bundle_dir: Path, m: dict) -> None:
    """The manifest agrees with model.onnx: the graph's inputs (input name and static C, H, W; the streaming
    layout's membrane states v__<layer> and their shapes, the time-folded layout has none), its outputs (logits
    [batch, num_classes], v_out__ / spikes__ / events__ of the manifest's LIF and synaptic layers, in order; the
    time-folded counts [T, batch] where T is static) and, where the graph carries them (its edgeticket.*
    metadata_props), T, layout, classes and input shape."""
    from . import graph as G
    from . import onnx_graph, onnx_metadata

    f = _Fields(bundle_dir, m)
    path = Path(bundle_dir) / names.MODEL
    if not path.is_file():
        raise EdgeTicketError(f"bundle file {names.MODEL} is missing: {path}; copy the whole bundle folder again, "
                              "or re-compile it")
    _check_layers(f)
    f.obj("graph")
    layout, T, K = m["layout"], m["timesteps"], m["num_classes"]
    shape, lifs, states = m["input"]["shape"], m["lif"]["layers"], m["lif"]["state_shapes"]
    try:
        sig = onnx_graph.read_signature(path)
    except OSError as e:
        raise EdgeTicketError(f"{path}: cannot be read ({e.strerror}); copy the whole bundle folder again") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise EdgeTicketError(f"{path} is not a readable ONNX model ({e}); copy the whole bundle folder again, or "
                              "re-compile the ticket") from None
    which = f"{path.name}'s graph"
    want_in, want_out = G.io_names(lifs, synaptic_layers(m), layout)
    want_in[0] = m["input"]["name"]
    got_in, got_out = sig.input_names(), sig.output_names()
    if got_in != want_in:
        other = "streaming" if len(got_in) > 1 else "time-folded"
        if len(got_in) != len(want_in) and (other != layout):
            raise EdgeTicketError(f"{f.where}: layout {layout!r} disagrees with {which}, a {other} graph (inputs "
                                  f"{_shown(got_in)}): {FIX}")
        raise EdgeTicketError(f"{f.where}: input.name, layout and lif.layers disagree with {which}: "
                              f"{_first_difference('input', want_in, got_in)}: {FIX}")
    x = sig.inputs[0]
    if x.dims is None or len(x.dims) != 4 or x.elem_type not in (0, onnx_graph.FLOAT) or \
            any(x.static(i) is not None and x.static(i) != shape[i] for i in (1, 2, 3)):
        raise EdgeTicketError(f"{f.where}: input.shape {_shown(shape)} disagrees with {which}'s input "
                              f"{x.name} {_shown(x.dims)}: {FIX}")
    for i, (v, s) in enumerate(zip(sig.inputs[1:], states)):
        if v.dims is None or len(v.dims) != len(s) + 1 or \
                any(v.static(j + 1) is not None and v.static(j + 1) != d for j, d in enumerate(s)):
            raise EdgeTicketError(f"{f.where}: lif.state_shapes[{i}] {_shown(s)} disagrees with {which}'s input "
                                  f"{v.name} {_shown(v.dims)}: {FIX}")
    if got_out != want_out:
        raise EdgeTicketError(f"{f.where}: layout, lif.layers and the layers fed by spikes disagree with {which}: "
                              f"{_first_difference('output', want_out, got_out)}: {FIX}")
    logits = sig.outputs[0]
    if logits.dims is None or len(logits.dims) != 2 or logits.static(1) not in (None, K):
        raise EdgeTicketError(f"{f.where}: num_classes {K} disagrees with {which}'s output {logits.name} "
                              f"{_shown(logits.dims)}: {FIX}")
    if layout == "time-folded":
        for v in sig.outputs[1:]:
            if v.static(0) not in (None, T):
                raise EdgeTicketError(f"{f.where}: timesteps {T} disagrees with {which}'s output {v.name} "
                                      f"{_shown(v.dims)} (T first): {FIX}")
    props = onnx_metadata.read(path)
    for key, mine in ((onnx_metadata.TIMESTEPS, T), (onnx_metadata.LAYOUT, layout),
                      (onnx_metadata.NUM_CLASSES, K), (onnx_metadata.INPUT_NAME, m["input"]["name"]),
                      (onnx_metadata.INPUT_SHAPE, list(shape[1:]))):
        if key not in props:
            continue  # compiled before the graph described itself
        try:
            theirs = json.loads(props[key]) if key in onnx_metadata.JSON_KEYS else props[key]
        except ValueError:
            theirs = props[key]
        if key == onnx_metadata.INPUT_SHAPE:
            theirs = theirs[1:] if isinstance(theirs, list) else theirs
        if theirs != mine or isinstance(theirs, bool):
            field = key[len(onnx_metadata.PREFIX):]
            raise EdgeTicketError(f"{f.where}: {field} {_shown(mine)} disagrees with {path.name}, compiled with "
                                  f"{field} {_shown(theirs)}: {FIX}")


def _first_difference(what: str, want: list, got: list) -> str:
    for i, (w, g) in enumerate(zip(want, got)):
        if w != g:
            return f"its {what} {i} is {_shown(g)}, the manifest implies {_shown(w)}"
    return f"it has {len(got)} {what}s, the manifest implies {len(want)}"


def _model_sha_first(bundle_dir: Path, m: dict) -> None:
    """Raise the sha256 error when model.onnx differs from its listed digest (verify's message, for a graph that
    fails its check because the file itself was altered)."""
    try:
        files = checked_files(bundle_dir, m.get("files"), f"{Path(bundle_dir) / names.MANIFEST}")
    except EdgeTicketError:
        return
    if names.MODEL in files:
        store.verify_sha256(Path(bundle_dir) / names.MODEL, files[names.MODEL], f"bundle file {names.MODEL}",
                            fix="copy the whole bundle folder again, or re-compile it")
