"""Checkpoints and resuming: a killed fit continues to exactly the uninterrupted weights;
Ctrl-C stops cleanly after writing a checkpoint; checkpoints are versioned model files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from irfa_nwb import IRFA, load_model
from irfa_nwb.errors import InputError
from irfa_nwb.estimator import _training
from irfa_nwb.estimator.persistence import FORMAT_VERSION

WORKER = Path(__file__).resolve().parent / "distributed_worker.py"
FAST = dict(image_size=16, channels=4, width=8, batch_size=8, perceptual_weight=0,
            random_state=0, discriminator_every=2, history_size=4)


def _worker(mode: str, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, str(WORKER), mode, str(out)], env=env,
                          capture_output=True, text=True, timeout=240)


def test_sigkill_during_epoch_3_then_resume_gives_the_uninterrupted_weights(tmp_path):
    killed = _worker("kill", tmp_path)
    assert killed.returncode == -signal.SIGKILL
    checkpoint = tmp_path / "ckpt.safetensors"
    assert load_model(checkpoint).n_iter_ == 2  # the last finished epoch before the kill
    for mode in ("resume", "full"):
        done = _worker(mode, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    resumed = torch.load(tmp_path / "resume.pt", weights_only=False)
    full = torch.load(tmp_path / "full.pt", weights_only=False)
    for part in ("state", "disc"):
        for key in full[part]:
            assert torch.equal(resumed[part][key], full[part][key]), (part, key)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3, 4, 5]
    def untimed(history):
        return [{k: v for k, v in h.items() if k != "time"} for h in history]

    np.testing.assert_equal(untimed(resumed["history"]), untimed(full["history"]))  # NaN-aware


def test_ctrl_c_stops_after_a_batch_with_a_checkpoint_and_resumes_exactly(tiny_data, tmp_path,
                                                                           monkeypatch):
    X, images, groups, _ = tiny_data
    original = _training.TrainingStep.__call__
    calls = {"n": 0}

    def interrupt_in_epoch_2(self, inputs, target, batch_index=0):
        calls["n"] += 1
        if calls["n"] == len(X) // 8 + 3:  # the 3rd batch of epoch 2
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, inputs, target, batch_index)

    ckpt = tmp_path / "ckpt.safetensors"
    monkeypatch.setattr(_training.TrainingStep, "__call__", interrupt_in_epoch_2)
    with pytest.warns(UserWarning, match="interrupted .* after epoch 1 of 3"):
        model = IRFA(max_iter=3, unit_groups=groups, checkpoint_path=ckpt, **FAST).fit(X, images)
    assert model.interrupted_ and model.n_iter_ == 1
    with pytest.warns(UserWarning, match="interrupted"):
        model.predict(X[:2])
    # the checkpoint's model is epoch 1's (as the estimator); it resumes mid-epoch 2
    saved = load_model(ckpt)
    np.testing.assert_array_equal(saved.predict(X[:4]), model.predict(X[:4]))
    monkeypatch.setattr(_training.TrainingStep, "__call__", original)
    resumed = IRFA(max_iter=3, unit_groups=groups, checkpoint_path=tmp_path / "r.safetensors",
                   **FAST).fit(X, images, resume_from=ckpt)
    full = IRFA(max_iter=3, unit_groups=groups, **FAST).fit(X, images)
    assert not resumed.interrupted_ and resumed.n_iter_ == 3
    for key, value in full.network_.state_dict().items():
        torch.testing.assert_close(resumed.network_.state_dict()[key], value, rtol=0, atol=0)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3]
    np.testing.assert_allclose([h["loss_generator"] for h in resumed.history_],
                               [h["loss_generator"] for h in full.history_], rtol=1e-12)


def test_checkpoints_are_versioned_model_files_and_resume_checks_its_data(tiny_data, tmp_path):
    X, images, groups, _ = tiny_data
    ckpt = tmp_path / "ckpt.safetensors"
    model = IRFA(max_iter=1, unit_groups=groups, checkpoint_path=ckpt, **FAST).fit(X, images)
    from safetensors import safe_open

    with safe_open(str(ckpt), framework="pt") as handle:
        meta = handle.metadata()
        keys = list(handle.keys())
    assert meta["format_version"] == str(FORMAT_VERSION) and "training_state" in meta
    assert any(k.startswith("state.opt_g.") for k in keys)
    assert "state.rng.buffer" in keys and "state.buffer" in keys
    loaded = load_model(ckpt)
    np.testing.assert_array_equal(loaded.predict(X[:3]), model.predict(X[:3]))
    with pytest.raises(InputError, match="other training data"):
        IRFA(max_iter=2, unit_groups=groups, **FAST).fit(X[:-8], images[:-8], resume_from=ckpt)
    model.save(tmp_path / "model.safetensors")
    with pytest.raises(InputError, match="without a training state"):
        IRFA(max_iter=2, unit_groups=groups, **FAST).fit(X, images,
                                                         resume_from=tmp_path / "model.safetensors")


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tiny_data, tmp_path,
                                                                 monkeypatch):
    X, images, groups, _ = tiny_data
    ckpt = tmp_path / "ckpt.safetensors"
    IRFA(max_iter=1, unit_groups=groups, checkpoint_path=ckpt, **FAST).fit(X, images)
    before = ckpt.read_bytes()
    import safetensors.torch

    def broken(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")  # a write that dies half way
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        IRFA(max_iter=1, unit_groups=groups, checkpoint_path=ckpt, **FAST).fit(X, images)
    assert ckpt.read_bytes() == before
    assert load_model(ckpt).n_iter_ == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.safetensors"]
