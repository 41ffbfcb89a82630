"""Peak host memory of fitting IRFA on a data set the size of TVSD (monkey N), on this machine.

    python benchmarks/memory_tvsd.py [--n-stimuli 22248] [--n-units 1024] [--image-size 64]
                                     [--source-size 64] [--seconds 60]

The responses and images are random (memory does not depend on their content) with TVSD's
shape: 22,248 training stimuli + 100 test stimuli, 1,024 electrodes in 16 arrays (the paper's
heads), images stored as uint8 at ``--source-size`` px (``load_tvsd(..., image_size=(64, 64))``
gives 64). Each measurement runs in a fresh process and reports its peak resident memory
(``ru_maxrss``): the data set alone, then ``IRFA().fit`` on it (the published network, no
perceptual loss, CPU) stopped with SIGINT after ``--seconds`` (the fit stops after the current
batch, as after Ctrl-C), so the peak covers data placement and training batches.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys


def _data(n_stimuli: int, n_units: int, source_size: int):
    import numpy as np
    import xarray as xr

    rng = np.random.default_rng(0)
    ids = np.arange(n_stimuli)
    groups = np.repeat([f"array{i:02d}" for i in range(16)], -(-n_units // 16))[:n_units]
    responses = xr.DataArray(
        rng.standard_normal((n_stimuli, n_units), dtype=np.float32),
        dims=("stimulus_id", "unit"),
        coords={"stimulus_id": ids, "electrode_group": ("unit", groups)},
    )
    images = xr.DataArray(
        rng.integers(0, 256, size=(n_stimuli, source_size, source_size, 3), dtype=np.uint8),
        dims=("stimulus_id", "y", "x", "channel"), coords={"stimulus_id": ids},
    )
    return responses, images


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _child(args: argparse.Namespace) -> None:
    import os
    import signal
    import threading
    import warnings

    import irfa_nwb

    responses, images = _data(args.n_stimuli, args.n_units, args.source_size)
    out = {"data_bytes": int(responses.nbytes + images.nbytes)}
    if args.what == "fit":
        import torch

        torch.set_num_threads(2)
        model = irfa_nwb.IRFA(image_size=args.image_size, perceptual_weight=0, max_iter=1,
                              device="cpu", random_state=0, verbose=0)
        timer = threading.Timer(args.seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(responses, images)
        timer.cancel()
        out["interrupted"] = bool(model.interrupted_)
    out["peak_mib"] = _peak_mib()
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stimuli", type=int, default=22248 + 100)
    parser.add_argument("--n-units", type=int, default=1024)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--source-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--what", choices=("data", "fit"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.what:
        _child(args)
        return
    rows = {}
    for what in ("data", "fit"):
        cmd = [sys.executable, __file__, "--what", what, "--n-stimuli", str(args.n_stimuli),
               "--n-units", str(args.n_units), "--image-size", str(args.image_size),
               "--source-size", str(args.source_size), "--seconds", str(args.seconds)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows[what] = json.loads(done.stdout.strip().splitlines()[-1])
    data_mib = rows["data"]["data_bytes"] / 2**20
    print(f"TVSD-sized data: {args.n_stimuli} stimuli x {args.n_units} units, "
          f"images {args.source_size} px uint8 -> targets {args.image_size} px")
    print(f"{'':32s}{'peak RSS (MiB)':>16s}")
    print(f"{'data set in memory':32s}{rows['data']['peak_mib']:16.0f}"
          f"   (arrays themselves: {data_mib:.0f} MiB)")
    print(f"{'IRFA.fit, stopped after ' + str(int(args.seconds)) + ' s':32s}"
          f"{rows['fit']['peak_mib']:16.0f}   (interrupted: {rows['fit']['interrupted']})")
    overhead = rows["fit"]["peak_mib"] - rows["data"]["peak_mib"]
    print(f"fit overhead over the data set: {overhead:.0f} MiB")


if __name__ == "__main__":
    main()
