"""Training throughput (images/s, fwd+bwd+SGD step, T=5, batch 32) of edgeticket's model against the same
network run step by step in spikingjelly's single-step mode (the authors' style: the static image goes
through every layer, stem included, at each timestep). Both runs share the same weights and are timed
interleaved in one process, so machine noise hits both alike.

    .venv/bin/python bench/train_step.py [--arch vgg5] [--size 28] [--channels 1] [--batch 32] [--reps 10]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from edgeticket.models import REGISTRY
from edgeticket.models.base import ConvBNLIF
from edgeticket.search.train import prepare_for_training, to_input


class SingleStepLoop(torch.nn.Module):
    """The same modules, driven one timestep at a time in spikingjelly's 's' mode."""

    def __init__(self, net):
        super().__init__()
        self.net = copy.deepcopy(net)
        functional.set_step_mode(self.net, "s")

    def forward(self, x):
        functional.reset_net(self.net)
        n = self.net
        outs = []
        for _ in range(n.timesteps):
            s = n.stem.lif(n.stem.bn(n.stem.conv(x)))
            for layer in n.features:
                s = layer.lif(layer.bn(layer.conv(s))) if isinstance(layer, ConvBNLIF) else layer(s)
            outs.append(n.classifier(s.flatten(1)))
        return torch.stack(outs)


def step(model, opt, x, y):
    logits = model(to_input(x, torch.device("cpu")) if not isinstance(model, SingleStepLoop) else x)
    loss = F.cross_entropy(logits.flatten(0, 1), y.repeat(logits.shape[0]))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="vgg5", choices=[a for a in REGISTRY if a.startswith("vgg") or a == "tiny"])
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--timesteps", type=int, default=5)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    torch.manual_seed(0)
    ours = REGISTRY[a.arch](10, a.channels, a.size, timesteps=a.timesteps)
    loop = SingleStepLoop(ours)
    x = torch.randn(a.batch, a.channels, a.size, a.size)
    cpu = torch.device("cpu")
    y = torch.randint(0, 10, (a.batch,))
    with torch.no_grad():  # same function: identical spikes in eval mode
        ours.eval(), loop.eval()
        same = torch.allclose(ours(x), loop(x), atol=1e-4)
    ours.train(), loop.train()
    prepare_for_training(ours, cpu)  # edgeticket's training path (channels_last on CPU); the loop stays as written
    opts = {"edgeticket": torch.optim.SGD(ours.parameters(), lr=1e-3, momentum=0.9),
            "single-step loop": torch.optim.SGD(loop.parameters(), lr=1e-3, momentum=0.9)}
    models = {"edgeticket": ours, "single-step loop": loop}
    for name in models:  # warm-up
        for _ in range(2):
            step(models[name], opts[name], x, y)
    times = {name: [] for name in models}
    for _ in range(a.reps):
        for name in models:
            t0 = time.perf_counter()
            step(models[name], opts[name], x, y)
            times[name].append(time.perf_counter() - t0)
    print(f"train step, {a.arch} on {a.channels}x{a.size}x{a.size}, T={a.timesteps}, batch {a.batch}, "
          f"{torch.get_num_threads()} threads, {a.reps} interleaved reps (median); eval outputs equal: {same}")
    med = {n: statistics.median(t) for n, t in times.items()}
    for n, t in med.items():
        print(f"  {n:18s} {1000 * t:8.1f} ms/step  {a.batch / t:8.1f} images/s")
    print(f"  ratio edgeticket / single-step loop throughput: {med['single-step loop'] / med['edgeticket']:.2f}x "
          f"(goal >= 1.5x)")


if __name__ == "__main__":
    main()
