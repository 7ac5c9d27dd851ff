"""Every search setting is a field of a frozen dataclass with help text (open_lth foundations/hparams.py).

The CLI options of `edgeticket search` are generated from these fields, and a run folder is named by a
hash of the fields that differ from their defaults. New fields must get a default equal to the old
behaviour so existing run hashes stay valid (tests/test_hparams.py pins one hash).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from .errors import EdgeTicketError


# torch.manual_seed / Generator.manual_seed take 64-bit seeds; [0, 2^63) leaves room for the offsets the
# controls add (random-reinit seeds level k with seed + 1_000_003 * (k + 1)).
SEED_MAX = 2**63 - 1


def _f(default, help: str, choices: tuple | None = None, hashed: bool = True, *, ge=None, gt=None, le=None,
       lt=None, why: str = ""):
    """A setting. ge/gt/le/lt: its allowed range (checked by check_settings, which also requires float settings to
    be finite, values of the field's type and one of `choices`); why: the reason, said with the error."""
    rules = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    return field(default=default, metadata={"help": help, "choices": choices, "hashed": hashed, "rules": rules,
                                            "why": why})


@dataclass(frozen=True)
class ModelHparams:
    arch: str = _f("vgg5", "Network: your own as package.module:factory (docs/models.md), or tiny, vgg5, vgg9, "
                           "vgg11, vgg16, resnet8, resnet19 (the paper's, as the "
                           "authors build it: 64 stem, stride-2 stages), resnet19-tdbn (tdBN's: 128 stem).")
    timesteps: int = _f(5, "Timesteps T of the full-length network (training of the final ticket and deployment).",
                         ge=1)
    tau: float = _f(4.0 / 3.0, "LIF membrane time constant.", gt=1, why="spikingjelly's LIF requires it")
    v_threshold: float = _f(1.0, "LIF firing threshold (hard reset to 0).", gt=0)


@dataclass(frozen=True)
class DataHparams:
    dataset: str = _f("digits", "Dataset: digits (bundled, default), mnist, fashion-mnist, cifar10, cifar100, svhn, "
                                "tiny-imagenet, npz.")
    data_dir: Optional[str] = _f(None, "Folder holding the dataset's standard files (not needed for digits).",
                                 hashed=False)
    train_subset: Optional[int] = _f(None, "Use only this many training images (a fixed, seed-independent subset).",
                                    ge=1)
    test_subset: Optional[int] = _f(None, "Use only this many test images (a fixed, seed-independent subset).",
                                   ge=1)
    augment: str = _f("auto", "Augmentation: auto (crop+flip for CIFAR-like data, none otherwise), none, crop, "
                              "crop-flip.", choices=("auto", "none", "crop", "crop-flip"))
    cutout: int = _f(0, "Cutout (DeVries & Taylor 2017) on training images: one square hole of this side in pixels, "
                        "centred anywhere in the image and clipped at its border, filled with black (pixel value 0 "
                        "before normalisation), after crop and flip; 0 = off. The authors use 16 on CIFAR-10/100.",
                     ge=0)
    normalize: str = _f("dataset", "Input normalisation: dataset (the per-channel mean/std of the training set) or "
                                   "authors (the constants of the paper's code: CIFAR-10 (0.4913, 0.4821, 0.4465) / "
                                   "(0.2023, 0.1994, 0.2010), CIFAR-100 (0.5071, 0.4867, 0.4408) / (0.2673, 0.2564, "
                                   "0.2762), SVHN and Fashion-MNIST 0.5 / 0.5, Tiny-ImageNet ImageNet's).",
                        choices=("dataset", "authors"))
    resize: int = _f(0, "Resize every image (train and test, bilinear, before normalisation) to this many pixels a "
                        "side; the network is built for the resized input; 0 = off. The authors use 32 on "
                        "Fashion-MNIST.", ge=0)


@dataclass(frozen=True)
class TrainingHparams:
    epochs: int = _f(12, "Training epochs of each level (the dense network and every retraining).", ge=1)
    batch_size: int = _f(64, "Mini-batch size (global: split across processes under torchrun).", ge=1)
    optimizer: str = _f("sgd", "Optimizer.", choices=("sgd", "adam"))
    lr: float = _f(0.1, "Initial learning rate (cosine-annealed to 0 over the epochs).", gt=0)
    momentum: float = _f(0.9, "SGD momentum.", ge=0, lt=1)
    weight_decay: float = _f(5e-4, "Weight decay.", ge=0)
    schedule: str = _f("cosine", "Learning-rate schedule.", choices=("cosine", "constant"))
    seed: int = _f(0, "Seed of initialisation, data order and augmentation (runs are deterministic on CPU).",
                    ge=0, le=SEED_MAX, why="torch's generators take 64-bit seeds")


@dataclass(frozen=True)
class PruningHparams:
    strategy: str = _f("global", "Magnitude ranking across all layers (global) or within each layer (layerwise).",
                       choices=("global", "layerwise"))
    prune_rate: float = _f(0.25, "Fraction of the remaining weights pruned per IMP round (paper: 0.25).",
                            gt=0, lt=1)
    keep_first_dense: bool = _f(False, "Never prune the first (input) layer.")
    keep_last_dense: bool = _f(False, "Never prune the last (classifier) layer.")


@dataclass(frozen=True)
class SearchHparams:
    method: str = _f("imp", "imp: iterative magnitude pruning with late rewinding. "
                            "eb: early-bird, stop dense training once the mask stops changing.",
                     choices=("imp", "eb"))
    rounds: int = _f(4, "IMP pruning rounds (sparsity after k rounds = 1 - (1 - prune_rate)^k).", ge=1)
    rewind_epoch: int = _f(1, "Late rewinding: tickets restart from the weights (incl. BN/bias) after this epoch.",
                            ge=0)
    rewind_schedule: str = _f("continue", "A level restarted at --rewind-epoch k continues the dense run's "
                                          "learning-rate schedule from epoch k (continue), or starts a fresh one "
                                          "from the full lr over the remaining epochs (restart, the authors' code).",
                              choices=("continue", "restart"))
    early_time: bool = _f(False, "ET: search at a smaller T' chosen by KL divergence, retrain the final ticket at T.")
    et_candidates: str = _f("2,3,4", "ET: candidate search timesteps T', comma-separated.")
    et_threshold: float = _f(0.6, "ET: choose the smallest T' whose max-normalised KL is below this.", gt=0, le=1)
    et_check_epoch: int = _f(1, "ET: epochs trained at the full T before the KL check (authors: 2, the N of the "
                                "paper's Algorithm 1; their code checks after epoch index 1).", ge=1)
    et_check_batch: int = _f(128, "ET: training images in the KL check's one batch (authors: 1000).", ge=1)
    et_check_augment: bool = _f(False, "ET: draw the KL check's batch with the training augmentation (authors: "
                                       "yes); off: the images as stored.")
    et_check_bn: str = _f("eval", "ET: BatchNorm during the KL check: eval (running statistics, nothing changes) "
                                  "or train (batch statistics, and the check's forward passes update the running "
                                  "statistics, as the authors' code does).", choices=("eval", "train"))
    et_kl: str = _f("code", "ET: the KL of the check: KL(p_T || p_T') as the authors' code computes it (code), "
                            "or KL(p_T' || p_T) as the paper's Eq. 1 writes it (paper).", choices=("code", "paper"))
    et_loss_divisor: str = _f("search-t", "ET: while searching at T', the loss is the mean over the T' timesteps "
                                          "(search-t) or their sum divided by the full T (full-t, the authors' code: "
                                          "the gradient shrinks by T'/T).", choices=("search-t", "full-t"))
    eb_sparsity: Optional[float] = _f(None, "EB: target sparsity of the ticket (default: that of IMP after --rounds).",
                                       gt=0, lt=1)
    eb_eps: float = _f(0.02, "EB: stop when the max normalised Hamming distance in the mask FIFO is below this.",
                        gt=0, le=1, why="a normalised distance is in [0, 1]")
    eb_window: int = _f(5, "EB: FIFO length (epochs of masks compared).", ge=2)
    eb_variant: str = _f("unstructured", "EB mask: global weight magnitude (unstructured, the SNN-LTH paper's) or "
                                         "BN scaling factors (bn-channel, the original EB paper's; use --eb-eps 0.1).",
                         choices=("unstructured", "bn-channel"))
    eb_lr_scale: float = _f(1.0, "EB: learning-rate multiplier of the dense search phase (authors: 2).", gt=0)
    eb_rewind: str = _f("rewind-epoch", "EB: the ticket restarts from the weights after --rewind-epoch and trains "
                                        "the remaining epochs (rewind-epoch), or from the initialisation and trains "
                                        "all epochs (init, the authors' code).", choices=("rewind-epoch", "init"))
    controls: str = _f("", "Control branches trained at every pruned level: random-reinit, random-mask "
                           "(comma-separated).")


SECTIONS = {
    "model": ModelHparams,
    "data": DataHparams,
    "training": TrainingHparams,
    "pruning": PruningHparams,
    "search": SearchHparams,
}


@dataclass(frozen=True)
class SearchConfig:
    model: ModelHparams = dataclasses.field(default_factory=ModelHparams)
    data: DataHparams = dataclasses.field(default_factory=DataHparams)
    training: TrainingHparams = dataclasses.field(default_factory=TrainingHparams)
    pruning: PruningHparams = dataclasses.field(default_factory=PruningHparams)
    search: SearchHparams = dataclasses.field(default_factory=SearchHparams)

    def __post_init__(self):
        check_settings(self)  # however a config is built (CLI, from_flat, from_dict, the API), its values are checked

    # ---- derived values -------------------------------------------------------------------------------------
    @property
    def et_candidates(self) -> list[int]:
        return parse_int_list(self.search.et_candidates, "--et-candidates")

    @property
    def controls(self) -> list[str]:
        return [c.strip() for c in self.search.controls.split(",") if c.strip()]

    @property
    def eb_target_sparsity(self) -> float:
        if self.search.eb_sparsity is not None:
            return float(self.search.eb_sparsity)
        return 1.0 - (1.0 - self.pruning.prune_rate) ** self.search.rounds

    # ---- (de)serialisation ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}

    @classmethod
    def from_dict(cls, d: dict) -> "SearchConfig":
        kwargs = {}
        for name, klass in SECTIONS.items():
            known = {f.name for f in fields(klass)}
            sec = d.get(name, {})
            unknown = set(sec) - known
            if unknown:
                raise EdgeTicketError(f"unknown setting(s) {sorted(unknown)} in section '{name}'; "
                                      f"valid: {sorted(known)}")
            kwargs[name] = klass(**sec)
        return cls(**kwargs)

    @classmethod
    def from_flat(cls, flat: dict) -> "SearchConfig":
        """Build from CLI-style flat names (arch=..., rounds=...); unknown names are an error."""
        kwargs: dict[str, dict] = {name: {} for name in SECTIONS}
        owner = {f.name: name for name, klass in SECTIONS.items() for f in fields(klass)}
        for k, v in flat.items():
            if k not in owner:
                raise EdgeTicketError(f"unknown setting '{k}'; valid: {sorted(owner)}")
            kwargs[owner[k]][k] = v
        return cls(**{name: SECTIONS[name](**kw) for name, kw in kwargs.items()})

    def non_default(self) -> dict:
        """Hashed fields whose value differs from the default, as 'section.field' -> value."""
        out = {}
        for name, klass in SECTIONS.items():
            sec = getattr(self, name)
            for f in fields(klass):
                if not f.metadata.get("hashed", True):
                    continue
                v = getattr(sec, f.name)
                if v != f.default:
                    out[f"{name}.{f.name}"] = v
        return out

    def hashname(self) -> str:
        """Run folder name: readable prefix + hash of the non-default settings (open_lth desc.hashname)."""
        digest = hashlib.sha256(json.dumps(self.non_default(), sort_keys=True).encode()).hexdigest()[:10]
        method = self.search.method + ("-et" if self.search.early_time else "")
        from .formats.names import slug

        return f"{method}_{slug(self.model.arch)}_{self.data.dataset}_{digest}"

    def validate(self) -> "SearchConfig":
        """The checks across settings and registries (each setting's own type and range were checked when the
        config was built: check_settings); each error names the option to fix."""
        from . import data, models  # registries: unknown names list the valid ones, before anything is written

        m, t, s = self.model, self.training, self.search
        check_settings(self)
        models.get(m.arch)
        data.get(self.data.dataset)
        checks = [
            (0 <= s.rewind_epoch < t.epochs, f"--rewind-epoch must be in [0, --epochs) = [0, {t.epochs})"),
            (1 <= s.et_check_epoch < t.epochs, f"--et-check-epoch must be in [1, --epochs) = [1, {t.epochs})"),
        ]
        for ok, msg in checks:
            if not ok:
                raise EdgeTicketError(msg)
        if self.data.normalize == "authors":
            from .data.dataset import AUTHORS_NORMALIZATION

            if self.data.dataset not in AUTHORS_NORMALIZATION:
                raise EdgeTicketError(f"--normalize authors has no constants for dataset '{self.data.dataset}' (the "
                                      f"authors' code has {', '.join(AUTHORS_NORMALIZATION)}); use --normalize dataset")
        cands = self.et_candidates
        if s.early_time and (not cands or any(c < 1 or c >= m.timesteps for c in cands)):
            raise EdgeTicketError(f"--et-candidates must be timesteps in [1, --timesteps={m.timesteps}), got "
                                  f"'{s.et_candidates}'")
        for c in self.controls:
            if c not in CONTROL_NAMES:
                raise EdgeTicketError(f"unknown control '{c}' in --controls; valid: {', '.join(CONTROL_NAMES)}")
        return self


CONTROL_NAMES = ("random-reinit", "random-mask")

_KINDS = {int: "an integer", float: "a finite number", str: "a string", bool: "true or false"}


def check_settings(cfg: "SearchConfig") -> None:
    """Every setting against its field: the field's type (an int is a float too, a bool is neither), finite
    floats, `choices`, the range rules (ge/gt/le/lt) in its metadata. Raises one EdgeTicketError naming the option,
    e.g. "--lr must be a finite number > 0 (got inf)"."""
    for section, f in iter_fields():
        value = getattr(getattr(cfg, section), f.name)
        if value is None and f.default is None:
            continue
        option = "--" + f.name.replace("_", "-")
        kind = field_type(f)
        rules, why = f.metadata.get("rules") or {}, f.metadata.get("why")
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if ok and kind is float:
            ok = math.isfinite(value)
        ok = ok and not (f.metadata.get("choices") and value not in f.metadata["choices"])
        ok = ok and all(_RULES[r](value, bound) for r, bound in rules.items())
        if not ok:
            if f.metadata.get("choices"):
                want = f"one of {', '.join(f.metadata['choices'])}"
            else:
                want = " ".join(x for x in (_KINDS.get(kind, str(kind)), _describe(rules)) if x)
            raise EdgeTicketError(f"{option} must be {want}{f', as {why}' if why else ''} (got {value!r})")


_RULES = {"ge": lambda v, b: v >= b, "gt": lambda v, b: v > b, "le": lambda v, b: v <= b, "lt": lambda v, b: v < b}
_SYMBOLS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def _describe(rules: dict) -> str:
    """'> 0', '>= 1', 'in (0, 1)', 'in [0, 1)'... from the ge/gt/le/lt rules of a field."""
    lo = [k for k in ("gt", "ge") if k in rules]
    hi = [k for k in ("lt", "le") if k in rules]
    num = lambda b: str(b) if isinstance(b, int) else f"{b:g}"
    if lo and hi:
        return (f"in {'(' if lo[0] == 'gt' else '['}{num(rules[lo[0]])}, {num(rules[hi[0]])}"
                f"{')' if hi[0] == 'lt' else ']'}")
    return " ".join(f"{_SYMBOLS[k]} {num(rules[k])}" for k in lo + hi)


def parse_int_list(text: str, option: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise EdgeTicketError(f"{option} must be comma-separated integers, got '{text}'") from None


def iter_fields():
    """(section, dataclasses.Field) for every setting, in declaration order."""
    for name, klass in SECTIONS.items():
        for f in fields(klass):
            yield name, f


@functools.lru_cache(maxsize=None)  # every config built checks every field's type (check_settings)
def field_type(f: dataclasses.Field) -> Any:
    """The Python type of a setting, Optional[...] unwrapped (annotations are strings here: resolve them)."""
    owner = next(klass for klass in SECTIONS.values() if f in fields(klass))
    t = typing.get_type_hints(owner)[f.name]
    args = [a for a in typing.get_args(t) if a is not type(None)]
    return args[0] if typing.get_origin(t) is typing.Union and len(args) == 1 else t
