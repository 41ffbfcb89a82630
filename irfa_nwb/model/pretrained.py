"""Load pretrained networks: VGG19 (perceptual loss) and the networks of the quality metrics.

torchvision networks (VGG19, AlexNet, Inception-v3, EfficientNet-B1) and the SwAV ResNet-50
checkpoint live where torch keeps them (``$TORCH_HOME/hub/checkpoints``, by default
``~/.cache/torch/hub/checkpoints``); CLIP ViT-L/14 comes through ``open_clip`` (optional
package) and its Hugging Face cache.

Downloads follow torchvision: a missing file is downloaded, unless ``allow_download=False`` or
the environment variable ``IRFA_NWB_OFFLINE`` is set to a true value (``1``, ``true``, ``yes``,
``on``). When the weights cannot be had (not cached and no download allowed, no internet, a
corrupt file), :class:`~irfa_nwb.errors.MissingWeightsError` says where the file is expected, the
one-line command that fetches it on a connected machine, and how to do without it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import MissingWeightsError

#: environment variable that turns default downloads off (``allow_download=None``)
OFFLINE_ENV = "IRFA_NWB_OFFLINE"

#: torchvision builder, weights enum and member for each supported torchvision network
_NETWORKS = {
    "vgg19": ("vgg19", "VGG19_Weights", "IMAGENET1K_V1"),
    "alexnet": ("alexnet", "AlexNet_Weights", "IMAGENET1K_V1"),
    # the DEFAULT members of torchvision's enums, as used by the NSD reconstruction metrics
    "inception_v3": ("inception_v3", "Inception_V3_Weights", "IMAGENET1K_V1"),
    "efficientnet_b1": ("efficientnet_b1", "EfficientNet_B1_Weights", "IMAGENET1K_V2"),
}

#: SwAV ResNet-50 (800 epochs), the checkpoint that ``torch.hub.load("facebookresearch/swav:main",
#: "resnet50")`` loads into a torchvision ResNet-50
SWAV_RESNET50_URL = "https://dl.fbaipublicfiles.com/deepcluster/swav_800ep_pretrain.pth.tar"

#: open_clip model name and pretrained tag of CLIP ViT-L/14 (OpenAI weights)
CLIP_MODEL = ("ViT-L-14", "openai")

_HOW_TO_AVOID = {
    "vgg19": "or train without the perceptual term: IRFA(perceptual_weight=0)",
    "alexnet": "or skip the AlexNet feature metric (metrics that need no network still work)",
    "inception_v3": "or leave the Inception metric out (it is then reported as missing)",
    "efficientnet_b1": "or leave the EffNet-B metric out (it is then reported as missing)",
    "swav_resnet50": "or leave the SwAV metric out (it is then reported as missing)",
    "clip": "or leave the CLIP metric out (it is then reported as missing)",
}

_TRUE = {"1", "true", "yes", "on"}


def downloads_allowed(allow_download: bool | None = None) -> bool:
    """Resolve an ``allow_download`` argument.

    Parameters
    ----------
    allow_download : bool, optional
        ``True`` or ``False`` are returned as given; ``None`` means "like torchvision": allowed
        unless the environment variable ``IRFA_NWB_OFFLINE`` is set to a true value.

    Returns
    -------
    bool
    """
    if allow_download is not None:
        return bool(allow_download)
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in _TRUE


def _weights_enum(name: str):
    import torchvision.models as tvm

    try:
        builder_name, enum_name, member = _NETWORKS[name]
    except KeyError:
        raise ValueError(
            f"unknown pretrained network {name!r}; choose one of {sorted(_NETWORKS)}"
        ) from None
    return getattr(tvm, builder_name), getattr(getattr(tvm, enum_name), member)


def _checkpoints_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_path(name: str) -> Path:
    """Return where the pretrained weights of network ``name`` are cached.

    Parameters
    ----------
    name : {"vgg19", "alexnet", "inception_v3", "efficientnet_b1", "swav_resnet50"}
        Network name.

    Returns
    -------
    pathlib.Path
        ``<torch hub dir>/checkpoints/<file name of the weights URL>``; honours ``TORCH_HOME``.
    """
    if name == "swav_resnet50":
        return _checkpoints_dir() / os.path.basename(SWAV_RESNET50_URL)
    _, weights = _weights_enum(name)
    return _checkpoints_dir() / os.path.basename(weights.url)


def _missing_message(label: str, path: Path | str, fetch_cmd: str, avoid: str) -> str:
    folder = Path(path).parent
    return (
        f"Pretrained {label} weights are not on this machine (expected {path}). "
        f"Fetch them once on a machine with internet access with `{fetch_cmd}` "
        f"(copy the file to {folder} if that machine is another one; set TORCH_HOME "
        f"to use another cache folder), or allow downloads here (allow_download=True, "
        f"with {OFFLINE_ENV} unset), {avoid}."
    )


def _download_failed(label: str, path: Path | str, err: BaseException, fetch_cmd: str,
                     avoid: str) -> MissingWeightsError:
    return MissingWeightsError(
        f"Could not download pretrained {label} weights to {path} ({type(err).__name__}: "
        f"{err}); is this machine offline? Fetch them once on a machine with internet access "
        f"with `{fetch_cmd}` and copy the file to {Path(path).parent} (set TORCH_HOME to use "
        f"another cache folder), {avoid}."
    )


def _freeze(model):
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def load_torchvision_model(name: str, *, allow_download: bool | None = None):
    """Build torchvision network ``name`` with its ImageNet weights, in eval mode.

    Parameters
    ----------
    name : {"vgg19", "alexnet", "inception_v3", "efficientnet_b1"}
        Network to build (weights: ``IMAGENET1K_V1``; EfficientNet-B1: ``IMAGENET1K_V2``,
        torchvision's default).
    allow_download : bool, optional
        Download missing weights like torchvision does. ``None`` (default): download unless the
        environment variable ``IRFA_NWB_OFFLINE`` is set to a true value; ``False``: never.

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
    cached = path.exists()
    if not cached and not downloads_allowed(allow_download):
        raise MissingWeightsError(_missing_message(name, path, fetch_cmd, _HOW_TO_AVOID[name]))
    try:
        model = builder(weights=weights, progress=False)
    except Exception as err:  # network failure, truncated or foreign file
        if not cached:
            raise _download_failed(name, path, err, fetch_cmd, _HOW_TO_AVOID[name]) from err
        raise MissingWeightsError(
            f"Could not load pretrained {name} weights from {path}: {err}. "
            f"Delete the file and fetch it again with `{fetch_cmd}`, {_HOW_TO_AVOID[name]}."
        ) from err
    return _freeze(model)


def load_swav_resnet50(*, allow_download: bool | None = None):
    """ResNet-50 trained with SwAV (Caron et al. 2020), as ``torch.hub`` gives it.

    ``torch.hub.load("facebookresearch/swav:main", "resnet50")`` builds a torchvision ResNet-50
    and loads the checkpoint :data:`SWAV_RESNET50_URL` into it (``module.`` prefixes removed,
    projection head and prototypes ignored, ``fc`` left random). This does the same without
    fetching or running the hub repository's code; the checkpoint is the file that call
    caches (``$TORCH_HOME/hub/checkpoints/swav_800ep_pretrain.pth.tar``).

    Parameters
    ----------
    allow_download : bool, optional
        As in :func:`load_torchvision_model`.

    Returns
    -------
    torch.nn.Module
        The network, frozen, in eval mode.

    Raises
    ------
    MissingWeightsError
        If the checkpoint is not cached and downloading is not allowed or fails, or it cannot be
        loaded or lacks backbone weights.
    """
    import torch
    import torchvision

    path = weights_path("swav_resnet50")
    label, avoid = "SwAV ResNet-50", _HOW_TO_AVOID["swav_resnet50"]
    fetch_cmd = (
        f"python -c \"import torch; torch.hub.load_state_dict_from_url('{SWAV_RESNET50_URL}')\""
    )
    if not path.exists():
        if not downloads_allowed(allow_download):
            raise MissingWeightsError(_missing_message(label, path, fetch_cmd, avoid))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(SWAV_RESNET50_URL, str(path), progress=False)
        except Exception as err:
            raise _download_failed(label, path, err, fetch_cmd, avoid) from err
    model = torchvision.models.resnet50(weights=None)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        state = {k.replace("module.", ""): v for k, v in state.items()}
        result = model.load_state_dict(state, strict=False)
    except Exception as err:
        raise MissingWeightsError(
            f"Could not load {label} weights from {path}: {err}. Delete the file and fetch it "
            f"again with `{fetch_cmd}`, {avoid}."
        ) from err
    missing = [k for k in result.missing_keys if not k.startswith("fc.")]
    if missing:
        raise MissingWeightsError(
            f"{path} is not a SwAV ResNet-50 checkpoint: it lacks {len(missing)} backbone "
            f"weights (e.g. {missing[0]}). Delete it and fetch it again with `{fetch_cmd}`."
        )
    return _freeze(model)


def _clip_cached_file(model_name: str, tag: str) -> str | None:
    """Return the cached open_clip checkpoint of ``model_name``/``tag``, or None."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    hub = cfg.get("hf_hub", "")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            try_to_load_from_cache = None
        if try_to_load_from_cache is not None:
            repo_id, filename = os.path.split(hub)  # "org/model/" or "org/model/file"
            names = [filename] if filename else [
                "open_clip_model.safetensors", "open_clip_pytorch_model.bin"
            ]
            for fname in names:
                found = try_to_load_from_cache(repo_id=repo_id, filename=fname)
                if isinstance(found, str) and os.path.isfile(found):
                    return found
    url = cfg.get("url", "")
    if url:
        legacy = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(url))
        if os.path.isfile(legacy):
            return legacy
    return None


def load_clip_model(*, allow_download: bool | None = None) -> Any:
    """CLIP ViT-L/14 with OpenAI's weights, through ``open_clip`` (optional package).

    Parameters
    ----------
    allow_download : bool, optional
        As in :func:`load_torchvision_model`. Without downloads, the checkpoint must already be
        in open_clip's caches (the Hugging Face cache, ``HF_HOME``; or ``~/.cache/clip``).

    Returns
    -------
    torch.nn.Module
        The open_clip model (use ``model.encode_image``), frozen, in eval mode.

    Raises
    ------
    MissingWeightsError
        If ``open_clip`` is not installed, or the weights are not cached and downloading is
        not allowed or fails.
    """
    model_name, tag = CLIP_MODEL
    fetch_cmd = (
        f"python -c \"import open_clip; open_clip.create_model('{model_name}', "
        f"pretrained='{tag}')\""
    )
    avoid = _HOW_TO_AVOID["clip"]
    try:
        import open_clip
    except ImportError as err:
        raise MissingWeightsError(
            "The CLIP metric needs the optional package open_clip: pip install "
            f"'irfa-nwb[metrics]' (or pip install open-clip-torch), then fetch the weights "
            f"with `{fetch_cmd}`, {avoid}."
        ) from err
    cached = _clip_cached_file(model_name, tag)
    if cached is None and not downloads_allowed(allow_download):
        raise MissingWeightsError(
            f"Pretrained CLIP {model_name} ({tag}) weights are not in open_clip's cache (the "
            "Hugging Face cache, see HF_HOME). Fetch them once on a machine with internet "
            f"access with `{fetch_cmd}` (copy the Hugging Face cache folder over if that "
            f"machine is another one), or allow downloads here (allow_download=True, with "
            f"{OFFLINE_ENV} unset), {avoid}."
        )
    try:
        if cached is not None:  # no network round trip for a cached file
            model = open_clip.create_model(model_name, pretrained=cached, force_quick_gelu=True)
        else:
            model = open_clip.create_model(model_name, pretrained=tag)
    except Exception as err:
        raise MissingWeightsError(
            f"Could not load or download CLIP {model_name} ({tag}) weights "
            f"({type(err).__name__}: {err}). Fetch them on a machine with internet access with "
            f"`{fetch_cmd}`, {avoid}."
        ) from err
    return _freeze(model)
