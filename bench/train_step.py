"""Training throughput (images/s of full training steps: forward, loss, backward, SGD, mask upkeep) of edgeticket's
training step against the authors' training loop, on the same network, weights and mask, timed side by side in
one process.

What is compared (defaults: vgg16 on 3x32x32, T=5, batch 32, CPU, a 50%-sparse global-magnitude mask):

* edgeticket: the step of edgeticket/search/train.py, run with its own pieces: the model from
  edgeticket.models (multi-step: every stateless layer runs once on the time-folded [T*B, ...] tensor, the
  LIF layers in spikingjelly's multi-step mode), prepare_for_training / to_input (channels_last on CPU),
  loss_fn (mean over t of CE), the loss read back to the host, SGD from make_optimizer, MaskedTraining
  (gradient hooks + re-masking after the step) and the per-batch accuracy count.
* the authors' loop, as their code does it (Kim et al., archs/cifarsvhn/vgg.py and train() of
  train_snn_laterewindlth.py), written here independently of edgeticket's model: a VGG-BN whose features
  are conv-BN-LIF blocks with single-step spikingjelly LIF modules (tau 4/3, v_th 1, v_reset 0, ATan,
  detach_reset); the first conv+BN runs ONCE per batch on the static image, then a python loop over T runs
  the rest of the network one timestep at a time; loss = sum_t CE(out_t) / T; after backward the gradient of
  every weight whose |w| < 1e-6 is set to zero; SGD step; functional.reset_net. Plain NCHW tensors and fp32
  on CPU (the authors trained under CUDA fp16 autocast, see the GPU variants). One deliberate difference,
  so that both do the same arithmetic: the convs have no bias (edgeticket's layout; a bias before BN is
  cancelled by it); the layer shapes are checked equal at start.

Both use SGD lr 0.1, momentum 0.9, weight decay 5e-4, start from the same weights and mask (their eval
outputs are compared before timing) and train on the same random batch. Timing: after warm-up, the
variants run in alternating blocks of --block steps (order reversed every round, so drift hits all alike);
images/s is the median over blocks. The ratio is edgeticket / authors' loop; the goal is >= 1.5x. Random
inputs: the dense kernels' cost does not depend on the spike pattern, so this measures the step's compute
and framework overhead, not data loading (which neither loop includes here).

--device cuda (when CUDA is available) times the same two steps on the GPU, plus both under bf16 autocast,
names the LIF implementation spikingjelly picked for the multi-step path, and reruns the comparison in a
child process for each other spikingjelly CUDA implementation that is importable (cuda, triton; chosen
by SJ_LIF_CUDA_IMPLEMENTATION). spikingjelly 2.0.0 has no cupy backend: its CUDA providers are native CUDA,
triton and torch. --compile adds edgeticket's model under torch.compile (slow to compile on a small CPU).

    .venv/bin/python bench/train_step.py            # the measurement (minutes on a 2-core CPU)
    .venv/bin/python bench/train_step.py --quick    # smoke run: vgg16 at 8x8, batch 4, a few seconds
    [--arch vgg16] [--size 32] [--channels 3] [--batch 32] [--timesteps 5] [--sparsity 0.5] [--reps 6]
    [--block 2] [--threads N] [--device cpu|cuda] [--compile]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace

import torch
from torch import nn

from edgeticket.models import REGISTRY  # imports edgeticket.snn first: it quiets torch's "Triton not available"
from edgeticket.pruning import MaskedTraining, apply_mask
from edgeticket.pruning.scoring import magnitude
from edgeticket.pruning.selection import mask_at_sparsity
from edgeticket.search.train import loss_fn, make_optimizer, prepare_for_training, to_input
from spikingjelly.activation_based import functional, neuron, surrogate

# VGG16 of the paper (configuration "D" of Simonyan & Zisserman, as in the authors' archs/cifarsvhn/vgg.py)
PAPER_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
SGD = SimpleNamespace(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4)  # the paper's / authors' SGD
EPS = 1e-6  # the authors' test for a pruned weight


class AuthorsVGG(nn.Module):
    """The authors' spiking VGG-BN: features = [conv, BN, LIF, (pool), conv, BN, LIF, ...] with single-step LIFs;
    forward runs features[:2] (first conv+BN) once, then features[2:] and the classifier once per timestep and
    returns the list of per-timestep logits. Pooling that would shrink the map below 1x1 is left out (only
    matters below 32x32), so the layer shapes follow edgeticket's."""

    def __init__(self, cfg: list, num_classes: int, in_channels: int, image_size: int, timesteps: int):
        super().__init__()
        self.total_timestep = timesteps
        layers: list[nn.Module] = []
        c, size = in_channels, image_size
        for v in cfg:
            if v == "M":
                if size >= 2:
                    layers.append(nn.MaxPool2d(2, 2))
                    size //= 2
                continue
            layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v),
                       neuron.LIFNode(tau=4.0 / 3.0, v_threshold=1.0, v_reset=0.0, surrogate_function=surrogate.ATan(),
                                      detach_reset=True, step_mode="s")]
            c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        static_x = self.features[:2](x)
        return [self.classifier(torch.flatten(self.features[2:](static_x), 1)) for _ in range(self.total_timestep)]


def authors_step(model, optimizer, criterion, x, y, device, timesteps, autocast=None):
    """One iteration of the authors' train(): batch to the device, summed per-timestep CE / T, backward, zero the
    gradients of pruned weights, step, reset the neurons."""
    optimizer.zero_grad()
    x, y = x.to(device), y.to(device)
    with autocast() if autocast else _null():
        loss = 0.0
        for out in model(x):
            loss = loss + criterion(out, y) / timesteps
    loss.backward()
    for name, p in model.named_parameters():
        if "weight" in name and p.dim() > 1:
            p.grad.data = torch.where(p.data.abs() < EPS, torch.zeros_like(p.grad), p.grad)
    optimizer.step()
    functional.reset_net(model)


def edgeticket_step(model, optimizer, masked, x, y, device, autocast=None):
    """The body of edgeticket.search.train.train()'s batch loop."""
    xb, yb = to_input(x, device), y.to(device, non_blocking=True)
    with autocast() if autocast else _null():
        logits = model(xb)
        loss = loss_fn(logits, yb)
    float(loss.detach())  # train() reads the loss back every step (its non-finite check)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if masked is not None:
        masked.after_step()
    int((logits.detach().sum(0).argmax(1) == yb).sum())


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def copy_weights(src: nn.Module, dst: nn.Module) -> bool:
    """Copy edgeticket's weights and BN buffers into the authors' model, in order; True when every shape matched."""
    a, b = list(src.state_dict().values()), list(dst.state_dict().values())
    if len(a) != len(b) or any(s.shape != d.shape for s, d in zip(a, b)):
        return False
    with torch.no_grad():
        for s, d in zip(a, b):
            d.copy_(s)
    return True


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="vgg16", choices=[a for a in REGISTRY if a.startswith("vgg") or a == "tiny"],
                    help="vgg16 (default) is the paper's; the others take edgeticket's layer list for both models")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--timesteps", type=int, default=5)
    ap.add_argument("--sparsity", type=float, default=0.5, help="global magnitude mask (0: dense, no MaskedTraining)")
    ap.add_argument("--reps", type=int, default=6, help="timed blocks per variant")
    ap.add_argument("--block", type=int, default=2, help="steps per timed block")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--compile", action="store_true", help="also time edgeticket's model under torch.compile")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice); on a "
                    "busy machine 1 avoids OpenMP threads waiting on each other")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke run: 8x8 input, batch 4, 2 blocks of 1 step")
    a = ap.parse_args()
    if a.quick:
        a.size, a.batch, a.reps, a.block, a.warmup = 8, 4, 2, 1, 1
    return a


def main():
    a = parse()
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: CUDA is not available here; timing on the CPU instead")
        dev = torch.device("cpu")
    if a.threads:
        torch.set_num_threads(a.threads)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if dev.type == "cpu" and torch.get_num_threads() > 1 and load > cores - 0.5:
        print(f"warning: load average {load:.1f} on {cores} cores: other processes are running; with "
              f"{torch.get_num_threads()} threads OpenMP contention slows the many small ops of the authors' loop "
              "more than edgeticket's few large ones and skews the ratio (use --threads 1 or an idle machine)",
              flush=True)
    torch.manual_seed(a.seed)
    ours = REGISTRY[a.arch](a.classes, a.channels, a.size, timesteps=a.timesteps)
    from edgeticket.models.vgg import CONFIGS  # only for --arch other than vgg16: the layer list, not the model
    cfg = PAPER_VGG16 if a.arch == "vgg16" else CONFIGS[a.arch]
    theirs = AuthorsVGG(cfg, a.classes, a.channels, a.size, a.timesteps)

    mask = None
    if a.sparsity > 0:
        sd = ours.state_dict()
        mask = mask_at_sparsity(magnitude({n: sd[n] for n in ours.prunable()}), a.sparsity)
        apply_mask(ours, {n: m.float() for n, m in mask.items()})
    shapes_equal = copy_weights(ours, theirs)
    if not shapes_equal:
        raise SystemExit(f"{a.arch}: the authors'-style model's layer shapes differ from edgeticket's")
    x = torch.randn(a.batch, a.channels, a.size, a.size)
    y = torch.randint(0, a.classes, (a.batch,))
    with torch.no_grad():  # same function: identical logits in eval mode
        ours.eval(), theirs.eval()
        same = torch.allclose(ours(x), torch.stack(theirs(x)), atol=1e-4)
        functional.reset_net(theirs)
    ours.train(), theirs.train()

    prepare_for_training(ours, dev)  # edgeticket's training path (channels_last on CPU)
    masked = MaskedTraining(ours, mask) if mask is not None else None
    theirs.to(dev)
    criterion = nn.CrossEntropyLoss()
    variants = {}  # name -> step()

    def add_ours(name, model, autocast=None):
        opt = make_optimizer(ours, SGD)
        variants[name] = lambda: edgeticket_step(model, opt, masked, x, y, dev, autocast)

    def add_theirs(name, autocast=None):
        m = copy.deepcopy(theirs)
        opt = torch.optim.SGD(m.parameters(), SGD.lr, SGD.momentum, SGD.weight_decay)
        variants[name] = lambda: authors_step(m, opt, criterion, x, y, dev, a.timesteps, autocast)

    A, B = "edgeticket", "authors' loop"
    add_ours(A, ours)
    add_theirs(B)
    notes = []
    if dev.type == "cuda":
        bf16 = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
        add_ours(A + " bf16 autocast", ours, bf16)
        add_theirs(B + " bf16 autocast", bf16)
        try:
            impl = functional.neuron_implementation("lif", dev)
            notes.append(f"spikingjelly multi-step LIF implementation on {dev}: {impl['implementation']}"
                         + (f" (unavailable: {impl['unavailable']})" if impl["unavailable"] else ""))
        except Exception as e:  # noqa: BLE001 - a diagnostic only
            impl = None
            notes.append(f"spikingjelly multi-step LIF implementation: not reported ({e})")
    if a.compile:
        try:
            add_ours(A + " + torch.compile", torch.compile(ours))
        except Exception as e:  # noqa: BLE001
            notes.append(f"torch.compile: skipped ({type(e).__name__}: {e})")

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for name in list(variants):  # warm-up (and compile)
        try:
            for _ in range(a.warmup):
                variants[name]()
            sync()
        except Exception as e:  # noqa: BLE001 - an optional variant that fails is reported, not timed
            if name in (A, B):
                raise
            notes.append(f"{name}: skipped ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
            del variants[name]
    times = {n: [] for n in variants}
    order = list(variants)
    for r in range(a.reps):
        for name in (order if r % 2 == 0 else order[::-1]):
            sync()
            t0 = time.perf_counter()
            for _ in range(a.block):
                variants[name]()
            sync()
            times[name].append((time.perf_counter() - t0) / a.block)

    threads = f"{torch.get_num_threads()} threads" if dev.type == "cpu" else torch.cuda.get_device_name(dev)
    print(f"train step, {a.arch} on {a.channels}x{a.size}x{a.size}, T={a.timesteps}, batch {a.batch}, "
          f"{100 * a.sparsity:.0f}% sparse (global magnitude mask), {dev.type} ({threads}); {a.reps} alternating "
          f"blocks of {a.block} step(s) per variant, median")
    print(f"  layer shapes equal: {shapes_equal}; eval outputs equal (same weights and mask): {same}")
    for line in notes:
        print(f"  {line}")
    med = {n: statistics.median(t) for n, t in times.items()}
    for n, t in med.items():
        print(f"  {n:34s} {1000 * t:9.1f} ms/step  {a.batch / t:9.1f} images/s")
    per_block = [tb / ta for ta, tb in zip(times[A], times[B])]
    ratio = med[B] / med[A]
    print(f"  ratio edgeticket / authors' loop (images/s): {ratio:.2f}x (per block {min(per_block):.2f}-"
          f"{max(per_block):.2f}x); goal >= 1.5x: {'met' if ratio >= 1.5 else 'not met'}")
    for ours_name, theirs_name in ((A + " bf16 autocast", B + " bf16 autocast"), (A + " + torch.compile", B)):
        if ours_name in med and theirs_name in med:
            print(f"  ratio {ours_name} / {theirs_name}: {med[theirs_name] / med[ours_name]:.2f}x")
    if dev.type == "cuda" and "SJ_LIF_CUDA_IMPLEMENTATION" not in os.environ:
        other_implementations(impl or {"implementation": None, "unavailable": {}})


def other_implementations(impl: dict):
    """Rerun this benchmark in a child process for each other available spikingjelly CUDA LIF implementation."""
    for name in ("cuda", "triton"):
        if name == impl["implementation"]:
            continue
        if name == "triton" and importlib.util.find_spec("triton") is None:
            print("spikingjelly LIF implementation triton: skipped (the triton package is not importable)")
            continue
        if name in impl["unavailable"]:
            print(f"spikingjelly LIF implementation {name}: skipped ({impl['unavailable'][name]})")
            continue
        print(f"\nspikingjelly LIF implementation {name} (SJ_LIF_CUDA_IMPLEMENTATION={name}, a separate process):",
              flush=True)
        env = dict(os.environ, SJ_LIF_CUDA_IMPLEMENTATION=name)
        r = subprocess.run([sys.executable, *sys.argv], env=env, capture_output=True, text=True)
        print(r.stdout if r.returncode == 0 else f"  skipped: the run failed: {(r.stderr or '').strip()[-500:]}")


if __name__ == "__main__":
    main()
