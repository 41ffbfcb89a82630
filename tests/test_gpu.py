"""The CUDA path (marked ``gpu``; skipped without a CUDA device; run by benchmarks/gpu_check.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from irfa_nwb import IRFA, load_model
from irfa_nwb.model.attention import InverseReceptiveFieldAttention

FAST = dict(image_size=16, channels=8, width=8, batch_size=8, perceptual_weight=0,
            random_state=0)
ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_script_says_when_there_is_no_gpu():
    """Not a GPU test: on a CPU-only machine the script exits 0 and says why."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert "no CUDA GPU" in done.stdout


@pytest.mark.gpu
def test_factorised_attention_equals_dense_on_cuda():
    torch.manual_seed(0)
    layer = InverseReceptiveFieldAttention(15, 32, 64, 4, head_sizes=[64] * 15).cuda()
    inputs = [torch.randn(8, 64, device="cuda") for _ in range(15)]
    layer.implementation = "dense"
    dense = layer(inputs)
    layer.implementation = "factorized"
    fact = layer(inputs)
    assert ((fact - dense).abs().max() / dense.abs().max()).item() < 1e-5


@pytest.mark.gpu
def test_published_fit_on_cuda_loads_on_cpu(tiny_data, tmp_path):
    X, images, groups, _ = tiny_data
    model = IRFA(max_iter=2, device="cuda", unit_groups=groups, **FAST).fit(X, images)
    assert model.device_.startswith("cuda") and not model.mixed_precision_
    path = model.save(tmp_path / "m.safetensors")
    cpu = load_model(path, device="cpu")
    np.testing.assert_allclose(cpu.predict(X[:8]), model.predict(X[:8]), atol=1e-4)


@pytest.mark.gpu
def test_fit_on_cuda_with_mixed_precision(tiny_data):
    X, images, groups, _ = tiny_data
    model = IRFA(max_iter=3, device="cuda", recipe="pix2pix", unit_groups=groups,
                 **FAST).fit(X, images)
    assert model.mixed_precision_
    assert np.isfinite(model.history_[-1]["loss_generator"])
    assert model.predict(X[:4]).shape == (4, 16, 16, 3)


@pytest.mark.gpu
def test_resume_on_cuda_matches_the_uninterrupted_fit(tiny_data, tmp_path):
    X, images, groups, _ = tiny_data
    ckpt = tmp_path / "ckpt.safetensors"
    common = dict(device="cuda", unit_groups=groups, **FAST)
    IRFA(max_iter=1, checkpoint_path=ckpt, **common).fit(X, images)
    resumed = IRFA(max_iter=2, **common).fit(X, images, resume_from=ckpt)
    full = IRFA(max_iter=2, **common).fit(X, images)
    for key, value in full.network_.state_dict().items():
        torch.testing.assert_close(resumed.network_.state_dict()[key], value, rtol=1e-4,
                                   atol=1e-5)
