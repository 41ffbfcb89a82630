"""Shared fixtures: tiny synthetic data with known structure, fake pretrained weights."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REAL_NWB = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-nwb"

# The tests run tiny networks: one intra-op thread is as fast, and it avoids the slowdown
# (10x and more) of OpenMP threads spinning for a core that another process holds. Subprocesses
# started by the tests inherit it. Set OMP_NUM_THREADS yourself to override.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_configure(config):
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def prototype_data(n: int = 96, n_units: int = 24, size: int = 16, n_classes: int = 4, seed=0):
    """Images drawn from a few prototypes; responses encode the prototype plus noise.

    A model that reads the responses can reconstruct each image far better than the mean
    image can, which gives tests a ground truth to check learning against.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    prototypes = []
    for k in range(n_classes):
        angle = np.pi * k / n_classes
        wave = 0.5 + 0.5 * np.sin(2 * np.pi * 2 * (np.cos(angle) * xx + np.sin(angle) * yy))
        colour = rng.uniform(0.2, 1.0, size=3)
        prototypes.append(wave[..., None] * colour)
    prototypes = np.stack(prototypes).astype(np.float32)
    labels = rng.integers(n_classes, size=n)
    images = prototypes[labels]
    codes = rng.normal(size=(n_classes, n_units)) * 2.0
    X = (codes[labels] + 0.3 * rng.normal(size=(n, n_units))).astype(np.float32)
    groups = np.repeat([f"array{g}" for g in range(3)], int(np.ceil(n_units / 3)))[:n_units]
    return X, images, groups, labels


@pytest.fixture(autouse=True, scope="session")
def _offline():
    """No test may download weights: turn irfa-nwb's default downloads off for the session."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IRFA_NWB_OFFLINE", "1")
        yield


@pytest.fixture
def tiny_data():
    return prototype_data()


@pytest.fixture(scope="session")
def _fake_torch_home(tmp_path_factory):
    """A TORCH_HOME holding randomly initialised VGG19 weights under torchvision's file name."""
    import torch
    import torchvision

    home = tmp_path_factory.mktemp("torch_home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    name = os.path.basename(torchvision.models.VGG19_Weights.IMAGENET1K_V1.url)
    gen = torch.Generator().manual_seed(0)
    model = torchvision.models.vgg19(weights=None)
    state = {k: torch.randn(v.shape, generator=gen) * 0.02 for k, v in model.state_dict().items()}
    torch.save(state, checkpoints / name)
    return home, state


@pytest.fixture
def fake_vgg19(_fake_torch_home, monkeypatch):
    """Point TORCH_HOME at a cache with fake VGG19 weights; yields the saved state dict."""
    home, state = _fake_torch_home
    monkeypatch.setenv("TORCH_HOME", str(home))
    return state


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    """A TORCH_HOME with no cached weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home"


# ----------------------------------------------------------------------------- metric networks


@pytest.fixture(scope="session")
def _metric_torch_home(tmp_path_factory):
    """One TORCH_HOME for the metric networks' random weights, filled on demand."""
    return tmp_path_factory.mktemp("metric_torch_home")


def _save_random_weights(home: Path, name: str) -> Path:
    """Save random weights of ``name`` under the file name the package looks for.

    Default (torchvision) initialisation, stored in float16 to halve the disk traffic; loading
    casts back to float32. SwAV's checkpoint is mimicked with its ``module.`` prefixes and an
    extra projection head that loading must ignore.
    """
    import torch
    import torchvision

    from irfa_nwb.model.pretrained import SWAV_RESNET50_URL

    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if name == "swav_resnet50":
        model = torchvision.models.resnet50(weights=None)
        state = {f"module.{k}": v for k, v in model.state_dict().items() if not k.startswith("fc.")}
        state["module.projection_head.0.weight"] = torch.zeros(8, 2048)
        target = checkpoints / os.path.basename(SWAV_RESNET50_URL)
    else:
        builder = getattr(torchvision.models, name)
        kwargs = {"aux_logits": True, "init_weights": False} if name == "inception_v3" else {}
        model = builder(weights=None, **kwargs)
        enums = {"alexnet": "AlexNet_Weights", "inception_v3": "Inception_V3_Weights",
                 "efficientnet_b1": "EfficientNet_B1_Weights"}
        member = "IMAGENET1K_V2" if name == "efficientnet_b1" else "IMAGENET1K_V1"
        url = getattr(getattr(torchvision.models, enums[name]), member).url
        state = model.state_dict()
        target = checkpoints / os.path.basename(url)
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, target)
    return target


@pytest.fixture
def metric_weights(_metric_torch_home, monkeypatch):
    """Point TORCH_HOME at random metric-network weights; call it with the networks needed.

    ``metric_weights("alexnet", "swav_resnet50")`` writes (once per session) and returns the
    weight files.
    """
    monkeypatch.setenv("TORCH_HOME", str(_metric_torch_home))

    def need(*names: str) -> list[Path]:
        from irfa_nwb.model.pretrained import weights_path

        paths = []
        for name in names:
            path = weights_path(name)
            if not path.exists():
                _save_random_weights(_metric_torch_home, name)
            paths.append(path)
        return paths

    return need
