"""One training run of one ticket folder: epochs [start, end) with masked weights, an epoch checkpoint that
makes a killed run resume to the same result, cost accounting, and per-epoch callbacks (rewind capture,
Early-Bird mask FIFO, Early-Time check).

Randomness comes only from generators keyed by (seed, run key, epoch), and the checkpoint holds the model,
optimizer and callback state after the last finished epoch, so on CPU an interrupted-and-resumed run
ends with the same weights (and masks) as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .. import store
from ..formats import names
from ..data import batches
from ..data.dataset import epoch_generator
from ..errors import EdgeTicketError
from ..pruning import Mask, MaskedTraining
from .context import Context


def lr_at(epoch: int, thp, restart: int = 0) -> float:
    """The learning rate of `epoch`: cosine from thp.lr to 0 over [restart, epochs). restart 0 continues the dense
    run's schedule; a level that restarts its schedule at its start epoch (--rewind-schedule restart, the authors'
    code) passes that epoch."""
    if thp.schedule == "constant":
        return thp.lr
    return 0.5 * thp.lr * (1.0 + math.cos(math.pi * (epoch - restart) / (thp.epochs - restart)))


def prepare_for_training(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move to the device; on CPU use channels_last (oneDNN's NHWC convolutions: 8-10% faster training steps
    here, measured by bench/train_step.py)."""
    model.to(device)
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    return model


def to_input(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cpu" and x.dim() == 4 else x


def make_optimizer(model: torch.nn.Module, thp) -> torch.optim.Optimizer:
    if thp.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=thp.lr, weight_decay=thp.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=thp.lr, momentum=thp.momentum, weight_decay=thp.weight_decay)


def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over t of CE(logits_t): logits [T, B, K]."""
    T = logits.shape[0]
    return F.cross_entropy(logits.flatten(0, 1), y.repeat(T))


@torch.no_grad()
def evaluate(model: torch.nn.Module, ctx: Context, timesteps: int, batch_size: int = 256) -> float:
    """Top-1 test accuracy (a fraction in [0, 1]) of argmax of the logits summed over T."""
    was_training = model.training
    old_t = model.timesteps
    model.eval()
    model.timesteps = timesteps
    correct = 0
    for xb, yb in batches(ctx.data, batch_size, train=False):
        logits = model(to_input(xb, ctx.device)).sum(0)
        correct += int((logits.argmax(1).cpu() == yb).sum())
    model.timesteps = old_t
    model.train(was_training)
    return correct / len(ctx.data.y_test)


@dataclass
class EpochState:
    """What callbacks may read and write; `extra` is saved in the checkpoint."""
    epoch: int
    timesteps: int
    extra: dict = field(default_factory=dict)
    stop: bool = False


@dataclass
class TrainResult:
    final_acc: float
    best_acc: float
    history: list
    cost: dict
    extra: dict
    stopped_epoch: int


# A callback: (model, EpochState) -> None, run after each epoch (evaluation done) on every process.
Callback = Callable[[torch.nn.Module, EpochState], None]


def loss_scale(cfg, timesteps: int) -> float:
    """The factor on loss_fn's mean over t: 1, or T'/T under `--et-loss-divisor full-t` (the authors' code sums the
    per-timestep losses and divides by the full T also while the search runs at T')."""
    return timesteps / cfg.model.timesteps if cfg.search.et_loss_divisor == "full-t" else 1.0


def train(ctx: Context, model: torch.nn.Module, ticket_dir: Path, mask: Optional[Mask], start_epoch: int,
          timesteps: Callable[[int, dict], int], run_key: tuple[int, ...], label: str,
          after_epoch: Optional[Callback] = None, lr_scale: float = 1.0) -> TrainResult:
    """Train `model` (already holding its starting weights) for epochs [start_epoch, epochs).

    timesteps(epoch, extra) -> T of that epoch (the Early-Time policy can change it via `extra`).
    lr_scale multiplies the schedule's learning rate (Early-Bird's search phase: --eb-lr-scale).
    """
    thp = ctx.cfg.training
    restart = start_epoch if ctx.cfg.search.rewind_schedule == "restart" else 0
    ckpt_path = Path(ticket_dir) / names.CHECKPOINT
    prepare_for_training(model, ctx.device)
    masked = MaskedTraining(model, mask) if mask is not None else None
    optimizer = make_optimizer(model, thp)
    state = {"epoch": start_epoch, "best_acc": 0.0, "history": [], "extra": {},
             "cost": {"wall_s": 0.0, "timestep_epochs": 0, "epochs": 0}, "accuracy_unit": "fraction"}
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        state = _fraction_accuracies(ck["state"])
        ctx.log(f"{label}: resuming at epoch {state['epoch']} from {ckpt_path}")
    if masked is not None:
        masked.after_step()
    net = ctx.wrap(model)
    final_acc = state["history"][-1]["test_acc"] if state["history"] else float("nan")
    epoch = state["epoch"]
    while epoch < thp.epochs:
        t0 = time.perf_counter()
        es = EpochState(epoch, timesteps(epoch, state["extra"]), state["extra"])
        model.timesteps = es.timesteps
        lr = lr_scale * lr_at(epoch, thp, restart)
        for g in optimizer.param_groups:
            g["lr"] = lr
        scale = loss_scale(ctx.cfg, es.timesteps)
        gen = epoch_generator(thp.seed, *run_key, epoch)
        model.train()
        tot_loss, tot_correct, tot_n = 0.0, 0, 0
        local_bs = thp.batch_size
        it = batches(ctx.data, local_bs, gen, train=True, rank=ctx.rank, world=ctx.world)
        n_batches = math.ceil(len(ctx.data.y_train) / local_bs)
        bar = ctx.progress(it, total=n_batches, desc=f"{label} epoch {epoch + 1}/{thp.epochs} T={es.timesteps}")
        t_train = time.perf_counter()
        for xb, yb in bar:
            xb, yb = to_input(xb, ctx.device), yb.to(ctx.device, non_blocking=True)
            logits = net(xb)
            loss = loss_fn(logits, yb) * scale if scale != 1.0 else loss_fn(logits, yb)
            loss_value = float(loss.detach())  # the one host sync of the step (it was after the step)
            if not math.isfinite(loss_value):
                raise diverged(label, epoch, thp, f"the training loss is {loss_value}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if masked is not None:
                masked.after_step()
            tot_loss += loss_value * len(yb)
            tot_correct += int((logits.detach().sum(0).argmax(1) == yb).sum())
            tot_n += len(yb)
        train_s = time.perf_counter() - t_train  # each step ended in a host sync (the loss value)
        bad = non_finite_tensor(model)  # the last step's update can overflow with a finite loss
        if bad is not None:
            raise diverged(label, epoch, thp, f"{bad} holds non-finite values after the epoch")
        acc = evaluate(model, ctx, es.timesteps)
        if after_epoch is not None:
            after_epoch(model, es)
        wall = time.perf_counter() - t0
        final_acc = acc
        state["best_acc"] = max(state["best_acc"], acc)
        state["history"].append({"epoch": epoch + 1, "timesteps": es.timesteps, "lr": lr,
                                 "train_loss": tot_loss / max(tot_n, 1),
                                 "train_acc": tot_correct / max(tot_n, 1), "test_acc": acc,
                                 "wall_s": wall, "train_images_per_s": tot_n / max(train_s, 1e-9)})
        state["cost"]["wall_s"] += wall
        state["cost"]["timestep_epochs"] += es.timesteps
        state["cost"]["epochs"] += 1
        epoch += 1
        state["epoch"] = epoch
        state["extra"] = es.extra
        ctx.log(f"{label} epoch {epoch}/{thp.epochs} T={es.timesteps} loss {tot_loss / max(tot_n, 1):.4f} "
                f"test {100 * acc:.2f}% ({tot_n / max(train_s, 1e-9):.0f} training images/s)")
        if es.stop or epoch >= thp.epochs:
            state["stopped"] = es.stop
            break
        if ctx.is_main:
            ck = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state}
            store.atomic_write(ckpt_path, lambda p: torch.save(ck, p))
        ctx.barrier()
    if masked is not None:
        masked.remove()
    return TrainResult(final_acc=final_acc, best_acc=state["best_acc"], history=state["history"],
                       cost=state["cost"], extra=state["extra"], stopped_epoch=epoch)


def non_finite_tensor(model: torch.nn.Module) -> Optional[str]:
    """The name of the first floating-point weight or buffer holding NaN or inf, else None."""
    for name, t in model.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return name
    return None


def diverged(label: str, epoch: int, thp, what: str) -> EdgeTicketError:
    """Training diverged: raised before the epoch's checkpoint, the level's files or its ticket.json are written, so
    nothing of it is marked finished."""
    return EdgeTicketError(f"{label}: training diverged in epoch {epoch + 1}/{thp.epochs}: {what} (--lr {thp.lr:g}, "
                           f"--optimizer {thp.optimizer}); nothing of this level was marked finished: lower --lr (or "
                           "--weight-decay) and run again")


def _fraction_accuracies(state: dict) -> dict:
    """A checkpoint written before accuracies became fractions (no `accuracy_unit`) holds percent: convert."""
    if state.get("accuracy_unit") == "fraction":
        return state
    state = dict(state, accuracy_unit="fraction", best_acc=state["best_acc"] / 100.0)
    state["history"] = [{**h, "train_acc": h["train_acc"] / 100.0, "test_acc": h["test_acc"] / 100.0}
                        for h in state["history"]]
    return state


def clear_checkpoint(ticket_dir: Path) -> None:
    (Path(ticket_dir) / names.CHECKPOINT).unlink(missing_ok=True)

