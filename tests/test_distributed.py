"""Data-parallel training under torchrun on CPUs (gloo): two processes, a tiny configuration.

Each test launches ``tests/distributed_worker.py`` with ``python -m torch.distributed.run``
(torchrun) and checks what the ranks wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

WORKER = Path(__file__).resolve().parent / "distributed_worker.py"
TIMEOUT = 240  # bounds every launch: a hang fails the test instead of the suite

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="needs torch.distributed with gloo",
)


def _run(mode: str, out: Path, nproc: int | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc-per-node={nproc}"] if nproc else [sys.executable])
    return subprocess.run([*launcher, str(WORKER), mode, str(out)], env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=False)


def test_two_processes_train_one_model_with_identical_weights(tmp_path):
    done = _run("fit", tmp_path, nproc=2)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = _weights(tmp_path / "weights_rank0.pt"), _weights(tmp_path / "weights_rank1.pt")
    assert rank0["state"].keys() == rank1["state"].keys()
    for key in rank0["state"]:
        assert torch.equal(rank0["state"][key], rank1["state"][key]), key
    # the history holds global means: the same on every rank
    def untimed(history):
        return [{k: v for k, v in h.items() if k != "time"} for h in history]

    np.testing.assert_equal(untimed(rank0["history"]), untimed(rank1["history"]))  # NaN-aware
    assert len(rank0["history"]) == 2
    # checkpoints from rank 0 only, one file, loadable as a model
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == ["ckpt.safetensors"]
    from irfa_nwb import load_model

    assert load_model(tmp_path / "ckpt.safetensors").n_iter_ == 2


def test_two_half_batches_reproduce_one_full_batch(tmp_path):
    """No adversarial term, float64: 2 processes x 4 samples == 1 process x 8 samples."""
    (tmp_path / "ddp").mkdir()
    (tmp_path / "one").mkdir()
    done = _run("equivalence", tmp_path / "ddp", nproc=2)
    assert done.returncode == 0, done.stderr[-3000:]
    done = _run("equivalence", tmp_path / "one", nproc=None)
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = _weights(tmp_path / "ddp" / "weights_rank0.pt")["state"]
    one = _weights(tmp_path / "one" / "weights_rank0.pt")["state"]
    for key, value in one.items():
        if value.is_floating_point():
            scale = max(value.abs().max().item(), 1e-3)
            assert (ddp[key] - value).abs().max().item() <= 1e-5 * scale, key
    assert ddp["attention.key_weight"].dtype == torch.float64


def test_one_failing_rank_ends_the_job_with_a_clear_error(tmp_path):
    done = _run("fault", tmp_path, nproc=2)  # bounded by TIMEOUT: no hang
    assert done.returncode != 0
    assert "injected failure on rank 1" in done.stderr
