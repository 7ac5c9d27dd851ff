"""`edgeticket` command line. Commands parse options and call edgeticket.api; errors are one line."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import click

from . import console, store
from .errors import EdgeTicketError
from .hparams import SearchConfig, field_type, iter_fields

SEARCH_HELP = """Find lottery tickets in a spiking neural network.

\b
  imp  Iterative Magnitude Pruning: train, prune p of the remaining weights, rewind to an early epoch, retrain.
  eb   Early-Bird: stop dense training once the pruning mask stops changing, then rewind and retrain that ticket.
  --early-time  Early-Time: search (IMP rounds or the EB phase) at a smaller T' picked by KL divergence,
       retrain only the final ticket at the full T. Composes with both methods.

With no options it runs the embedded default: a small VGG on scikit-learn's 8x8 digits, a few IMP rounds,
on CPU in a few minutes. Rerunning the same command resumes where it stopped; finished levels are kept.
Under `torchrun --nproc-per-node N` the same search runs with DistributedDataParallel."""


def _hparam_options(func):
    """Add one click option per SearchConfig field (generated, so CLI and dataclasses never drift)."""
    for section, f in reversed(list(iter_fields())):
        t = field_type(f)
        name = "--" + f.name.replace("_", "-")
        help_text = f.metadata["help"]
        if t is bool:
            opt = click.option(f"{name}/--no-{f.name.replace('_', '-')}", f.name, default=None, help=help_text)
        else:
            ctype = click.Choice(list(f.metadata["choices"])) if f.metadata.get("choices") else t
            shown = f"{f.default:.4g}" if isinstance(f.default, float) else f.default
            opt = click.option(name, f.name, type=ctype, default=None,
                               help=f"{help_text} [default: {shown}]" if f.default is not None else help_text)
        func = opt(func)
    return func


class _Group(click.Group):
    """Turns EdgeTicketError into click's one-line `Error: ...` and its exit code (2): never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgeTicketError as e:
            err = click.ClickException(str(e))
            err.exit_code = e.exit_code
            raise err from None
        except OSError as e:  # a full disk, a read-only or foreign folder: one line naming the path and the cause
            msg = store.write_error_message(e)
            if msg is None:
                raise
            err = click.ClickException(msg)
            err.exit_code = EdgeTicketError.exit_code
            raise err from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="edgeticket")
def main() -> None:
    """edgeticket: lottery tickets for spiking neural networks, from search to the edge device."""


def _outputs(json_help: str = "Print the result as one JSON document on stdout (notes stay on stderr)."):
    """Every command's output options: --json, -q/--quiet (errors only), -v/--verbose (the C++ logs of TVM and
    onnxruntime too). The level holds for the command's child processes and is put back afterwards."""
    def decorate(command):
        @functools.wraps(command)
        def run(*args, quiet, verbose, **kwargs):
            with console.level(quiet=quiet, verbose=verbose):
                return command(*args, **kwargs)

        run = click.option("--verbose", "-v", is_flag=True,
                           help="Also show the runtimes' own logs (TVM, onnxruntime).")(run)
        run = click.option("--quiet", "-q", is_flag=True, help="Errors only (with --json: the JSON only).")(run)
        return click.option("--json", "as_json", is_flag=True, help=json_help)(run)
    return decorate


def _result(obj, human, as_json: bool) -> None:
    """A command's result on stdout: JSON with --json, else the human view (a callable), unless quiet."""
    if as_json:
        click.echo(json.dumps(obj, indent=2))
    elif not console.quiet():
        click.echo(human())


@main.command(help=SEARCH_HELP)
@_hparam_options
@click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]), show_default=True,
              help="Where to train (auto: cuda when available).")
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Folder of run folders (each named by a hash of the non-default settings).")
@click.option("--resume", "resume_dir", default=None, type=click.Path(file_okay=False),
              help="Resume the run in this folder with its recorded settings (rerunning the same command also resumes).")
@_outputs("Print the run summary as JSON on stdout.")
def search(device, out, resume_dir, as_json, **given):
    from . import api

    given = {k: v for k, v in given.items() if v is not None}
    if resume_dir:
        if given:
            raise click.UsageError(f"--resume takes the run's recorded settings; drop {', '.join(sorted(given))}")
        base = api.load_run_config(resume_dir)
        out = str(Path(resume_dir).parent)
        cfg = base
    else:
        flat = {}
        for section, f in iter_fields():
            flat[f.name] = given.get(f.name, f.default)
        cfg = SearchConfig.from_flat(flat)
    summary = api.search(cfg, out=out, device=device, quiet=console.quiet())
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun only rank 0 reports
    from .search.summary import table

    _result(summary, lambda: table(summary), as_json)


CALIBRATION_DIR = click.option(
    "--calibration-dir", default=None, type=click.Path(file_okay=False),
    help="Folder of calibration records (default: $EDGETICKET_CALIBRATION, else $XDG_DATA_HOME/edgeticket/"
         "calibration); the packaged records are read beneath it.")


def _log(m: str) -> None:
    console.note(m)


@main.command("compile")
@click.argument("ticket", type=click.Path())
@click.option("--target", "target_name", required=True, help="Target board (see `edgeticket targets`) or a .toml file.")
@click.option("--out", default="bundles", show_default=True, type=click.Path(file_okay=False),
              help="Folder of bundle folders.")
@click.option("--layout", default="auto", show_default=True,
              type=click.Choice(["auto", "time-folded", "streaming"]),
              help="time-folded: all T steps per call (fastest); streaming: one step per call with explicit "
                   "membrane states (least memory). auto: time-folded if the memory plan fits, else streaming.")
@click.option("--weights", default="fp32", show_default=True, type=click.Choice(["fp32", "fp16", "int8"]),
              help="Stored weight values (int8: symmetric per output channel, validated by accuracy).")
@click.option("--storage", default="packed", show_default=True,
              type=click.Choice(["packed", "sparse-initializer", "dense"]),
              help="packed: values + uint8 gaps or a bitmask, rebuilt by ONNX ops at load; sparse-initializer: "
                   "ONNX's COO sparse_initializer; dense: no compression.")
@click.option("--batch", default=1, show_default=True, type=int, help="Batch size the memory plan is made for.")
@click.option("--validation-data", default=None, type=click.Path(dir_okay=False),
              help="An .npz with x [N, C, H, W] (normalised) and y to validate on, instead of the ticket's dataset.")
@click.option("--data-dir", default=None, help="Where the ticket's dataset is now (if it moved since the search).")
@click.option("--validation-n", default=64, show_default=True, type=int,
              help="Number of validation samples (compared spike for spike, stored in the bundle).")
@click.option("--opset", default=None, type=int, help="ONNX opset (default: min(17, the target's max_opset)).")
@click.option("--backend", default="auto", show_default=True,
              help="What the bundle carries beside model.onnx: auto (onnxruntime + the event-driven backend "
                   "+ the TVM library, each where it applies; skipped ones are noted), both (onnxruntime + tvm), all, "
                   "or a comma list of onnxruntime, event, tvm.")
@click.option("--force", is_flag=True, help="Compile even if the memory plan exceeds the target's budget.")
@click.option("--name", default=None, help="Bundle folder name inside --out (default: <target>_<arch>_<id>).")
@click.option("--timesteps", default=None, type=int,
              help="A NIR file only: the timesteps an inference runs (a ticket compiles at its own T).")
@click.option("--dt", default=None, type=float,
              help="A NIR file only: the Euler step its continuous-time neurons are read with (default 1e-4; a file "
                   "edgeticket wrote carries its exact neurons).")
@CALIBRATION_DIR
@_outputs("Print the manifest as JSON.")
def compile_cmd(ticket, target_name, out, layout, weights, storage, batch, validation_data, data_dir, validation_n,
                opset, backend, force, name, timesteps, dt, calibration_dir, as_json):
    """Turn a ticket folder (or a run folder: its final ticket), or a NIR file from another framework, into a
    validated, time-unrolled ONNX bundle."""
    from . import api

    manifest = api.compile_ticket(ticket, target_name, out=out, layout=layout, weights=weights, storage=storage,
                                  batch=batch, validation_data=validation_data, validation_n=validation_n,
                                  opset=opset, force=force, log=_log, name=name, data_dir=data_dir, backend=backend,
                                  calibration_dir=calibration_dir, timesteps=timesteps, dt=dt)
    from .device.views import describe

    _result(manifest, lambda: describe(manifest), as_json)


@main.command("export")
@click.argument("ticket", type=click.Path(file_okay=False))
@click.option("--format", "fmt", default="nir", show_default=True, type=click.Choice(["nir"]),
              help="nir: the Neuromorphic Intermediate Representation (snnTorch, Norse, Lava, Sinabs, Rockpool, "
                   "spikingjelly read it; docs/models.md gives the mapping).")
@click.option("--out", required=True, help="The file to write, e.g. ticket.nir.")
@click.option("--dt", default=None, type=float,
              help="The Euler step NIR's continuous-time neurons are written for (seconds; default 1e-4, what "
                   "snnTorch's importer assumes).")
@_outputs("Print what was written as JSON.")
def export_cmd(ticket, fmt, out, dt, as_json):
    """Write a ticket (or a run folder: its final ticket) in another framework's format: BN folded, masked weights."""
    from . import api

    r = api.export_ticket(ticket, out, fmt=fmt, dt=dt, log=_log)
    _result(r, lambda: f"wrote {r['file']}: {r['nodes']} NIR nodes, {r['edges']} edges (dt {r['dt']:g} s) of "
                       f"{r['ticket']}", as_json)


@main.command("targets")
@_outputs("Print the targets as JSON.")
def targets_cmd(as_json):
    """List the target boards with their memory budgets ($EDGETICKET_TARGETS adds folders of your own)."""
    from . import api
    from .device.views import targets_table

    ts = api.targets()
    _result([t.summary() for t in ts], lambda: targets_table(ts), as_json)


@main.command("inspect")
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@click.option("--html", default=None, type=click.Path(dir_okay=False),
              help="Also write the bundle's page to this file: one self-contained HTML file (plots inline, nothing "
                   "fetched) with sparsity per layer, memory vs budget, spike rates and backend latencies.")
@_outputs("Print the manifest as JSON.")
def inspect_cmd(bundle_dir, html, as_json):
    """Show a bundle: target, layout, weights per layer, memory plan vs budget, validation (checks sha256s)."""
    from . import api
    from .device.views import describe

    m = api.inspect(bundle_dir, html=html)
    _result(m, lambda: describe(m) + (f"\n  page       {m['html']}" if html else ""), as_json)


@main.command("profile")
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@click.option("--runs", default=50, show_default=True, type=int, help="Timed runs after warm-up.")
@click.option("--warmup", default=5, show_default=True, type=int, help="Untimed warm-up runs.")
@click.option("--batch", default=1, show_default=True, type=int, help="Batch size of each run.")
@click.option("--threads", default=None, type=int, help="Intra-op threads (default: the backend's own choice).")
@click.option("--random-inputs", is_flag=True, help="Random inputs instead of the bundle's validation samples.")
@click.option("--calibrate", is_flag=True,
              help="Also run device microbenchmarks and append a record to the calibration folder "
                   "(<calibration-dir>/<target>.json).")
@click.option("--target", "target_name", default=None,
              help="Target this machine is (for --calibrate and predictions; default: the bundle's target).")
@CALIBRATION_DIR
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Where to write profile.json "
              "(default: inside the bundle).")
@click.option("--backend", default=None,
              help="onnxruntime, event, tvm, or 'all' (every backend the bundle has for this machine, each in its "
                   "own process, side by side). Default: the bundle's recorded default where it runs here "
                   "(onnxruntime with --calibrate).")
@_outputs("Print the profile as JSON on stdout.")
@click.option("--host", default=None, metavar="[USER@]HOST[:PORT]",
              help="Profile on this board over ssh (BatchMode: keys or agent, no password prompt): copies the bundle "
                   "(what changed), runs the board's edgeticket there, brings profile-<host>.json back into the "
                   "bundle and, with --calibrate, the record into this machine's calibration folder.")
@click.option("--identity", default=None, type=click.Path(dir_okay=False), help="--host: ssh private key (ssh -i).")
@click.option("--ssh-option", "ssh_options", multiple=True, metavar="OPTION",
              help="--host: an ssh -o option, e.g. 'ProxyJump=gateway' (repeatable).")
@click.option("--remote-dir", default="edgeticket", show_default=True,
              help="--host: the board's work folder (relative to the login's home).")
@click.option("--remote-python", default="python3", show_default=True,
              help="--host: the board's Python that has edgeticket installed (e.g. ~/venv/bin/python).")
def profile_cmd(bundle_dir, runs, warmup, batch, threads, random_inputs, calibrate, target_name, calibration_dir, out,
                backend, as_json, host, identity, ssh_options, remote_dir, remote_python):
    """Measure a bundle on this device, or on a board with --host: latency, peak memory, spike rates, SynOps
    (needs no torch)."""
    from . import api
    from .device.views import backends_table, profile_table

    board = None
    if host:
        from .device.remote import Board

        board = Board.parse(host, identity=identity, ssh_options=tuple(ssh_options), remote_dir=remote_dir,
                            python=remote_python)
    elif identity or ssh_options or remote_dir != "edgeticket" or remote_python != "python3":
        raise click.UsageError("--identity, --ssh-option, --remote-dir and --remote-python go with --host")
    r = api.profile(bundle_dir, backend=backend, log=_log, runs=runs, warmup=warmup, batch=batch, threads=threads,
                    random_inputs=random_inputs, calibrate=calibrate, target=target_name,
                    calibration_dir=calibration_dir, out=out, board=board)
    _result(r, lambda: backends_table(r) if r.get("kind") == "profile-backends" else profile_table(r), as_json)


@main.command("machine")
@_outputs("Print the facts as JSON.")
def machine_cmd(as_json):
    """What this machine is: CPU architecture, cores, memory, runtimes, emulation (needs no torch)."""
    from . import api
    from .device.views import machine_table

    m = api.machine()
    _result(m, lambda: machine_table(m), as_json)


@main.command("predict")
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@click.option("--target", "target_name", required=True, help="Target to predict for.")
@click.option("--batch", default=1, show_default=True, type=int)
@CALIBRATION_DIR
@_outputs("Print the prediction as JSON.")
def predict_cmd(bundle_dir, target_name, batch, calibration_dir, as_json):
    """Predict latency and memory of a bundle on a target from its newest calibration record (or the datasheet)."""
    from . import api
    from .device.views import predict_table

    r = api.predict(bundle_dir, target_name, batch=batch, calibration_dir=calibration_dir)
    if not r["latency"]["calibrated"]:
        _log(f"note: no calibration record for {r['target']}: using its datasheet roofline")
    _result({"latency": r["latency"], "memory": r["memory"]},
            lambda: predict_table(bundle_dir, r["target"], r["latency"], r["memory"]), as_json)


@main.command("check")
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@click.option("--target", "target_name", required=True, help="Target to check the bundle's memory plan against.")
@CALIBRATION_DIR
@_outputs("Print the verdict as JSON (the exit code still says it: 0 fits, 1 does not).")
def check_cmd(bundle_dir, target_name, calibration_dir, as_json):
    """Does the bundle fit the target's model budget? Answers from the manifest alone (exit 0: fits, 1: no)."""
    from . import api

    r = api.check(bundle_dir, target_name, calibration_dir=calibration_dir)
    _result(r, lambda: f"{'fits' if r['fits'] else 'does not fit'}: {bundle_dir} plans {r['total_bytes'] / 2**20:.1f} "
                       f"MiB at batch {r['batch']} ({r['layout']}, {r['weights']}) vs {r['target']}'s budget "
                       f"{r['budget_bytes'] / 2**20:.1f} MiB", as_json)
    if not r["fits"]:
        raise SystemExit(1)


@main.command("experiment")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder of experiment folders (default: the config's experiment.out, else runs/experiments).")
@click.option("--data-dir", default=None, help="Dataset folder for every search of the config.")
@click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]), show_default=True)
@click.option("--dry-run", is_flag=True, help="Validate the config and list the searches without running them.")
@_outputs("Print the experiment index (and summaries) as JSON.")
def experiment_cmd(config, out, data_dir, device, dry_run, as_json):
    """Run the searches of a TOML experiment config in order; rerunning resumes where it stopped."""
    from . import api

    res = api.experiment(config, out=out, device=device, quiet=console.quiet(), data_dir=data_dir, dry_run=dry_run,
                         log=_log)
    _result(res, lambda: _experiment_lines(res), as_json)


def _experiment_lines(res: dict) -> str:
    lines = []
    for e in res["entries"]:
        fin = (e.get("summary") or {}).get("final_ticket")
        tail = (f"final {100 * fin['sparsity']:.2f}% sparsity, {100 * fin['final_acc']:.2f}% top-1" if fin
                else "(dry run)")
        lines.append(f"{e['label']:12s} seed {e['seed']}  {e['run_dir']}  {tail}")
    return "\n".join(lines)


@main.command("report")
@click.argument("folders", nargs=-1, required=True, metavar="RUN_OR_EXPERIMENT...", type=click.Path(file_okay=False))
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Markdown file to write, PNG plots beside it [default: docs/results.md, unless only --html is "
                   "given].")
@click.option("--html", default=None, type=click.Path(dir_okay=False),
              help="Write the results page to this file: one self-contained HTML file (plots inline, nothing fetched; "
                   "needs no matplotlib).")
@_outputs("Print the report's facts as JSON.")
def report_cmd(folders, out, html, as_json):
    """Generate the results report (markdown + plots, and/or an HTML page) from run folders (run.json + level_*/)
    and experiment folders (experiment.json), in any mix."""
    from . import api

    page = str(api.report_page(list(folders), html)) if html else None
    if out is None and html:
        _result({"html": page}, lambda: f"wrote {page}", as_json)
        return
    r = api.report(list(folders), out or "docs/results.md")
    if page:
        r["html"] = page
    _result(r, lambda: f"wrote {r['out']} and {len(r['figures'])} plot(s)" + (f", and {page}" if page else ""),
            as_json)


if __name__ == "__main__":
    main()
