"""The library surface: one function per command (notebooks and scripts use these; cli.py only parses options,
calls them and prints). The device commands (targets, inspect, check, predict, profile) need the base install
only; search, compile, experiment and report need the [search] extra and say so in one line when it is missing."""

from __future__ import annotations

from pathlib import Path

from .errors import EdgeTicketError, require_extra


def search(cfg, out: str | Path = "runs", device: str = "auto", quiet: bool = False) -> dict:
    """Run (or resume) a lottery-ticket search (cfg: hparams.SearchConfig); returns the run summary (also written
    to the run folder)."""
    require_extra("search", "edgeticket search")
    from .search.runner import run_search

    return run_search(cfg, Path(out), device=device, quiet=quiet)


def load_run_config(run_dir: str | Path):
    """The settings of an existing run folder (for `edgeticket search --resume RUN_DIR`)."""
    from . import store
    from .formats import names
    from .hparams import SearchConfig

    return SearchConfig.from_dict(store.read_json(Path(run_dir) / names.RUN_JSON, "run.json")["hparams"])


def load_ticket(ticket_dir: str | Path, verify: bool = True):
    """(model, mask, info) of a finished ticket folder; sha256s are checked."""
    require_extra("search", "loading a ticket's network")
    from .compile.ticket_source import load

    return load(Path(ticket_dir), verify=verify)


def compile_ticket(ticket_dir: str | Path, target: str, out: str | Path = "bundles", layout: str = "auto",
                   weights: str = "fp32", storage: str = "packed", batch: int = 1,
                   validation_data: str | None = None, validation_n: int = 64, opset: int | None = None,
                   force: bool = False, log=print, name: str | None = None, data_dir: str | None = None,
                   backend: str = "auto", calibration_dir: str | Path | None = None, timesteps: int | None = None,
                   dt: float | None = None) -> dict:
    """Compile a ticket folder (or a run folder: its final ticket), or a NIR file (with `timesteps`, `dt` and
    `validation_data`), into a bundle for a target; returns the manifest (bundle_dir added). `name` overrides the bundle folder name (default <target>_<arch>_<id>)."""
    require_extra("search", "edgeticket compile")
    from .compile.build import CompileSettings
    from .compile.build import compile_ticket as build

    settings = CompileSettings(layout=layout, weights=weights, storage=storage, batch=batch,
                               validation_n=validation_n, opset=opset, backend=backend)
    return build(ticket_dir, target, out=out, settings=settings, validation_data=validation_data, force=force,
                 log=log, name=name, data_dir=data_dir, calibration_dir=calibration_dir, nir_timesteps=timesteps,
                 nir_dt=dt)


def export_ticket(ticket_dir: str | Path, out: str | Path, fmt: str = "nir", dt: float | None = None,
                  log=print) -> dict:
    """Write a ticket (or a run folder's final ticket) as a NIR graph file (compile/nir_export.py): masked weights,
    BatchNorm folded, neurons in NIR's conventions with the Euler step dt. Returns what was written."""
    require_extra("search", "edgeticket export")
    from .compile.nir_export import DEFAULT_DT, export_nir
    from .compile.supported import check_supported
    from .compile.ticket_source import load, resolve_ticket_dir

    if fmt != "nir":
        raise EdgeTicketError(f"--format {fmt!r}: edgeticket exports nir")
    try:
        import nir  # noqa: F401
    except ImportError:
        raise EdgeTicketError("edgeticket export --format nir needs the nir package: pip install nir==1.0.8") from None
    dt = DEFAULT_DT if dt is None else float(dt)
    if not dt > 0:
        raise EdgeTicketError(f"--dt must be a positive number of seconds (got {dt})")
    out = Path(out)
    if out.is_dir():
        raise EdgeTicketError(f"--out {out} is a folder: give the file to write, e.g. {out / 'ticket.nir'}")
    ticket_dir = resolve_ticket_dir(ticket_dir, log)
    model, _, info = load(ticket_dir, verify=True)
    check_supported(model)
    result = export_nir(model, tuple(info["dataset"]["input_shape"]), out, dt)
    return result | {"ticket": str(ticket_dir), "arch": info["arch"]}


def targets() -> list:
    """Every target board (device.targets.Target), the user's folders first, then the packaged ones."""
    from .device.targets import load_all

    return load_all()


def inspect(bundle_dir: str | Path, html: str | Path | None = None) -> dict:
    """A bundle's manifest, its files' sha256s checked, with bundle_dir and onnx_metadata (model.onnx's
    metadata_props, formats/onnx_metadata.py) added. html: also write the bundle's page there (one self-contained
    file: sparsity per layer, memory vs budget, spike rates, backend latencies of its profiles); its path is
    returned as "html"."""
    from .formats import bundle, names, onnx_metadata

    m = bundle.load(Path(bundle_dir))
    m["bundle_dir"] = str(bundle_dir)
    m["onnx_metadata"] = onnx_metadata.read(Path(bundle_dir) / names.MODEL)  # model.onnx's metadata_props
    if html:
        from . import store
        from .device.bundle_page import inspect_html, load_profiles, usable_profiles

        page = inspect_html(m, usable_profiles(m, load_profiles(bundle_dir)))
        m["html"] = str(store.write_text(Path(html), page))
    return m


def machine() -> dict:
    """What this machine is: edgeticket's version, CPU architecture (as targets name it), CPU, cores, memory,
    Python, runtimes, and whether it runs under an emulator (`profile --host` asks a board this first)."""
    from . import __version__
    from .device import machine as facts
    from .errors import missing_extra
    from .formats import bundle

    f = facts.facts()
    return {"edgeticket": __version__, "arch": facts.machine_arch(), **f, "emulated": f["emulator"] is not None,
            "tvm_runtime": not missing_extra("tvm"), "bundle_format_version": bundle.FORMAT_VERSION}


def profile(bundle_dir: str | Path, backend: str | None = None, calibrate: bool = False, target: str | None = None,
            calibration_dir: str | Path | None = None, out: str | Path | None = None, log=print,
            board=None, **settings) -> dict:
    """Measure a bundle on this machine with one backend (default: the one the bundle records as its default,
    where it runs here; onnxruntime for calibrate), or with `all` of those it carries for this machine (each in its
    own process, side by side). settings: the fields of device.profile.run.ProfileSettings (runs,
    warmup, batch, threads, random_inputs); calibrate/target/calibration_dir take one backend.
    board: a device.remote.Board (or "[user@]host[:port]") to profile on over ssh instead of here; the profile
    comes back beside the bundle and, with calibrate, the record into this machine's calibration store."""
    from .device.profile import run

    measure = run.ProfileSettings(**settings)
    if board is not None:
        return _profile_on_board(bundle_dir, board, measure, backend, calibrate, target, calibration_dir, out, log)
    if backend != "all":
        return run.profile(bundle_dir, measure, backend=backend, calibrate=calibrate, target=target,
                           calibration_dir=calibration_dir, out=out, log=log)
    from .device import runners
    from .formats import bundle

    if calibrate or target:
        raise EdgeTicketError("--backend all does not take --calibrate or --target: profile one backend for that")
    measure.check()
    names = runners.available(bundle.load(Path(bundle_dir)))
    return run.profile_backends(bundle_dir, names, measure, out=out, log=log)


def _profile_on_board(bundle_dir, board, measure, backend, calibrate, target, calibration_dir, out, log) -> dict:
    from .device import remote, runners
    from .formats import bundle

    if isinstance(board, str):
        board = remote.Board.parse(board)
    measure.check()
    if target is not None:  # known here too: the calibration record comes home under its name
        from .device.targets import load_target

        load_target(target)
    if backend is None and calibrate:
        backend = "onnxruntime"
    if backend not in (None, "all"):
        runners.check_backend(backend)
    if calibrate and backend != "onnxruntime":
        raise EdgeTicketError("--calibrate takes --backend onnxruntime")
    calibrate_target = (target or bundle.read_manifest(Path(bundle_dir))["target"]["name"]) if calibrate else None
    chosen = ("--backend", backend) if backend else ()  # none: the board runs the bundle's default where it can
    request = remote.BoardProfile(profile_args=(*chosen, *measure.cli_args()), backend=backend,
                                  calibrate_target=calibrate_target, target=target, calibration_dir=calibration_dir,
                                  out=out)
    return remote.profile(bundle_dir, board, request, log)


def predict(bundle_dir: str | Path, target: str, batch: int = 1, calibration_dir: str | Path | None = None) -> dict:
    """Latency and memory of a bundle on a target, from the target's newest calibration record (or its datasheet
    roofline: `latency.calibrated` is then False)."""
    from .device import calibration
    from .device.profile.predict import predict_latency, predict_memory
    from .device.targets import load_target
    from .formats import bundle

    if batch < 1:
        raise EdgeTicketError("--batch must be >= 1")
    m = bundle.load(Path(bundle_dir))
    t = load_target(target)
    rec = calibration.newest_record(t.name, calibration_dir)
    mem = predict_memory(m, rec)
    mem["budget_bytes"] = t.model_budget_bytes
    return {"bundle": str(bundle_dir), "target": t.name, "latency": predict_latency(m, batch, t, rec), "memory": mem}


def check(bundle_dir: str | Path, target: str, calibration_dir: str | Path | None = None) -> dict:
    """Does the bundle's memory plan fit the target's model budget? Answers from the manifest alone."""
    from .device import calibration
    from .device.profile.predict import predict_memory
    from .device.targets import load_target
    from .formats import bundle

    m = bundle.read_manifest(Path(bundle_dir))
    t = load_target(target)
    mem = predict_memory(m, calibration.newest_record(t.name, calibration_dir))
    return {"bundle": str(bundle_dir), "target": t.name, "fits": mem["total_bytes"] <= t.model_budget_bytes,
            "total_bytes": mem["total_bytes"], "budget_bytes": t.model_budget_bytes, "batch": mem["batch"],
            "layout": m["layout"], "weights": m["weights"]["format"]}


def experiment(config: str | Path, log=print, **settings) -> dict:
    """Run the searches of a TOML experiment config (settings: out, device, quiet, data_dir, dry_run)."""
    require_extra("search", "edgeticket experiment")
    from .experiment import run

    return run(config, log=log, **settings)


def report_page(folders: list, html: str | Path) -> Path:
    """The results page (one self-contained HTML file: accuracy vs sparsity, the ticket against its controls,
    per-layer sparsity, search cost) of run and experiment folders; needs the base install only."""
    from .results_page import write_report_html

    return write_report_html([str(d) for d in folders], html)


def report(folders: list, out: str | Path = "docs/results.md") -> dict:
    """The results report (markdown at `out` + PNG plots beside it) of run folders (run.json + level_*/) and
    experiment folders (experiment.json), in any mix. Returns its facts (JSON-able; sparsity and accuracy as
    fractions): {format_version, kind: "report", out, figures, inputs: [{kind, name, dir, config, groups: [{label,
    method, early_time, seeds, runs, finished, levels, final, search_cost, early_time_T, conclusions}],
    comparisons}]}; every conclusion is {kind, ..., text} (results.py)."""
    require_extra("search", "edgeticket report")
    from .results import report as write

    command = "edgeticket report " + " ".join(str(d) for d in folders) + f" --out {out}"
    return write([str(d) for d in folders], str(out), command)
