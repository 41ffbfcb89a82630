"""Benchmark: one IRFA training step (generator + discriminator) against the reference formulation.

Published configuration: batch 8, 15 heads × 64 units, 32 channels, 64 px images, U-Net and
PatchGAN of width 64, perceptual loss on VGG19 at 224 px over 5 layers, discriminator updated
every step. VGG19 weights are randomly initialised here (timing does not depend on them, and
nothing is downloaded).

* ours: :class:`irfa_nwb.estimator._training.TrainingStep` with the factorised attention and the
  single-pass perceptual loss (target features without autograd, frozen VGG).
* reference formulation: the same networks and step, but the dense attention and a perceptual loss
  that re-runs the VGG19 prefix from the input for every layer, for both images, with the VGG
  parameters left trainable (everything stays on the autograd graph), as the reference code does.

Prints seconds per step side by side, the speed-up, and training throughput (samples/s).

    python benchmarks/bench_training_step.py [--device cpu|cuda] [--reference-steps 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision

from irfa_nwb.estimator._training import TrainingStep
from irfa_nwb.model.generator import PatchDiscriminator
from irfa_nwb.model.losses import IMAGENET_MEAN, IMAGENET_STD, VGG19_LAYERS, PerceptualLoss
from irfa_nwb.model.network import IRFANetwork

BATCH, HEADS, UNITS, CHANNELS, SIZE = 8, 15, 64, 32, 64


class ReferencePerceptualLoss(torch.nn.Module):
    """Per-layer formulation: each layer re-runs the VGG prefix for both images, with grads."""

    def __init__(self, features: torch.nn.Sequential, layers=VGG19_LAYERS, size: int = 224):
        super().__init__()
        self.features = features  # parameters keep requires_grad=True
        self.layers = layers
        self.size = size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, prediction, target):
        def prep(x):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear")
            return (x - self.mean) / self.std

        total = 0.0
        for index in self.layers:
            prefix = self.features[: index + 1]
            total = total + F.l1_loss(prefix(prep(prediction)), prefix(prep(target)))
        return total / len(self.layers)


def make_step(kind: str, device: str, mixed_precision: bool = False) -> TrainingStep:
    torch.manual_seed(0)
    attention = "factorized" if kind == "ours" else "dense"
    network = IRFANetwork([UNITS] * HEADS, CHANNELS, SIZE, 4, attention=attention).to(device)
    discriminator = PatchDiscriminator(CHANNELS + 3).to(device)
    features = torchvision.models.vgg19(weights=None).features
    if kind == "ours":
        perceptual = PerceptualLoss(features, input_size=224).to(device)
    else:
        perceptual = ReferencePerceptualLoss(features).to(device)
    return TrainingStep(
        network,
        discriminator,
        perceptual,
        pixel_weight=0.3,
        perceptual_weight=0.69,
        adversarial_weight=0.01,
        lr=7.8e-4,
        discriminator_lr=1e-4,
        generator=torch.Generator().manual_seed(0),
        mixed_precision=mixed_precision,
    )


def time_steps(step: TrainingStep, device: str, repeats: int, warmup_batch: int = 2) -> float:
    gen = torch.Generator().manual_seed(1)

    def batch(n):
        xs = [torch.randn(n, UNITS, generator=gen).to(device) for _ in range(HEADS)]
        return xs, torch.rand(n, 3, SIZE, SIZE, generator=gen).to(device)

    step(*batch(warmup_batch))  # warm-up on a small batch: kernels and allocator, cheaply
    times = []
    for _ in range(repeats):
        xs, y = batch(BATCH)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        step(xs, y)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed steps of ours")
    parser.add_argument("--reference-steps", type=int, default=1)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args(argv)
    print(
        f"IRFA training step, batch {BATCH}, {HEADS} heads x {UNITS} units, c={CHANNELS}, "
        f"{SIZE} px, perceptual VGG19@224 x {len(VGG19_LAYERS)} layers, device={args.device}, "
        f"torch {torch.__version__}, threads={torch.get_num_threads()}",
        flush=True,
    )
    ours = time_steps(make_step("ours", args.device), args.device, args.steps)
    print(f"ours (factorised, single-pass perceptual): {ours:8.2f} s/step  "
          f"{BATCH / ours:7.2f} samples/s", flush=True)
    if args.device.startswith("cuda"):
        amp = time_steps(make_step("ours", args.device, True), args.device, args.steps)
        print(f"ours + mixed precision:                    {amp:8.2f} s/step  "
              f"{BATCH / amp:7.2f} samples/s  ({ours / amp:.2f}x vs fp32)", flush=True)
    if not args.skip_reference:
        ref = time_steps(make_step("reference", args.device), args.device, args.reference_steps)
        print(f"reference formulation:                     {ref:8.2f} s/step  "
              f"{BATCH / ref:7.2f} samples/s", flush=True)
        print(f"speed-up of a training step: {ref / ours:.1f}x")
    print(f"one epoch of TVSD (22,248 images) at this rate: {22248 / (BATCH / ours) / 3600:.2f} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
