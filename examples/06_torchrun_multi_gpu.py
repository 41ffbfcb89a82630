"""Fit IRFA on several GPUs (or CPU processes) with torchrun; rank 0 writes the files.

    # one node, 4 GPUs
    torchrun --nproc-per-node 4 examples/06_torchrun_multi_gpu.py SESSION.nwb OUTPUT_DIR
    # two nodes: see examples/slurm_two_nodes.sh
    # continue an interrupted run from its checkpoint (same data, same options)
    torchrun --nproc-per-node 4 examples/06_torchrun_multi_gpu.py SESSION.nwb OUTPUT_DIR --resume
    # without a file: a simulated recording (generated identically on every rank)
    torchrun --nproc-per-node 2 examples/06_torchrun_multi_gpu.py - OUTPUT_DIR

Every process runs this whole script: it loads the same data and calls the same ``fit``.
``IRFA(distributed="auto")`` sees the variables torchrun sets (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``), joins the process group (NCCL on GPUs, gloo on CPUs), trains one model with
DistributedDataParallel and synchronised batch norm, and splits each batch of ``batch_size``
samples between the processes. Afterwards every rank holds the same weights; only rank 0
saves the model, evaluates and writes the results. Run without torchrun, it is an ordinary
single-process fit. ``IRFA_EXAMPLE_TINY=1`` shrinks everything to a CPU smoke test.
"""

import argparse
import os
from pathlib import Path

import irfa_nwb
from irfa_nwb.estimator.distributed import is_main_process

TINY = os.environ.get("IRFA_EXAMPLE_TINY", "") not in ("", "0")

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("source", help="NWB file, dandi:// address or URL; '-' for simulated data")
parser.add_argument("output", nargs="?", default="torchrun_output", help="output folder")
parser.add_argument("--resume", action="store_true",
                    help="continue from OUTPUT/checkpoint.safetensors when it exists")
args = parser.parse_args()

out = Path(args.output)
out.mkdir(parents=True, exist_ok=True)  # on every rank: harmless, and the folder may be shared
checkpoint = out / "checkpoint.safetensors"

if args.source == "-":
    # deterministic: every rank simulates the same recording, no file to share
    ds = irfa_nwb.simulate_recording(
        n_stimuli=48 if TINY else 2400, n_test=8 if TINY else 60, n_repeats=2 if TINY else 10,
        image_size=16 if TINY else 64, random_state=0,
    )
else:
    ds = irfa_nwb.load_dataset(args.source)
train, test = irfa_nwb.split_stimuli(ds, random_state=0)  # the same split on every rank

tiny = dict(image_size=16, channels=8, width=8, max_iter=2, perceptual_weight=0,
            adversarial_weight=0) if TINY else {}
model = irfa_nwb.IRFA(
    batch_size=8,  # the global batch: 2 samples per process on 4 processes
    checkpoint_path=checkpoint,  # written by rank 0 after every epoch
    random_state=0,  # the same initial weights and data order on every rank
    verbose=1,  # progress bar on rank 0 only
    **tiny,
)
resume_from = checkpoint if args.resume and checkpoint.exists() else None
model.fit(train.responses, train.images, resume_from=resume_from)

if is_main_process():  # False on ranks 1, 2, ...: they stop here
    model.save(out / "model.safetensors", overwrite=True)
    results = irfa_nwb.evaluate(model, test)
    path = irfa_nwb.write_results(out / "results.nwb", results, overwrite=True)
    print(f"rank 0: {model.n_iter_} epochs, held-out pixel r "
          f"{results.attrs['mean_pixel_r']:.3f}; wrote {path}")
