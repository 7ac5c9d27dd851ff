"""The ticket a compile starts from: a ticket folder (or a run folder: its final ticket) rebuilt as the trained
network with its mask and ticket.json (torch side of the ticket contract in formats/ticket.py)."""

from __future__ import annotations

from pathlib import Path

from .. import store
from ..errors import EdgeTicketError
from ..formats import names
from ..formats.ticket import read_info
from ..formats.ticket import verify as verify_ticket


def resolve_ticket_dir(path: str | Path, log=print) -> Path:
    """A ticket folder, or a run folder (then its final ticket: the highest finished level)."""
    p = Path(path)
    if (p / names.RUN_JSON).is_file() and not (p / names.TICKET_JSON).is_file():
        levels = sorted((d for d in p.glob("level_*") if names.is_finished(d)), key=lambda d: int(d.name.split("_")[1]))
        if not levels:
            raise EdgeTicketError(f"run folder {p} has no finished level yet; finish the search or pass a level folder")
        log(f"compiling the run's final ticket: {levels[-1]}")
        return levels[-1]
    return p


def load(ticket_dir: Path, verify: bool = True):
    """Rebuild the network of a ticket with its trained weights. Returns (model, mask, info).
    With verify, every file's sha256 must match ticket.json."""
    from ..hparams import SearchConfig
    from ..models import build
    from ..pruning import Mask

    ticket_dir = Path(ticket_dir)
    info = read_info(ticket_dir)
    if verify:
        verify_ticket(ticket_dir, info)
    cfg = SearchConfig.from_dict(info["hparams"])
    ds = info["dataset"]
    c, h, _ = ds["input_shape"]
    model = build(cfg.model, ds["num_classes"], c, h)
    model.timesteps = int(info["timesteps"]["trained"])
    weights = store.load_tensors(ticket_dir / names.TRAINED, "trained weights")
    check_weights(weights, model.state_dict(), ticket_dir / names.TRAINED)
    model.load_state_dict(weights)
    model.eval()
    raw_mask = store.load_tensors(ticket_dir / names.MASK, "mask")  # raw: Mask.load would coerce a float mask
    prunable = model.prunable()
    check_mask(raw_mask, weights, info, ticket_dir, prunable)
    return model, Mask({n: raw_mask[n] for n in prunable}), info  # checked: bool, exactly these keys; model order


REDO = "re-run the search level that wrote it"


def same_keys(tensors: dict, expected: list[str], path: Path, what: str) -> None:
    """A tensor file holds exactly the `expected` names (the network's): one missing or one extra is one line."""
    missing = [n for n in expected if n not in tensors]
    if missing:
        raise EdgeTicketError(f"{path} lacks {len(missing)} of the network's {len(expected)} {what} (e.g. "
                              f"{missing[0]}): it does not belong to this ticket; {REDO}")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise EdgeTicketError(f"{path} holds {len(extra)} {what} the network lacks (e.g. {extra[0]}): it does not "
                              f"belong to this ticket; {REDO}")


def check_weights(weights: dict, expected: dict, path: Path) -> None:
    """trained.safetensors holds exactly the network's tensors, each of its shape and a floating or integer dtype
    like the network's (torch's load_state_dict would end in a traceback)."""
    same_keys(weights, list(expected), path, "tensors")
    for n, t in expected.items():
        w = weights[n]
        if tuple(w.shape) != tuple(t.shape) or w.is_floating_point() != t.is_floating_point():
            raise EdgeTicketError(f"{path}: {n} is {str(w.dtype).replace('torch.', '')} {list(w.shape)}, the network's "
                                  f"is {str(t.dtype).replace('torch.', '')} {list(t.shape)}: it does not belong to "
                                  f"this ticket; {REDO}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_mask(mask: dict, weights: dict, info: dict, ticket_dir: Path, prunable: list[str]) -> None:
    """Refuse a ticket whose mask does not fit its network and weights (one-line EdgeTicketError naming the file
    and the fix): the mask's keys are exactly the `prunable` weight names, each a bool tensor of its weight's
    shape; every pruned position holds exactly 0 in the trained weights; ticket.json's sparsity (global, per layer,
    fractions within 1e-6) and nnz/numel (exact, where present) agree with the mask. `mask` is the raw tensors of
    mask.safetensors (no dtype coercion), `weights` those of trained.safetensors."""
    import torch

    ticket_dir = Path(ticket_dir)
    mpath, wpath = ticket_dir / names.MASK, ticket_dir / names.TRAINED
    same_keys(mask, prunable, mpath, "masks of prunable weights")
    kept_layer = {}
    for n in prunable:
        m, w = mask[n], weights[n]
        if m.dtype != torch.bool:
            raise EdgeTicketError(f"{mpath}: {n} is {str(m.dtype).replace('torch.', '')}, not bool (a mask holds "
                                  f"True = kept); {REDO}")
        if tuple(m.shape) != tuple(w.shape):
            raise EdgeTicketError(f"{mpath}: {n} has shape {list(m.shape)} but its weight in {wpath.name} has shape "
                                  f"{list(w.shape)}; {REDO}")
        bad = int(((~m) & (w != 0)).sum())
        if bad:
            raise EdgeTicketError(f"{wpath}: {n} holds {bad} nonzero weights at positions {mpath.name} prunes (they "
                                  f"must be exactly 0): the weights were not trained with this mask; {REDO}")
        kept_layer[n] = (int(m.sum()), m.numel())
    check_recorded_sparsity(info, kept_layer, prunable, ticket_dir)


def check_recorded_sparsity(info: dict, kept_layer: dict, prunable: list[str], ticket_dir: Path) -> None:
    """ticket.json's sparsity (global, per layer: fractions within 1e-6) and nnz/numel (exact, where present)
    agree with the mask's kept counts `kept_layer` {name: (kept, numel)}."""
    mpath, jpath = Path(ticket_dir) / names.MASK, Path(ticket_dir) / names.TICKET_JSON
    kept_total = sum(k for k, _ in kept_layer.values())
    numel_total = sum(n for _, n in kept_layer.values())
    sp = info.get("sparsity")
    layers = sp.get("layers") if isinstance(sp, dict) else None
    if not isinstance(sp, dict) or not _is_number(sp.get("global")) or not isinstance(layers, dict):
        raise EdgeTicketError(f"{jpath} has no sparsity record (sparsity.global and sparsity.layers, fractions): it "
                              f"was altered; {REDO}")
    true_global = 1.0 - kept_total / numel_total if numel_total else 0.0
    if not abs(sp["global"] - true_global) <= 1e-6:  # NaN too
        raise EdgeTicketError(f"{jpath} records sparsity.global {sp['global']!r} but {mpath.name} prunes "
                              f"{true_global:.6f} of the weights: the record was altered; {REDO}")
    if set(layers) != set(prunable):
        odd = sorted(set(layers) ^ set(prunable))[0]
        raise EdgeTicketError(f"{jpath}: sparsity.layers does not list the mask's layers (e.g. {odd}): the record "
                              f"was altered; {REDO}")
    for n, (kept, numel) in kept_layer.items():
        true = 1.0 - kept / numel if numel else 0.0
        if not (_is_number(layers[n]) and abs(layers[n] - true) <= 1e-6):
            raise EdgeTicketError(f"{jpath} records sparsity.layers[{n!r}] {layers[n]!r} but {mpath.name} prunes "
                                  f"{true:.6f} of it: the record was altered; {REDO}")
    for key, true in (("nnz", kept_total), ("numel", numel_total)):
        if key in info and (not isinstance(info[key], int) or isinstance(info[key], bool) or info[key] != true):
            raise EdgeTicketError(f"{jpath} records {key} {info[key]!r} but {mpath.name} has {true}: the record was "
                                  f"altered; {REDO}")
