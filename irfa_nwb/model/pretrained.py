"""Load pretrained torchvision networks (VGG19 for the perceptual loss, AlexNet for metrics).

Weights are looked up where torchvision keeps them (``$TORCH_HOME/hub/checkpoints``, by default
``~/.cache/torch/hub/checkpoints``). Nothing is downloaded unless the caller allows it: training
and tests must never reach for the network behind a user's back. When the weights are missing,
:class:`~irfa_nwb.errors.MissingWeightsError` says where they are expected, how to fetch them, and
how to do without them.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import MissingWeightsError

#: torchvision builder and weights enum member for each supported network
_NETWORKS = {
    "vgg19": ("vgg19", "VGG19_Weights", "IMAGENET1K_V1"),
    "alexnet": ("alexnet", "AlexNet_Weights", "IMAGENET1K_V1"),
}

_HOW_TO_AVOID = {
    "vgg19": "or train without the perceptual term: IRFA(perceptual_weight=0)",
    "alexnet": "or skip the AlexNet feature metric (metrics that need no network still work)",
}


def _weights_enum(name: str):
    import torchvision.models as tvm

    try:
        builder_name, enum_name, member = _NETWORKS[name]
    except KeyError:
        raise ValueError(
            f"unknown pretrained network {name!r}; choose one of {sorted(_NETWORKS)}"
        ) from None
    return getattr(tvm, builder_name), getattr(getattr(tvm, enum_name), member)


def weights_path(name: str) -> Path:
    """Return where torchvision caches the pretrained weights of network ``name``.

    Parameters
    ----------
    name : {"vgg19", "alexnet"}
        Network name.

    Returns
    -------
    pathlib.Path
        ``<torch hub dir>/checkpoints/<file name of the weights URL>``; honours ``TORCH_HOME``.
    """
    import torch

    _, weights = _weights_enum(name)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def load_torchvision_model(name: str, *, allow_download: bool = False):
    """Build torchvision network ``name`` with its ImageNet weights, in eval mode.

    Parameters
    ----------
    name : {"vgg19", "alexnet"}
        Network to build.
    allow_download : bool, default False
        Let torchvision download missing weights. Off by default so that no run fetches
        weights silently (and none hangs on a machine without internet).

    Returns
    -------
    torch.nn.Module
        The network, parameters frozen (``requires_grad=False``), in eval mode.

    Raises
    ------
    MissingWeightsError
        If the weights file is not cached and downloading is not allowed or fails, or the cached
        file cannot be loaded.
    """
    builder, weights = _weights_enum(name)
    path = weights_path(name)
    fetch_cmd = (
        f'python -c "import torchvision; torchvision.models.{name}'
        f"(weights='{weights.name}')\""
    )
    if not path.exists() and not allow_download:
        raise MissingWeightsError(
            f"Pretrained {name} weights are not on this machine (expected {path}). "
            f"Fetch them once on a machine with internet access with `{fetch_cmd}` "
            f"(copy the file to {path.parent} if that machine is another one; set TORCH_HOME "
            f"to use another cache folder), pass allow_download=True, "
            f"{_HOW_TO_AVOID[name]}."
        )
    try:
        model = builder(weights=weights, progress=False)
    except Exception as err:  # network failure, truncated or foreign file
        raise MissingWeightsError(
            f"Could not load pretrained {name} weights from {path}: {err}. "
            f"Delete the file and fetch it again with `{fetch_cmd}`, {_HOW_TO_AVOID[name]}."
        ) from err
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model
