"""Benchmark: IRFA training steps against the reference formulation, side by side.

Published configuration: batch 8, 15 heads × 64 units, 32 channels, 64 px images, U-Net and
PatchGAN of width 64, perceptual loss on VGG19 at 224 px over 5 layers. VGG19 weights are
randomly initialised here (timing does not depend on them, and nothing is downloaded).

* ours, published recipe (``IRFA()``): :class:`irfa_nwb.estimator._training.TrainingStep`
  with the factorised attention and the single-pass perceptual loss (target features without
  autograd, frozen VGG); the discriminator is updated on batch 0, 100, 200… of each epoch, so
  a batch with the update and one without are timed and the per-batch average over 100
  batches is reported.
* ours, pix2pix recipe (``IRFA(recipe="pix2pix")``): discriminator updated on every batch.
* reference formulation: what the authors' training loop computes per batch — dense
  attention, the attention layer and U-Net run once more in training mode (outputs unused;
  the U-Net once more again on discriminator batches), a perceptual loss that re-runs the VGG19
  prefix ``features[:i]`` from the input for every layer and both images with the VGG
  parameters left trainable (everything on the autograd graph). Timed with the discriminator
  updated on every batch and on none, like ours.

Prints seconds per step, the speed-ups (published recipe vs reference with the same
discriminator schedule; D on every batch on both sides, the configuration of the 0.1
benchmark) and training throughput.

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
from irfa_nwb.estimator.recipes import RECIPES
from irfa_nwb.model.generator import PatchDiscriminator
from irfa_nwb.model.losses import IMAGENET_MEAN, IMAGENET_STD, VGG19_LAYERS, PerceptualLoss
from irfa_nwb.model.network import IRFANetwork, split_heads

BATCH, HEADS, UNITS, CHANNELS, SIZE = 8, 15, 64, 32, 64
EVERY = RECIPES["published"]["discriminator_every"]


class ReferencePerceptualLoss(torch.nn.Module):
    """Per-layer formulation: each layer re-runs ``features[:i]`` for both images, with grads."""

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
        for end in self.layers:
            prefix = self.features[:end]
            total = total + F.l1_loss(prefix(prep(prediction)), prefix(prep(target)))
        return total / len(self.layers)


class ReferenceStep(TrainingStep):
    """The reference loop's work per batch: extra forward passes before the usual step."""

    def __call__(self, inputs, target, batch_index=0):
        features = self.network.attention(inputs)  # the loop's irfa_maps
        self.network.generator(features)  # the loop's unused y_hat
        if self.updates_discriminator(batch_index):
            self.network.generator(features)  # Discriminator.train's g(x)
        return super().__call__(inputs, target, batch_index)


def make_step(kind: str, recipe: str, device: str, mixed_precision: bool = False):
    settings = RECIPES[recipe]
    torch.manual_seed(0)
    attention = "factorized" if kind == "ours" else "dense"
    network = IRFANetwork(
        [UNITS] * HEADS, CHANNELS, SIZE, 4, attention=attention,
        bottleneck_norm=settings["bottleneck_norm"], init=settings["init"],
    ).to(device)
    discriminator = PatchDiscriminator(
        CHANNELS + 3, output=settings["discriminator_output"], init=settings["init"] == "all"
    ).to(device)
    features = torchvision.models.vgg19(weights=None).features
    if kind == "ours":
        perceptual, cls = PerceptualLoss(features, input_size=224).to(device), TrainingStep
    else:
        perceptual, cls = ReferencePerceptualLoss(features).to(device), ReferenceStep
    return cls(
        network,
        discriminator,
        perceptual,
        pixel_weight=0.3,
        perceptual_weight=0.69,
        adversarial_weight=0.01,
        lr=7.8e-4,
        discriminator_lr=1e-4,
        discriminator_every=settings["discriminator_every"],
        condition_gradient=settings["condition_gradient"],
        running_stats=settings["running_stats"] if kind == "ours" else "standard",
        generator=torch.Generator().manual_seed(0),
        mixed_precision=mixed_precision,
    )


def time_steps(
    step: TrainingStep, device: str, repeats: int, batch_index: int, warmup_batch: int = 2
) -> float:
    """Median seconds of a step on the batch at ``batch_index`` of an epoch."""
    gen = torch.Generator().manual_seed(1)

    def batch(n):
        x = torch.randn(n, HEADS * UNITS, generator=gen).to(device)
        index = [torch.arange(h * UNITS, (h + 1) * UNITS, device=device) for h in range(HEADS)]
        return split_heads(x, index), torch.rand(n, 3, SIZE, SIZE, generator=gen).to(device)

    step.network.train()
    step.discriminator.train()
    step(*batch(warmup_batch), 0)  # warm-up on a small batch: kernels and allocator, cheaply
    times = []
    for _ in range(repeats):
        xs, y = batch(BATCH)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        step(xs, y, batch_index)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def per_batch(with_d: float, without_d: float, every: int) -> float:
    """Average seconds per batch when one batch in ``every`` updates the discriminator."""
    return (with_d + (every - 1) * without_d) / every


def row(name: str, seconds: float, note: str = "") -> None:
    print(f"{name:<58}{seconds:8.2f} s/step {BATCH / seconds:7.2f} samples/s  {note}",
          flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed steps of ours, each kind")
    parser.add_argument("--reference-steps", type=int, default=1)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args(argv)
    dev = args.device
    print(
        f"IRFA training step, batch {BATCH}, {HEADS} heads x {UNITS} units, c={CHANNELS}, "
        f"{SIZE} px, perceptual VGG19@224 x {len(VGG19_LAYERS)} layers, device={dev}, "
        f"torch {torch.__version__}, threads={torch.get_num_threads()}",
        flush=True,
    )
    published = make_step("ours", "published", dev)
    pub_d = time_steps(published, dev, args.steps, 0)
    pub_nod = time_steps(published, dev, args.steps, 1)
    pub = per_batch(pub_d, pub_nod, EVERY)
    row("ours, published recipe, batch updating D", pub_d)
    row("ours, published recipe, batch without D", pub_nod)
    row(f"ours, published recipe, per batch (D on 1 in {EVERY})", pub)
    pix = time_steps(make_step("ours", "pix2pix", dev), dev, args.steps, 0)
    row("ours, pix2pix recipe (D every batch, fp32)", pix)
    if dev.startswith("cuda"):
        amp = time_steps(make_step("ours", "pix2pix", dev, True), dev, args.steps, 0)
        row("ours, pix2pix recipe + mixed precision", amp, f"({pix / amp:.2f}x vs fp32)")
        pub_amp = time_steps(make_step("ours", "published", dev, True), dev, args.steps, 1)
        row("ours, published recipe + mixed precision, without D", pub_amp,
            f"({pub_nod / pub_amp:.2f}x vs fp32)")
    if not args.skip_reference:
        reference = make_step("reference", "published", dev)
        ref_d = time_steps(reference, dev, args.reference_steps, 0)
        ref_nod = time_steps(reference, dev, args.reference_steps, 1)
        ref = per_batch(ref_d, ref_nod, EVERY)
        row("reference formulation, batch updating D", ref_d)
        row("reference formulation, batch without D", ref_nod)
        row(f"reference formulation, per batch (D on 1 in {EVERY})", ref)
        print(f"speed-up, published recipe vs reference (same schedule): {ref / pub:.1f}x")
        print(f"speed-up, D on every batch on both sides (0.1's benchmark): {ref_d / pix:.1f}x")
    print(f"one epoch of TVSD (22,248 images), published recipe at this rate: "
          f"{22248 / (BATCH / pub) / 3600:.2f} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
