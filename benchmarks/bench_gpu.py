"""GPU benchmark of IRFA training at the published configuration (run by gpu_check.sh).

Published configuration: batch 8, 15 heads x 64 units, c = 32, 64 px, U-Net / PatchGAN width
64, VGG19 perceptual loss at 224 px (random weights: timing does not depend on them), recipe
"published" (discriminator on batch 0, 100, 200... of each epoch). Prints, side by side from
one run on one device:

- seconds per step in float32 and with mixed precision (bfloat16 autocast), for a batch that
  updates the discriminator and one that does not, and the per-batch average over an epoch;
- samples per second, peak GPU memory;
- the projected time of 100 epochs at TVSD size (22,248 training images, 2,781 steps/epoch);
- the same per-sample throughput at larger batches (what data-parallel training across GPUs
  each running the published batch, or a larger global batch, can reach);
- optionally with ``torch.compile`` on the U-Net.

    python benchmarks/bench_gpu.py [--steps 20] [--compile] [--batches 8 32 128]

Exits 0 with a message on a machine without CUDA.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torchvision

from irfa_nwb.estimator._training import TrainingStep
from irfa_nwb.estimator.recipes import RECIPES
from irfa_nwb.model.generator import PatchDiscriminator
from irfa_nwb.model.losses import PerceptualLoss
from irfa_nwb.model.network import IRFANetwork, split_heads

HEADS, UNITS, CHANNELS, SIZE = 15, 64, 32, 64
TVSD_IMAGES = 22248
EVERY = RECIPES["published"]["discriminator_every"]


def make_step(batch: int, mixed: bool, compiled: bool) -> TrainingStep:
    settings = RECIPES["published"]
    torch.manual_seed(0)
    network = IRFANetwork([UNITS] * HEADS, CHANNELS, SIZE, 4,
                          bottleneck_norm=settings["bottleneck_norm"], init=settings["init"])
    network = network.cuda()
    if compiled:
        network.generator = torch.compile(network.generator)
    discriminator = PatchDiscriminator(CHANNELS + 3, output=settings["discriminator_output"])
    perceptual = PerceptualLoss(torchvision.models.vgg19(weights=None).features, input_size=224)
    return TrainingStep(
        network, discriminator.cuda(), perceptual.cuda(),
        pixel_weight=0.3, perceptual_weight=0.69, adversarial_weight=0.01,
        lr=7.8e-4, discriminator_lr=1e-4,
        discriminator_every=settings["discriminator_every"],
        condition_gradient=settings["condition_gradient"],
        running_stats=settings["running_stats"],
        generator=torch.Generator().manual_seed(0), mixed_precision=mixed,
    )


def timed(step: TrainingStep, batch: int, batch_index: int, repeats: int) -> float:
    gen = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(batch, HEADS * UNITS, device="cuda", generator=gen)
    index = [torch.arange(h * UNITS, (h + 1) * UNITS, device="cuda") for h in range(HEADS)]
    y = torch.rand(batch, 3, SIZE, SIZE, device="cuda", generator=gen)
    inputs = split_heads(x, index)
    step.network.train()
    step.discriminator.train()
    for _ in range(3):  # warm-up: kernels, autotuning, allocator, compilation
        step(inputs, y, batch_index)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(inputs, y, batch_index)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--batches", type=int, nargs="*", default=[8, 32, 128])
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device on this machine; nothing to measure")
        return 0
    name = torch.cuda.get_device_name(0)
    print(f"device: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"bf16: {torch.cuda.is_bf16_supported()}", flush=True)
    steps_per_epoch = TVSD_IMAGES // 8
    rows = []
    variants = [("fp32", False, False), ("mixed precision", True, False)]
    if args.compile:
        variants += [("fp32 + compile", False, True), ("mixed + compile", True, True)]
    for label, mixed, compiled in variants:
        torch.cuda.reset_peak_memory_stats()
        step = make_step(8, mixed, compiled)
        with_d = timed(step, 8, 0, max(3, args.steps // 4))
        without = timed(step, 8, 1, args.steps)
        per = (with_d + (EVERY - 1) * without) / EVERY
        peak = torch.cuda.max_memory_allocated() / 2**20
        hours = 100 * steps_per_epoch * per / 3600
        rows.append((label, with_d, without, per, 8 / per, peak, hours))
        print(f"{label:<18} step with D {with_d * 1e3:7.1f} ms, without {without * 1e3:7.1f} ms,"
              f" per batch {per * 1e3:7.1f} ms, {8 / per:7.1f} samples/s, peak {peak:7.0f} MiB,"
              f" 100 TVSD epochs ~ {hours:5.2f} h", flush=True)
        del step
        torch.cuda.empty_cache()
    print(f"mixed precision speed-up: {rows[0][3] / rows[1][3]:.2f}x")
    print("throughput at larger batches (samples/s; the global batch of a multi-GPU job):")
    for batch in args.batches:
        if batch == 8:
            continue
        for label, mixed in (("fp32", False), ("mixed", True)):
            torch.cuda.reset_peak_memory_stats()
            try:
                step = make_step(batch, mixed, False)
                t = timed(step, batch, 1, max(3, args.steps // 2))
            except torch.OutOfMemoryError:
                print(f"  batch {batch:4d} {label}: out of memory")
                continue
            peak = torch.cuda.max_memory_allocated() / 2**20
            print(f"  batch {batch:4d} {label:<5}: {batch / t:8.1f} samples/s, "
                  f"peak {peak:7.0f} MiB, 100 TVSD epochs ~ "
                  f"{100 * TVSD_IMAGES / (batch / t) / 3600:5.2f} h", flush=True)
            del step
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
