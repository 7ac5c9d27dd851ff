"""edgeticket compile: ticket folder -> bundle folder (docs/bundle-format.md)."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .. import console, store
from ..device import calibration
from ..device.runners.onnx_runner import OnnxRunner, make_session
from ..device.targets import Target, load_target
from ..errors import EdgeTicketError
from ..formats import bundle as bundle_fmt
from ..formats import names
from ..formats.ticket import versions
from . import metadata, tensorrt
from .deploy import LAYOUTS, layer_table, lif_layers, state_shapes, to_deploy, v_init
from .memory_plan import mib, plan
from .onnx_export import DEFAULT_OPSET, export
from .packing import STORAGES, WEIGHT_FORMATS, dequantize, storage_summary
from .supported import check_supported
from .ticket_source import load as load_ticket
from .ticket_source import resolve_ticket_dir
from .validate import Nets, validate

INT8_MAX_DROP = 0.02  # top-1 lost on the validation samples, a fraction (2 points)

# The lowest ONNX opset each storage and weight format exports to (measured: the deploy graph needs 11; the packed
# decode's Max on int32 needs 12, as do fp16 values; int8's per-channel DequantizeLinear (axis) needs 13).
MIN_OPSET = {"storage": {"dense": 11, "sparse-initializer": 11, "packed": 12},
             "weights": {"fp32": 11, "fp16": 12, "int8": 13}}


def min_opset(settings: "CompileSettings") -> int:
    return max(MIN_OPSET["storage"].get(settings.storage, 11), MIN_OPSET["weights"].get(settings.weights, 11))


def exporter_max_opset() -> int:
    """The highest opset torch's exporter writes (and onnx knows)."""
    import onnx

    try:
        from torch.onnx._constants import ONNX_MAX_OPSET
    except ImportError:  # pragma: no cover - torch moved it
        ONNX_MAX_OPSET = 20
    return min(int(ONNX_MAX_OPSET), onnx.defs.onnx_opset_version())


@dataclass(frozen=True)
class CompileSettings:
    layout: str = "auto"  # auto | time-folded | streaming
    weights: str = "fp32"  # fp32 | fp16 | int8
    storage: str = "packed"  # packed | sparse-initializer | dense
    batch: int = 1  # batch size the memory plan is made for (the graph accepts any batch)
    validation_n: int = 64  # validation samples stored in the bundle and compared spike for spike
    opset: int | None = None  # default: min(17, target's max_opset)
    backend: str = "auto"  # auto | both | all | comma list of onnxruntime, event, tvm (compile.backends)

    def check(self, target: Target | None = None) -> None:
        """Each setting on its own, and --opset against what the storage, weights, exporter (and target) take."""
        if self.layout not in ("auto", *LAYOUTS):
            raise EdgeTicketError(f"unknown layout '{self.layout}'; valid: auto, {', '.join(LAYOUTS)}")
        if self.weights not in WEIGHT_FORMATS:
            raise EdgeTicketError(f"unknown weight format '{self.weights}'; valid: {', '.join(WEIGHT_FORMATS)}")
        if self.storage not in STORAGES:
            raise EdgeTicketError(f"unknown storage '{self.storage}'; valid: {', '.join(STORAGES)}")
        if self.storage == "dense" and self.weights != "fp32":
            raise EdgeTicketError("--storage dense stores fp32 only; use --storage packed for fp16/int8")
        for option, value in (("--batch", self.batch), ("--validation-n", self.validation_n)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise EdgeTicketError(f"{option} must be >= 1 (got {value!r})")
        if self.opset is not None:
            lo, hi = min_opset(self), exporter_max_opset()
            hi = min(hi, target.max_opset) if target is not None else hi
            if not isinstance(self.opset, int) or isinstance(self.opset, bool) or not lo <= self.opset <= hi:
                on = f" on {target.name} (max_opset {target.max_opset})" if target is not None else ""
                raise EdgeTicketError(f"--opset must be an integer in [{lo}, {hi}] for --storage {self.storage} "
                                      f"--weights {self.weights}{on} (got {self.opset!r})")
        from .backends import parse

        parse(self.backend)


def validation_samples(info: dict, n: int, validation_data: str | None,
                       data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """N inputs (normalised like the ticket's training data) with labels: from --validation-data (an .npz with x
    [N, C, H, W] normalised float32 and optionally y) or the first N test images of the ticket's dataset."""
    shape = tuple(info["dataset"]["input_shape"])
    if validation_data:
        p = Path(validation_data)
        try:
            z = np.load(p, allow_pickle=False)
            x = z["x"].astype(np.float32)
            y = z["y"].astype(np.int64) if "y" in z.files else np.full(len(x), -1, np.int64)
        except (OSError, KeyError, ValueError) as e:
            raise EdgeTicketError(f"--validation-data {p}: expected an .npz with x [N, C, H, W] (and y) ({e})") from None
        if tuple(x.shape[1:]) != shape:
            raise EdgeTicketError(f"--validation-data {p}: x has samples of shape {tuple(x.shape[1:])}, the ticket takes {shape}")
        return x[:n], y[:n]
    from .. import data
    from ..hparams import SearchConfig

    dhp = SearchConfig.from_dict(info["hparams"]).data
    if data_dir is not None:
        import dataclasses

        dhp = dataclasses.replace(dhp, data_dir=data_dir)
    try:
        ds = data.load(dhp)
    except EdgeTicketError as e:
        raise EdgeTicketError(f"validation inputs: the ticket's dataset cannot be loaded ({e}); pass --data-dir "
                              "where it is now, or --validation-data an .npz with x (and y)") from None
    return ds.x_test[:n].numpy(), ds.y_test[:n].numpy()


def _reference(deploy: torch.nn.Module, prunable: list[str], fmt: str) -> torch.nn.Module:
    """The deploy net with its prunable weights exactly as the bundle stores them (fp16/int8 rounding)."""
    if fmt == "fp32":
        return deploy
    ref = copy.deepcopy(deploy)
    sd = ref.state_dict()
    with torch.no_grad():
        for n in prunable:
            sd[n].copy_(torch.from_numpy(dequantize(sd[n].numpy(), fmt)))
    return ref


def bundle_id(ticket_json_sha: str, settings: CompileSettings, target: Target, layout: str, opset: int) -> str:
    key = json.dumps({"ticket": ticket_json_sha, "settings": asdict(settings), "layout": layout, "opset": opset,
                      "target": store.sha256_file(target.path)}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _build(deploy, model_layout, info, prunable, settings, opset):
    T = int(info["timesteps"]["deploy"])
    shape = tuple(info["dataset"]["input_shape"])
    proto, layers, graph_stats = export(deploy, model_layout, T, shape, opset, prunable, settings.storage,
                                        settings.weights)
    summary = storage_summary(layers)
    summary["graph"] = graph_stats
    return proto, summary


def _plan_for(deploy, layout, info, settings, storage, file_bytes, target, overhead):
    return plan(deploy, layout, int(info["timesteps"]["deploy"]), settings.batch,
                tuple(info["dataset"]["input_shape"]), settings.weights, storage, file_bytes,
                target.model_budget_bytes, overhead)


def _alternatives(model, info, prunable, settings, target, overhead, opset) -> list[str]:
    """What would fit instead (each alternative actually planned)."""
    tries = []
    for layout in LAYOUTS:
        for weights in ("fp32", "int8"):
            for batch in sorted({settings.batch, 1}):
                s = CompileSettings(layout, weights, "packed", batch, settings.validation_n, settings.opset)
                if (layout, weights, batch) == (settings.layout, settings.weights, settings.batch) or \
                        min_opset(s) > opset:
                    continue
                tries.append(s)
    # least intrusive first: keep the batch, then the layout, then the weight format
    tries.sort(key=lambda s: (s.batch != settings.batch, s.layout != settings.layout, s.weights != settings.weights))
    fits = []
    for s in tries:
        deploy = to_deploy(model, tuple(info["dataset"]["input_shape"]))
        proto, storage = _build(deploy, s.layout, info, prunable, s, opset)
        p = _plan_for(deploy, s.layout, info, s, storage, len(proto.SerializeToString()), target, overhead)
        if p["fits"]:
            fits.append(f"--layout {s.layout} --weights {s.weights}" + (f" --batch {s.batch}" if s.batch != settings.batch
                                                                         else "") + f" ({mib(p['total_bytes'])})")
    return fits


def refuse_failed_stages(model, result: dict) -> None:
    """Stages A and B of the validation (validate.py): one line naming where the bundle parts from the model."""
    a, b = result["ticket_vs_deploy"], result["folding"]
    if not a["spikes_equal"]:
        mm = a["first_mismatch"]
        kind = type(model.get_submodule(mm["layer"])).__name__
        raise EdgeTicketError(f"validation failed: the bundle parts from your model at {mm['layer']} ({kind}), "
                              f"timestep {mm['timestep']}, sample {mm['sample']} ({mm['got']:g} vs {mm['expected']:g} "
                              "spikes): edgeticket's deploy net computes another network; report it with the ticket")
    if not a["logits_ok"]:
        raise EdgeTicketError(f"validation failed: the bundle's logits differ from your model's by "
                              f"{a['logits_max_abs_diff']:.3g} with equal spikes; report it with the ticket")
    if not b["rounding_flips_only"]:
        mm = b["first_divergence"]
        raise EdgeTicketError(f"validation failed: folding BatchNorm changes spikes at {mm['layer']}, timestep "
                              f"{mm['timestep']}, sample {mm['sample']} by more than rounding (a membrane "
                              f"{b['max_distance_to_threshold']:.3g} from the threshold flips); report it with the "
                              "ticket")


def open_source(path, log, nir_timesteps, nir_dt, validation_data):
    """(path, model, mask, info, sha256 of ticket.json or of the NIR file) of what compile starts from."""
    p = Path(path)
    if p.is_file() and p.suffix != ".nir":
        raise EdgeTicketError(f"{p} is a file: compile takes a ticket folder, a run folder or a .nir file")
    if p.suffix == ".nir":
        from .nir_export import DEFAULT_DT
        from .nir_source import load as load_nir

        if not p.is_file():
            raise EdgeTicketError(f"NIR file {p} not found")
        if nir_timesteps is None or validation_data is None:
            raise EdgeTicketError(f"{p} is a NIR file: pass --timesteps T (how many steps an inference runs) and "
                                  "--validation-data an .npz with x [N, C, H, W] (normalised as the network expects)")
        dt = DEFAULT_DT if nir_dt is None else float(nir_dt)
        if not (1 <= int(nir_timesteps) <= 65536) or not dt > 0:
            raise EdgeTicketError(f"--timesteps must be in [1, 65536] and --dt a positive step in seconds (got "
                                  f"{nir_timesteps}, {dt:g})")
        model, mask, info, sha = load_nir(p, int(nir_timesteps), dt)
        return p, model, mask, info, sha
    if nir_timesteps is not None or nir_dt is not None:
        raise EdgeTicketError("--timesteps and --dt are for a NIR file; a ticket compiles at the T it was trained at")
    ticket_dir = resolve_ticket_dir(p, log)
    model, mask, info = load_ticket(ticket_dir, verify=True)
    return ticket_dir, model, mask, info, store.sha256_file(ticket_dir / names.TICKET_JSON)


def compile_ticket(ticket_dir: str | Path, target_name: str, out: str | Path = "bundles",
                   settings: CompileSettings = CompileSettings(), validation_data: str | None = None,
                   force: bool = False, log=print, name: str | None = None, data_dir: str | None = None,
                   calibration_dir: str | Path | None = None, nir_timesteps: int | None = None,
                   nir_dt: float | None = None) -> dict:
    """A ticket folder (or a run folder: its final ticket), or a NIR file (nir_source.py; nir_timesteps and nir_dt
    apply to it alone), into a validated bundle."""
    target = load_target(target_name)
    settings.check(target)
    ticket_dir, model, mask, info, ticket_sha = open_source(ticket_dir, log, nir_timesteps, nir_dt, validation_data)
    check_supported(model)  # one line naming a layer compile cannot export, before any work
    prunable = list(mask)
    opset = settings.opset if settings.opset is not None else min(DEFAULT_OPSET, target.max_opset)
    if opset < min_opset(settings):  # the default, below the storage's lowest (a given --opset was checked above)
        raise EdgeTicketError(f"{target.name}'s max_opset {target.max_opset} is below opset {min_opset(settings)}, the "
                              f"lowest --storage {settings.storage} --weights {settings.weights} exports to; use "
                              "--storage dense --weights fp32 (opset 11), or a target file with a higher max_opset")
    overhead = None
    rec = calibration.newest_record(target.name, calibration_dir)
    if rec and rec.get("runtime_overhead_bytes"):
        overhead = int(rec["runtime_overhead_bytes"])

    # plan the requested layout, or pick one: time-folded if it fits, else streaming
    candidates = [settings.layout] if settings.layout != "auto" else list(LAYOUTS)
    chosen = None
    for layout in candidates:
        deploy = to_deploy(model, tuple(info["dataset"]["input_shape"]))
        proto, storage = _build(deploy, layout, info, prunable, settings, opset)
        metadata.attach(proto, metadata.props(info, ticket_sha=ticket_sha, layout=layout, target=target.name,
                                              bundle_id=bundle_id(ticket_sha, settings, target, layout, opset),
                                              weight_format=settings.weights, storage=settings.storage,
                                              neurons=[asdict(l.spec) for l in lif_layers(deploy)],
                                              data_dir=data_dir))  # the graph's self-description
        data = proto.SerializeToString()
        mplan = _plan_for(deploy, layout, info, settings, storage, len(data), target, overhead)
        chosen = (layout, deploy, data, storage, mplan)
        if mplan["fits"]:
            break
    layout, deploy, data, storage, mplan = chosen
    warnings = []
    if not mplan["fits"]:
        msg = (f"{ticket_dir} does not fit {target.name}'s model budget: plan {mib(mplan['total_bytes'])} "
               f"(weights {mib(mplan['weights_resident_bytes'])}, activations {mib(mplan['activation_peak_bytes'])}, "
               f"state {mib(mplan['state_bytes'])}, runtime {mib(mplan['runtime_overhead_bytes'])}, load peak "
               f"{mib(mplan['load_peak_bytes'])}) > budget {mib(target.model_budget_bytes)}")
        if not force:
            alts = _alternatives(model, info, prunable, CompileSettings(layout, settings.weights, settings.storage,
                                 settings.batch, settings.validation_n, settings.opset), target, overhead, opset)
            hint = ("would fit: " + "; ".join(alts)) if alts else "no layout/int8/batch-1 variant fits either"
            raise EdgeTicketError(f"{msg}; {hint}. A sparser level of the run shrinks the file, not the RAM "
                                  "onnxruntime holds (weights are dense after load); --force compiles anyway")
        warnings.append("over budget, compiled with --force: " + msg)
        log("warning: " + msg)

    # spike-exact validation against the PyTorch deploy network with the bundle's exact weights
    x, y = validation_samples(info, settings.validation_n, validation_data, data_dir)
    runner = OnnxRunner(make_session(data), layout, int(info["timesteps"]["deploy"]), v_init=v_init(deploy))
    ref = _reference(deploy, prunable, settings.weights)
    unfolded = to_deploy(model, tuple(info["dataset"]["input_shape"]), fold=False)
    result = validate(Nets(model, unfolded, deploy, ref), runner, x, y, int(info["timesteps"]["deploy"]), layout)
    refuse_failed_stages(model, result)
    if settings.weights != "fp32":
        fproto, _ = _build(to_deploy(model, tuple(info["dataset"]["input_shape"])), layout, info, prunable,
                           CompileSettings(layout, "fp32", "packed", settings.batch, settings.validation_n), opset)
        fp32_runner = OnnxRunner(make_session(fproto.SerializeToString()), layout, int(info["timesteps"]["deploy"]),
                                 v_init=v_init(deploy))
        fl, _ = fp32_runner.run(x, with_counts=False)
        ql, _ = runner.run(x, with_counts=False)
        has_labels = bool((y >= 0).all())
        acc_fp32 = float((fl.argmax(1) == y).mean()) if has_labels else None  # fractions, as in the manifest
        acc_q = float((ql.argmax(1) == y).mean()) if has_labels else None
        agree = float((fl.argmax(1) == ql.argmax(1)).mean())
        result["quantization"] = {"format": settings.weights, "accuracy_fp32": acc_fp32, "accuracy": acc_q,
                                  "prediction_agreement_with_fp32": agree, "max_drop": INT8_MAX_DROP}
        drop = (acc_fp32 - acc_q) if has_labels else (1.0 - agree)
        result["quantization"]["passed"] = bool(drop <= INT8_MAX_DROP + 1e-9)
        if not result["quantization"]["passed"]:
            raise EdgeTicketError(f"{settings.weights} weights lose {100 * drop:.2f} points of top-1 on the {len(x)} "
                                  f"validation samples (limit {100 * INT8_MAX_DROP:g}); use --weights fp32 or fp16")
    if not result["spikes_equal"]:  # stage C
        mm = result["first_mismatch"]
        raise EdgeTicketError(f"validation failed: onnxruntime spikes differ from PyTorch at layer {mm['layer']}, "
                              f"timestep {mm['timestep']}, sample {mm['sample']} ({mm['got']} vs {mm['expected']})")
    if not result["logits_ok"]:
        raise EdgeTicketError(f"validation failed: logits differ by {result['logits_max_abs_diff']:.3g} "
                              f"(> 1e-4 x {result['logits_scale']:.3g})")

    bid = bundle_id(ticket_sha, settings, target, layout, opset)
    name = name or f"{target.name}_{names.slug(info['arch'])}_{bid}"
    if "/" in name or name.startswith("."):
        raise EdgeTicketError(f"--name must be a plain folder name, got '{name}'")
    final = Path(out) / name
    with store.FolderLock(final, "compile", fix="wait for it to finish, or pass another --out or --name"):
        store.remove_stale_temps(Path(out), prefix=f".{name}.")  # left by a killed compile or an interrupted swap
        tmp = store.temp_dir(Path(out), prefix=f".{name}.")
        try:
            return _finish(tmp, final, log, settings=settings, deploy=deploy, ref=ref, info=info, target=target, x=x,
                           y=y, runner=runner, layout=layout, storage=storage, mplan=mplan, result=result,
                           warnings=warnings, ticket_dir=ticket_dir, ticket_sha=ticket_sha, bid=bid, opset=opset,
                           rec=rec, data=data)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _build_backends(settings, deploy, info, target, x, runner, layout, storage, onnx_bytes, tmp, log) -> tuple[dict, dict]:
    """(manifest.backends record, {bundle-relative path: file written under tmp})."""
    from . import backends as be

    wanted, explicit = be.parse(settings.backend)
    out = {"requested": settings.backend, "onnxruntime": {"built": True, "file": names.MODEL}}
    files: dict[str, Path] = {}
    if "event" in wanted:
        ort_logits, ort_counts = runner.run(x)
        try:
            rec, f = be.build_event(deploy, info, target, x, ort_logits, ort_counts, layout, tmp, storage, log)
            out["event"] = rec
            files.update(f)
        except be.Unsupported as e:
            if explicit:
                raise EdgeTicketError(f"--backend event: {e}; use --backend onnxruntime") from None
            out["event"] = {"built": False, "reason": str(e), "skipped_layers": e.layers}
            log(f"note: event backend skipped: {e}")
        except EdgeTicketError as e:
            if explicit:
                raise
            out["event"] = {"built": False, "reason": str(e)}
            log(f"note: event backend skipped: {e}")
    if "tvm" in wanted:
        from .tvm_build import build_tvm

        try:
            with console.native_output("tvm"):  # TVM's C++ log: shown with -v only
                rec, f = build_tvm(tmp, target, onnx_bytes, layout, x, runner, log)
            out["tvm"] = rec
            files.update(f)
        except Exception as e:  # noqa: BLE001 - a TVM internal error is one line here, not a traceback
            if isinstance(e, EdgeTicketError):
                msg = str(e)
            else:
                last = (str(e).strip().splitlines() or [""])[-1][:200]
                msg = f"TVM failed to build this graph ({type(e).__name__}: {last}); use --backend onnxruntime"
            if explicit:
                raise EdgeTicketError(msg) from None
            out["tvm"] = {"built": False, "reason": msg}
            log(f"note: TVM backend skipped: {msg}")
    return out, files


def _finish(tmp, final, log, *, settings, deploy, ref, info, target, x, y, runner, layout, storage, mplan, result, warnings,
            ticket_dir, ticket_sha, bid, opset, rec, data):
    """Everything after validation, written into the temp folder `tmp` that is renamed to `final` at the end."""
    # the event backend computes with the weights exactly as the bundle holds them (fp16/int8 rounding)
    backends, backend_files = _build_backends(settings, ref, info, target, x, runner, layout, storage, data, tmp, log)
    manifest = {
        "format_version": bundle_fmt.FORMAT_VERSION,
        "kind": "bundle",
        "id": bid,
        "source_ticket": {"dir": str(ticket_dir), "ticket_json_sha256": ticket_sha, "run": info.get("run"),
                          "level": info.get("level"), "branch": info.get("branch"),
                          "sparsity": info["sparsity"]["global"], "accuracy": info["accuracy"]},
        "arch": info["arch"],
        "target": {"name": target.name, "file_sha256": store.sha256_file(target.path),
                   "model_budget_bytes": target.model_budget_bytes, "ram_bytes": target.ram_bytes,
                   "providers": list(target.providers)},
        "layout": layout,
        "timesteps": int(info["timesteps"]["deploy"]),
        "input": {"name": "input", "shape": ["batch", *info["dataset"]["input_shape"]], "dtype": "float32",
                  "mean": info["dataset"]["mean"], "std": info["dataset"]["std"],
                  "note": "scale pixels to [0, 1], then (x - mean) / std per channel"},
        "num_classes": info["dataset"]["num_classes"],
        "outputs": {"logits": "summed over T (time-folded) or of one step (streaming: sum T calls)",
                    "spikes": "spikes__<layer>: counts per timestep per sample"},
        "lif": {"tau": lif_layers(deploy)[0].spec.tau, "v_threshold": lif_layers(deploy)[0].spec.v_threshold,
                "layers": runner.layers,
                "state_shapes": [list(s) for s in state_shapes(deploy, tuple(info["dataset"]["input_shape"]))],
                "neurons": [asdict(l.spec) for l in lif_layers(deploy)]},
        "weights": {"format": settings.weights, "storage": settings.storage,
                    **{k: v for k, v in storage.items() if k != "graph"}},
        "graph": storage["graph"],
        "layers": layer_table(deploy, tuple(info["dataset"]["input_shape"]), int(info["timesteps"]["deploy"])),
        "opset": opset,
        "memory_plan": mplan,
        "budget_check": {"fits": mplan["fits"], "total_bytes": mplan["total_bytes"],
                         "budget_bytes": target.model_budget_bytes, "forced": bool(warnings)},
        "validation": result,
        "settings": asdict(settings),
        "warnings": warnings,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": _versions(),
    }
    from ..device.profile.predict import predict_latency

    pred = predict_latency(manifest, settings.batch, target, rec)
    manifest["prediction"] = {"latency_s": pred["latency_s"], "batch": settings.batch, "source": pred["source"],
                              "calibrated": pred["calibrated"]}
    if not pred["calibrated"]:
        log(f"note: no calibration record for {target.name}: latency predicted from its datasheet roofline "
            f"({1000 * pred['latency_s']:.3g} ms, an optimistic lower bound)")
    from .backends import built_backends, choose_default

    manifest["backends"] = backends
    manifest["backends"].update(choose_default(manifest, target, rec, log))
    (tmp / names.MODEL).write_bytes(data)
    np.savez(tmp / names.VALIDATION_SAMPLES, x=x, y=y)
    files = [names.MODEL, names.VALIDATION_SAMPLES, *sorted(backend_files)]
    if tensorrt.wanted(target):
        manifest["tensorrt"] = _tensorrt_graph(tmp, data, runner, layout, int(info["timesteps"]["deploy"]), x, log)
        files.append(names.TENSORRT_MODEL)
    manifest["files"] = {f: store.sha256_file(tmp / f) for f in files}
    store.write_json(tmp / names.MANIFEST, manifest)
    bundle_fmt.load(tmp)  # the api validates the folder it wrote
    if target.name == "host" and len(built_backends(manifest)) > 1:  # this machine: the pick is measured
        from .backends import pick_by_measurement

        manifest["backends"].update(pick_by_measurement(tmp, manifest, x))
        store.write_json(tmp / names.MANIFEST, manifest)
    store.replace_dir(tmp, final)  # same id = same inputs and settings: the fresh, validated copy replaces it
    manifest["bundle_dir"] = str(final)
    return manifest


def _tensorrt_graph(tmp: Path, data: bytes, runner, layout: str, timesteps: int, x, log) -> dict:
    """tensorrt/model.onnx: the graph TensorRT's ONNX parser takes (dense weights), spike-exact vs model.onnx."""
    folded = tensorrt.fold_weights(data)
    check = tensorrt.check_equal(folded, runner, layout, timesteps, x)
    if not check["spikes_equal"]:
        raise EdgeTicketError("the TensorRT graph (dense weights) does not reproduce model.onnx's spikes; "
                              "please report this bundle's ticket")
    path = tmp / names.TENSORRT_MODEL
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(folded)
    log(f"TensorRT graph {names.TENSORRT_MODEL}: weights dense ({len(folded):,} B), spikes equal to model.onnx on "
        f"{check['inputs']} inputs")
    return {"file": names.TENSORRT_MODEL, "bytes": len(folded), "op_types": tensorrt.op_types(folded),
            "validation": check,
            "note": "for trtexec --onnx / TensorRT's ONNX parser: model.onnx with the packed-weight decode folded "
                    "into dense float32 weights (BitShift and uint8 tensors are outside TensorRT's ONNX support)"}


def _versions() -> dict:
    return versions(("torch", "spikingjelly", "numpy", "onnx", "onnxruntime"))
