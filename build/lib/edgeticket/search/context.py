"""Run context: config, data, device, distributed rank, logging and progress bars."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Iterable

import torch

from ..hparams import SearchConfig


@dataclass
class Context:
    cfg: SearchConfig
    data: object  # edgeticket.data.Dataset
    device: torch.device
    quiet: bool = False
    rank: int = 0
    world: int = 1
    _printed: list = field(default_factory=list)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def log(self, msg: str) -> None:
        if self.is_main and not self.quiet:
            print(msg, file=sys.stderr, flush=True)

    def progress(self, it: Iterable, total: int, desc: str) -> Iterable:
        """A per-epoch progress bar on a TTY; silent when quiet, not a TTY, or not the main process."""
        if self.quiet or not self.is_main or not sys.stderr.isatty():
            return it
        from tqdm import tqdm

        return tqdm(it, total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            return DDP(model, device_ids=ids)
        return model

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when available, else cpu. Under torchrun each rank takes its LOCAL_RANK GPU."""
    from ..errors import EdgeTicketError

    if name not in ("auto", "cpu", "cuda"):
        raise EdgeTicketError(f"unknown device '{name}'; valid: auto, cpu, cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise EdgeTicketError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu "
                              "or install a CUDA build of torch")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world) from torchrun's environment; initialises the process group (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size()
