"""The eight-metric table of image reconstruction work on the Natural Scenes Dataset.

PixCorr, SSIM, AlexNet(2), AlexNet(5), Inception, CLIP, EffNet-B and SwAV, computed the way
the public evaluation code of MindEye (``MedARC-AI/fMRI-reconstruction-NSD``,
``src/Reconstruction_Metrics.py``) computes them, which later NSD papers reuse. Images are
float tensors in [0, 1] (reconstructions clamped to [0, 1]); every resize is torchvision's
``Resize(size)`` on tensors (the shorter side to ``size``, bilinear; no crop):

============  ===========================================================  ============
metric        what is computed                                             better
============  ===========================================================  ============
PixCorr       resize to 425; per image Pearson r over all pixels and       higher
              channels; mean over images
SSIM          resize to 425; ``skimage.color.rgb2gray``; scikit-image      higher
              SSIM with ``gaussian_weights=True, sigma=1.5,
              use_sample_covariance=False, data_range=1``; mean over
              images (see *SSIM* below)
AlexNet(2)    resize to 256, ImageNet normalisation; torchvision AlexNet   higher
              (IMAGENET1K_V1) node ``features.4`` (ReLU after conv2);
              2-way identification
AlexNet(5)    same pass, node ``features.11`` (ReLU after conv5); 2-way    higher
Inception     resize to 342, ImageNet normalisation; torchvision           higher
              Inception-v3 (IMAGENET1K_V1) ``avgpool``; 2-way
CLIP          resize to 224, CLIP normalisation; ViT-L/14 (OpenAI          higher
              weights) image embedding; 2-way
EffNet-B      resize to 255, ImageNet normalisation; torchvision           lower
              EfficientNet-B1 (IMAGENET1K_V2) ``avgpool``; mean
              correlation distance
SwAV          resize to 224, ImageNet normalisation; SwAV ResNet-50        lower
              ``avgpool``; mean correlation distance
============  ===========================================================  ============

*2-way identification* (:func:`two_way_identification`): for each reconstruction, the
fraction of the other stimuli whose features correlate less with it than its own stimulus's
features do (ties count as failures), averaged over reconstructions; chance is 0.5.
*Correlation distance* (:func:`correlation_distance`): ``1 - r`` between the features of a
stimulus and of its reconstruction (``scipy.spatial.distance.correlation``), averaged.

*SSIM*: the published code passes the 2-D grey images with ``multichannel=True``, which
scikit-image reads as "the last axis holds channels": the score is the mean over image columns
of 1-D SSIMs computed down each column (Gaussian window along y only). That is what
``ssim_mode="published"`` (default) computes, so that values compare with published tables;
``ssim_mode="2d"`` gives the usual 2-D Gaussian SSIM of the grey images.

*Resizing*: torchvision >= 0.17 antialiases when it shrinks tensors (``antialias=True``, the
default here); the code was published when tensors were resized without antialiasing
(``antialias=False`` reproduces that). Images smaller than the target sizes (upsampling) give
the same values either way.

Networks whose weights (or the ``open_clip`` package) are absent are reported as ``missing``
with the reason, never silently dropped: see :mod:`irfa_nwb.model.pretrained`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, MissingWeightsError

#: The table's metrics, in the order they are reported
STANDARD_METRICS: tuple[str, ...] = (
    "PixCorr", "SSIM", "AlexNet(2)", "AlexNet(5)", "Inception", "CLIP", "EffNet-B", "SwAV",
)

#: "higher" or "lower" is better, per metric
BETTER: dict[str, str] = {
    "PixCorr": "higher", "SSIM": "higher", "AlexNet(2)": "higher", "AlexNet(5)": "higher",
    "Inception": "higher", "CLIP": "higher", "EffNet-B": "lower", "SwAV": "lower",
}

SSIM_MODES: tuple[str, ...] = ("published", "2d")

_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_CLIP_NORM = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
_PIXEL_SIZE = 425


@dataclass(frozen=True)
class _Network:
    """How one network is fed and read: loader name, resize, normalisation, node per metric."""

    name: str
    size: int
    norm: tuple[tuple[float, ...], tuple[float, ...]]
    nodes: dict[str, str | None]  # metric -> module path (None: the model's output)
    score: str  # "2way" or "distance"


_NETWORKS: tuple[_Network, ...] = (
    _Network("alexnet", 256, _IMAGENET,
             {"AlexNet(2)": "features.4", "AlexNet(5)": "features.11"}, "2way"),
    _Network("inception_v3", 342, _IMAGENET, {"Inception": "avgpool"}, "2way"),
    _Network("clip", 224, _CLIP_NORM, {"CLIP": None}, "2way"),
    _Network("efficientnet_b1", 255, _IMAGENET, {"EffNet-B": "avgpool"}, "distance"),
    _Network("swav_resnet50", 224, _IMAGENET, {"SwAV": "avgpool"}, "distance"),
)


# ----------------------------------------------------------------------------- scoring pieces


def _zscore(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    m = m - m.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(m, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return m / norm


def two_way_identification(
    stimulus_features: Any, reconstruction_features: Any, *, return_counts: bool = False
) -> float | tuple[np.ndarray, int]:
    """2-way identification accuracy from features (the NSD reconstruction metric).

    ``r[i, j]`` is the Pearson r between the features of stimulus ``i`` and reconstruction
    ``j``. Reconstruction ``j`` wins against stimulus ``i != j`` when ``r[i, j] < r[j, j]``
    (strictly: ties, and NaN from constant features, are failures). The accuracy is the mean
    over reconstructions of their fraction of wins among the ``n - 1`` comparisons.

    Parameters
    ----------
    stimulus_features, reconstruction_features : array_like, shape (n, ...)
        Paired features; flattened per image.
    return_counts : bool
        Return the per-reconstruction win counts and ``n - 1`` instead of the accuracy.

    Returns
    -------
    float or (numpy.ndarray, int)
        Accuracy in [0, 1] (chance 0.5), or ``(wins, n - 1)``.
    """
    a = np.asarray(stimulus_features).reshape(len(stimulus_features), -1)
    b = np.asarray(reconstruction_features).reshape(len(reconstruction_features), -1)
    if a.shape != b.shape:
        raise InputError(f"features must pair up, got shapes {a.shape} and {b.shape}")
    n = a.shape[0]
    if n < 2:
        raise InputError("2-way identification needs at least two images")
    r = _zscore(a) @ _zscore(b).T  # r[i, j]: stimulus i vs reconstruction j
    own = np.diag(r)
    with np.errstate(invalid="ignore"):
        wins = np.sum(r < own[None, :], axis=0)
    if return_counts:
        return wins, n - 1
    return float(np.mean(wins) / (n - 1))


def correlation_distance(stimulus_features: Any, reconstruction_features: Any) -> np.ndarray:
    """Correlation distance ``1 - r`` between each stimulus's and reconstruction's features.

    Parameters
    ----------
    stimulus_features, reconstruction_features : array_like, shape (n, ...)
        Paired features; flattened per image.

    Returns
    -------
    numpy.ndarray, shape (n,)
        Values in [0, 2] (0: perfectly correlated), as ``scipy.spatial.distance.correlation``.
    """
    a = np.asarray(stimulus_features).reshape(len(stimulus_features), -1)
    b = np.asarray(reconstruction_features).reshape(len(reconstruction_features), -1)
    if a.shape != b.shape:
        raise InputError(f"features must pair up, got shapes {a.shape} and {b.shape}")
    return 1.0 - np.sum(_zscore(a) * _zscore(b), axis=1)


# ----------------------------------------------------------------------------- images


def _float_images(images: Any, what: str, *, clamp: bool) -> np.ndarray:
    """(n, 3, y, x) float32 in [0, 1]: uint8 / 255, grey to RGB, reconstructions clamped."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3) or arr.shape[0] < 1:
        raise InputError(
            f"{what} must be a non-empty image stack of shape (n, y, x[, 1 or 3]), got "
            f"{arr.shape}"
        )
    if np.issubdtype(arr.dtype, np.integer):
        out = arr.astype(np.float32) / np.float32(255.0)
    elif np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.all(np.isfinite(out)):
            raise InputError(f"{what} contain NaN or infinite values; clean them before scoring")
        if clamp:
            out = np.clip(out, 0.0, 1.0)
        elif out.min() < -1e-6 or out.max() > 1.0 + 1e-6:
            raise InputError(
                f"{what} must be floats in [0, 1] (or uint8), got values in "
                f"[{out.min():.3g}, {out.max():.3g}]; divide 0-255 images by 255"
            )
    else:
        raise InputError(f"{what} must hold numbers, got dtype {arr.dtype}")
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _resize(batch: Any, size: int, antialias: bool) -> Any:
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    return resize(batch, size, interpolation=InterpolationMode.BILINEAR, antialias=antialias)


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _pixel_scores(
    a: np.ndarray, b: np.ndarray, wanted: Sequence[str], batch_size: int, antialias: bool,
    ssim_mode: str,
) -> dict[str, float]:
    """PixCorr and SSIM at 425 px, batch by batch."""
    import torch
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity

    corr, ssim = [], []
    for sl in _batches(a.shape[0], batch_size):
        ra = _resize(torch.from_numpy(a[sl]), _PIXEL_SIZE, antialias)
        rb = _resize(torch.from_numpy(b[sl]), _PIXEL_SIZE, antialias)
        if ra.shape != rb.shape:
            raise InputError(
                f"stimuli and reconstructions resize to different shapes ({tuple(ra.shape[2:])} "
                f"and {tuple(rb.shape[2:])}): give them the same aspect ratio"
            )
        if "PixCorr" in wanted:
            za, zb = _zscore(ra.flatten(1).numpy()), _zscore(rb.flatten(1).numpy())
            corr.extend(np.sum(za * zb, axis=1))
        if "SSIM" in wanted:
            ga = rgb2gray(ra.permute(0, 2, 3, 1).numpy())
            gb = rgb2gray(rb.permute(0, 2, 3, 1).numpy())
            axis = -1 if ssim_mode == "published" else None
            for im, rec in zip(ga, gb, strict=True):
                ssim.append(structural_similarity(
                    rec, im, channel_axis=axis, gaussian_weights=True, sigma=1.5,
                    use_sample_covariance=False, data_range=1.0,
                ))
    out = {}
    if "PixCorr" in wanted:
        out["PixCorr"] = float(np.mean(corr))
    if "SSIM" in wanted:
        out["SSIM"] = float(np.mean(ssim))
    return out


# ----------------------------------------------------------------------------- networks


def _load_network(name: str, allow_download: bool | None) -> Any:
    from ..model import pretrained

    if name == "clip":
        return pretrained.load_clip_model(allow_download=allow_download)
    if name == "swav_resnet50":
        return pretrained.load_swav_resnet50(allow_download=allow_download)
    return pretrained.load_torchvision_model(name, allow_download=allow_download)


def _network_features(
    net: _Network, metrics: Sequence[str], a: np.ndarray, b: np.ndarray, *,
    encoders: Mapping[str, Callable[[Any], Any]], allow_download: bool | None, device: str,
    batch_size: int, antialias: bool,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """metric -> (stimulus features, reconstruction features), each (n, f) float32."""
    import torch

    mean = torch.tensor(net.norm[0], device=device).view(1, 3, 1, 1)
    std = torch.tensor(net.norm[1], device=device).view(1, 3, 1, 1)
    captured: dict[str, Any] = {}
    handles = []
    model = None
    own = [m for m in metrics if m not in encoders]
    if own:
        model = _load_network(net.name, allow_download).to(device)
        for metric in own:
            node = net.nodes[metric]
            if node is None:
                continue

            def hook(_mod, _inp, out, _metric=metric):
                captured[_metric] = out.detach().flatten(1).float().clone()

            handles.append(model.get_submodule(node).register_forward_hook(hook))

    def run(x: Any) -> dict[str, np.ndarray]:
        captured.clear()
        result = {}
        if model is not None:
            if net.name == "clip":
                captured["CLIP"] = model.encode_image(x).float()
            else:
                model(x)
            result.update({m: captured[m].cpu().numpy() for m in own})
        for m in metrics:
            if m in encoders:
                out = encoders[m](x)
                out = out.detach().float().cpu().numpy() if hasattr(out, "detach") else out
                result[m] = np.asarray(out, dtype=np.float32).reshape(x.shape[0], -1)
        return result

    parts: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {m: ([], []) for m in metrics}
    try:
        with torch.no_grad():
            for sl in _batches(a.shape[0], batch_size):
                for k, images in enumerate((a, b)):
                    x = _resize(torch.from_numpy(images[sl]).to(device), net.size, antialias)
                    for m, feats in run((x - mean) / std).items():
                        parts[m][k].append(feats)
    finally:
        for handle in handles:
            handle.remove()
    return {m: (np.concatenate(p[0]), np.concatenate(p[1])) for m, p in parts.items()}


# ----------------------------------------------------------------------------- the table


def standard_metrics(
    stimuli: Any,
    reconstructions: Any,
    *,
    metrics: Sequence[str] = STANDARD_METRICS,
    device: str | None = None,
    batch_size: int = 16,
    allow_download: bool | None = None,
    encoders: Mapping[str, Callable[[Any], Any]] | None = None,
    antialias: bool = True,
    ssim_mode: str = "published",
):
    """The eight standard reconstruction metrics of NSD work, one row per metric.

    Parameters
    ----------
    stimuli, reconstructions : array_like, shape (n, y, x[, 3])
        Paired images: uint8, or floats in [0, 1] (reconstructions are clamped to [0, 1]).
        Sizes may differ if the aspect ratio is the same (everything is resized).
    metrics : sequence of str
        Subset of :data:`STANDARD_METRICS`, reported in the order given.
    device : str, optional
        Torch device for the networks; default CUDA when available, else CPU.
    batch_size : int
        Images per forward pass (bounds memory).
    allow_download : bool, optional
        Fetch missing weights (``None``: like torchvision, unless ``IRFA_NWB_OFFLINE`` is set;
        see :mod:`irfa_nwb.model.pretrained`).
    encoders : mapping of str to callable, optional
        Replace a metric's network: ``{"CLIP": model.encode_image}`` (e.g. CLIP loaded with
        OpenAI's ``clip`` package). The callable receives the resized, normalised batch
        (``torch.Tensor`` (b, 3, h, w) on ``device``) and returns one feature vector per image.
    antialias : bool
        Antialias when shrinking (see the module docstring).
    ssim_mode : {"published", "2d"}
        SSIM as the published code computes it (default) or the usual 2-D SSIM.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``metric``; columns ``value`` (NaN unless computed), ``better`` ("higher" or
        "lower"), ``status`` ("computed"; "missing": weights or package absent; "skipped": the
        inputs do not allow it, e.g. fewer than two images for identification) and ``reason``
        (why it is not computed; empty otherwise). ``attrs`` records n and the settings.
    """
    import pandas as pd
    import torch

    wanted = [str(m) for m in metrics]
    unknown = [m for m in wanted if m not in BETTER]
    if unknown or not wanted:
        raise InputError(f"unknown metrics {unknown}; choose from {list(STANDARD_METRICS)}")
    if ssim_mode not in SSIM_MODES:
        raise InputError(f"ssim_mode must be one of {SSIM_MODES}, got {ssim_mode!r}")
    encoders = dict(encoders or {})
    bad = [k for k in encoders if k not in BETTER or k in ("PixCorr", "SSIM")]
    if bad:
        raise InputError(f"encoders can replace the networks of network metrics only, got {bad}")
    a = _float_images(stimuli, "stimuli", clamp=False)
    b = _float_images(reconstructions, "reconstructions", clamp=True)
    n = a.shape[0]
    if b.shape[0] != n:
        raise InputError(f"{n} stimuli but {b.shape[0]} reconstructions: they must pair up")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"

    rows: dict[str, tuple[float, str, str]] = {}
    pixel = [m for m in wanted if m in ("PixCorr", "SSIM")]
    if pixel:
        for m, v in _pixel_scores(a, b, pixel, batch_size, antialias, ssim_mode).items():
            rows[m] = (v, "computed", "")
    for net in _NETWORKS:
        here = [m for m in wanted if m in net.nodes]
        if not here:
            continue
        if net.score == "2way" and n < 2:
            for m in here:
                rows[m] = (np.nan, "skipped", "2-way identification needs at least two images")
            continue
        if net.name == "clip" and "CLIP" not in encoders:
            side = _resize(torch.zeros(1, 3, *a.shape[2:]), net.size, antialias).shape[2:]
            if side[0] != side[1]:
                rows["CLIP"] = (np.nan, "skipped", "CLIP ViT-L/14 needs square images (224 px)")
                continue
        try:
            feats = _network_features(
                net, here, a, b, encoders=encoders, allow_download=allow_download,
                device=device, batch_size=batch_size, antialias=antialias,
            )
        except MissingWeightsError as err:
            for m in here:
                rows[m] = (np.nan, "missing", str(err))
            continue
        for m in here:
            fa, fb = feats[m]
            if net.score == "2way":
                value = two_way_identification(fa, fb)
            else:
                value = float(np.mean(correlation_distance(fa, fb)))
            rows[m] = (value, "computed", "")
    table = pd.DataFrame(
        {
            "value": [rows[m][0] for m in wanted],
            "better": [BETTER[m] for m in wanted],
            "status": [rows[m][1] for m in wanted],
            "reason": [rows[m][2] for m in wanted],
        },
        index=pd.Index(wanted, name="metric"),
    )
    table.attrs.update({"n_images": n, "antialias": antialias, "ssim_mode": ssim_mode,
                        "encoders": sorted(encoders)})
    return table
