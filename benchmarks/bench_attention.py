"""Benchmark: factorised vs dense IRFA attention layer, forward + backward, time and memory.

Runs both implementations side by side in one run at the paper's shape (n 8, heads 15,
channels 32, kernel 4) and prints the ratios. Peak memory is measured in a fresh subprocess per
case as the growth of the process's peak resident set during one forward + backward pass.

    python benchmarks/bench_attention.py [--sizes 64 128] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

N, HEADS, CHANNELS, KERNEL, UNITS = 8, 15, 32, 4, 64


def build(size: int, implementation: str, device: str):
    from irfa_nwb.model.attention import InverseReceptiveFieldAttention

    torch.manual_seed(0)
    layer = InverseReceptiveFieldAttention(
        HEADS, CHANNELS, size, KERNEL, head_sizes=[UNITS] * HEADS, implementation=implementation
    ).to(device)
    inputs = [torch.randn(N, UNITS, device=device) for _ in range(HEADS)]
    grad = torch.randn(N, CHANNELS, size, size, device=device)
    return layer, inputs, grad


def step(layer, inputs, grad) -> None:
    """One forward and backward pass of the layer alone (a fixed upstream gradient)."""
    layer.zero_grad(set_to_none=True)
    layer(inputs).backward(grad)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_case(size: int, implementation: str, device: str, repeats: int) -> float:
    layer, inputs, grad = build(size, implementation, device)
    for _ in range(2 if implementation == "dense" else 3):  # warm-up: allocator, kernels
        step(layer, inputs, grad)
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        step(layer, inputs, grad)
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_case(size: int, implementation: str, device: str) -> float:
    """Peak memory growth (MiB) during one forward + backward, measured in this process.

    CUDA: the allocator's peak. CPU: resident set sampled every 0.2 ms by a thread (Linux),
    after a warm-up pass; run with ``MALLOC_MMAP_THRESHOLD_`` set low (as
    :func:`memory_in_subprocess` does) so that freed buffers leave the resident set.
    """
    import threading

    layer, inputs, grad = build(size, implementation, device)
    if device.startswith("cuda"):
        step(layer, inputs, grad)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step(layer, inputs, grad)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    step(layer, inputs, grad)  # warm-up: one-time allocations (thread pools, kernels)
    layer.zero_grad(set_to_none=True)
    base = _rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    step(layer, inputs, grad)
    done.set()
    thread.join()
    peak[0] = max(peak[0], _rss_bytes())
    return (peak[0] - base) / 2**20


def memory_in_subprocess(size: int, implementation: str, device: str) -> float:
    code = (
        "import json, sys; sys.path.insert(0, {root!r}); "
        "from benchmarks.bench_attention import memory_case; "
        "print(json.dumps(memory_case({size}, {impl!r}, {device!r})))"
    ).format(root=str(__import__("pathlib").Path(__file__).resolve().parents[1]),
             size=size, impl=implementation, device=device)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(
        f"IRFA attention forward+backward, n={N} heads={HEADS} c={CHANNELS} k={KERNEL}, "
        f"device={args.device}, torch {torch.__version__}, threads={torch.get_num_threads()}"
    )
    header = (
        f"{'size':>5} {'dense s':>9} {'fact. s':>9} {'speed-up':>9} "
        f"{'dense MiB':>10} {'fact. MiB':>10} {'mem ratio':>10}"
    )
    print(header)
    for size in args.sizes:
        dense_reps = max(1, args.repeats // 2)
        t_fact = time_case(size, "factorized", args.device, args.repeats)
        t_dense = time_case(size, "dense", args.device, dense_reps)
        m_fact = memory_in_subprocess(size, "factorized", args.device)
        m_dense = memory_in_subprocess(size, "dense", args.device)
        print(
            f"{size:>5} {t_dense:>9.3f} {t_fact:>9.4f} {t_dense / t_fact:>8.1f}x "
            f"{m_dense:>10.1f} {m_fact:>10.1f} {m_dense / max(m_fact, 1e-3):>9.1f}x",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
