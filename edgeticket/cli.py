"""`edgeticket` command line. Commands parse options and call edgeticket.api; errors are one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

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
    """Turns EdgeTicketError into click's one-line `Error: ...` and exit code 1: never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgeTicketError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="edgeticket")
def main() -> None:
    """edgeticket: lottery tickets for spiking neural networks, from search to the edge device."""


@main.command(help=SEARCH_HELP)
@_hparam_options
@click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]), show_default=True,
              help="Where to train (auto: cuda when available).")
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Folder of run folders (each named by a hash of the non-default settings).")
@click.option("--resume", "resume_dir", default=None, type=click.Path(file_okay=False),
              help="Resume the run in this folder with its recorded settings (rerunning the same command also resumes).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def search(device, out, resume_dir, as_json, quiet, **given):
    from . import api, report

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
    summary = api.search(cfg, out=out, device=device, quiet=quiet)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun only rank 0 reports
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    elif not quiet:
        click.echo(report.table(summary))


if __name__ == "__main__":
    main()
