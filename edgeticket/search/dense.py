"""Level 0: the dense network, trained from its seeded initialisation. Captures the late-rewind weights and
runs the Early-Time check; Early-Bird adds its own per-epoch callback.

The rewind point (level_0/rewind.safetensors) always exists once level 0 is finished. It holds the weights
after epoch `rewind_epoch`, except when a callback stops dense training earlier (Early-Bird settling before the
rewind epoch): then it holds the weights after the stop epoch, i.e. the rewind epoch actually used is
min(rewind_epoch, stop epoch). Dense training is not extended just to reach the rewind epoch: that would spend
the epochs Early-Bird exists to save, and pair the stop epoch's mask with weights trained past it. The file's
metadata says which epoch it holds (`rewind_epoch` reads it) and later stages start training there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .. import store
from ..errors import EdgeTicketError
from ..formats import names
from ..pruning import Mask
from . import early_time
from .context import Context
from .level import LevelResult, new_model, run_level
from .train import Callback, EpochState


def chain(*callbacks: Optional[Callback]) -> Callback:
    cbs = [c for c in callbacks if c is not None]

    def run(model, es: EpochState) -> None:
        for c in cbs:
            c(model, es)

    return run


def search_timesteps(ctx: Context, run_dir: Path) -> int:
    """T' of the Early-Time policy (from the run's decision file), or the full T without it."""
    if not ctx.cfg.search.early_time:
        return ctx.cfg.model.timesteps
    return int(store.read_json(Path(run_dir) / names.ET_JSON, "Early-Time decision")["chosen"])


def train_dense(ctx: Context, run_dir: Path, extra_callback: Optional[Callback] = None,
                info_extra=None, lr_scale: float = 1.0) -> LevelResult:
    cfg = ctx.cfg
    T, k = cfg.model.timesteps, cfg.search.rewind_epoch
    d0 = names.level_dir(run_dir, 0)
    model = new_model(ctx, cfg.training.seed)
    init = {n: v.detach().cpu() for n, v in model.state_dict().items()}
    mask = Mask.ones_like(model, model.prunable())

    def capture_rewind(m, es: EpochState) -> None:
        if es.epoch == k - 1:
            es.extra["rewind_epoch"] = k
            if ctx.is_main:
                store.save_tensors(d0 / names.REWIND, m.state_dict(), {"epoch": k})

    def capture_rewind_at_stop(m, es: EpochState) -> None:
        # runs after every other callback: a stop before the rewind epoch takes the rewind point here
        if es.stop and es.epoch + 1 < k:
            es.extra["rewind_epoch"] = es.epoch + 1
            if ctx.is_main:
                store.save_tensors(d0 / names.REWIND, m.state_dict(), {"epoch": es.epoch + 1, "requested_epoch": k})
            ctx.log(f"rewind point: dense training stopped after epoch {es.epoch + 1}, before --rewind-epoch {k}: "
                    f"tickets restart from the weights after epoch {es.epoch + 1}")

    def run_et_check(m, es: EpochState) -> None:
        decision = dict(early_time.check(m, ctx), checked_after_epoch=es.epoch + 1)
        es.extra["et_timesteps"] = decision["chosen"]
        es.extra["early_time"] = decision
        if ctx.is_main:
            store.write_json(Path(run_dir) / names.ET_JSON, decision)
        ctx.log(f"Early-Time: KL {decision['normalised_kl']} -> searching at T'={decision['chosen']} "
                f"(retrain at T={T})")

    def et_check(m, es: EpochState) -> None:
        if es.epoch == cfg.search.et_check_epoch - 1:
            run_et_check(m, es)

    def et_check_at_stop(m, es: EpochState) -> None:
        # a callback stopped dense training (Early-Bird) before the ET check epoch: the check runs at the stop
        if es.stop and "early_time" not in es.extra:
            ctx.log(f"Early-Time: dense training stopped after epoch {es.epoch + 1}, before --et-check-epoch "
                    f"{cfg.search.et_check_epoch}: the KL check runs now")
            run_et_check(m, es)

    def timesteps(epoch: int, extra: dict) -> int:
        if cfg.search.early_time and epoch >= cfg.search.et_check_epoch:
            return int(extra.get("et_timesteps", T))
        return T

    def extra_info(extra: dict) -> dict:
        out = {"early_time": extra.get("early_time")} if cfg.search.early_time else {}
        if info_extra is not None:
            out.update(info_extra(extra))
        return out

    callback = chain(capture_rewind if k > 0 else None, et_check if cfg.search.early_time else None,
                     extra_callback, et_check_at_stop if cfg.search.early_time else None,
                     capture_rewind_at_stop if k > 0 else None)
    res = run_level(ctx, run_dir, d0, level=0, branch="ticket", mask=mask, start_weights=init, start_epoch=0,
                    timesteps=timesteps, search_timesteps=T, save_start_as_rewind=(k == 0), after_epoch=callback,
                    info_extra=extra_info, lr_scale=lr_scale)
    return res


def rewind_weights(run_dir: Path) -> dict:
    return store.load_tensors(names.level_dir(run_dir, 0) / names.REWIND, "rewind weights")


def rewind_epoch(ctx: Context, run_dir: Path) -> int:
    """The epoch whose weights level_0/rewind.safetensors holds (from its metadata): --rewind-epoch, or the
    earlier epoch at which dense training stopped. A file without the key (written for --rewind-epoch 0: the
    initialisation) holds --rewind-epoch."""
    from safetensors import safe_open

    path = names.level_dir(run_dir, 0) / names.REWIND
    if not path.is_file():
        raise EdgeTicketError(f"rewind weights not found: {path}")
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
    return int(meta.get("epoch", ctx.cfg.search.rewind_epoch))


def rewind_record(ctx: Context, run_dir: Path, epoch: int) -> dict:
    """ticket.json's `rewind`: the rewind point a level actually started from, and the rule behind it."""
    k = ctx.cfg.search.rewind_epoch
    rule = ("late rewinding to --rewind-epoch" if epoch == k else
            f"dense training stopped after epoch {epoch}, before --rewind-epoch {k}: rewound to the weights after "
            f"the stop epoch (rewind epoch = min(rewind_epoch, stop epoch)) and retrained from there")
    return {"rewind": {"epoch": epoch, "requested_epoch": k,
                       "weights": f"{names.level_dir(run_dir, 0).name}/{names.REWIND}", "rule": rule}}
