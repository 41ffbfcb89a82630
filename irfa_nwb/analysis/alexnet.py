"""The IRFA paper's AlexNet measurement: layer feature correlations of stimuli and reconstructions.

This follows the reference notebook (``analysis/quantification.ipynb`` of Le et al. 2025)
step by step, so that numbers computed here compare with the published ones (all areas:
conv1 .302, conv2 .231, conv3 .355, conv4 .353, conv5 .275, fc6 .310, fc7 .505, fc8 .515):

1. Each image set (stimuli, reconstructions) is converted as a whole: ``astype(float32)``;
   divided by 255 if its maximum exceeds 1; then ``(images * 255).astype(uint8)`` (truncation,
   not rounding).
2. Each image goes through PIL: ``Resize((224, 224))`` (bilinear with PIL's antialiasing),
   ``ToTensor``, ImageNet ``Normalize``.
3. torchvision AlexNet (ImageNet weights, eval mode). Layers are the outputs of slices of the
   network: conv1 = ``features[:3]`` (after max-pooling), conv2 = ``features[:6]`` (after
   pooling), conv3 = ``features[:7]`` and conv4 = ``features[:9]`` (convolution outputs before
   their ReLU), conv5 = ``features[:13]`` (after pooling); the fc layers act on
   ``flatten(avgpool(features(x)), 1)``: fc6 = ``classifier[:3]`` (after ReLU), fc7 =
   ``classifier[:5]`` (before ReLU), fc8 = ``classifier`` (logits).
4. Per layer, one Pearson r between the features of all stimuli and all reconstructions,
   flattened over the whole set (not a mean of per-image values), and the mean squared
   feature difference.

All layers come from one pass through the network per batch, and the statistics are
accumulated batch by batch (pairwise-combined centred moments, float64), so memory does not grow
with the number of images.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..stats import standardized_rows
from .metrics import _stimulus_coords

#: AlexNet layers of the paper's feature metric, in network order
ALEXNET_LAYERS: tuple[str, ...] = (
    "conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8",
)

#: The notebook's slice for each layer: ``getattr(alexnet, part)[:stop]``
PAPER_SLICES: dict[str, tuple[str, int]] = {
    "conv1": ("features", 3),
    "conv2": ("features", 6),
    "conv3": ("features", 7),
    "conv4": ("features", 9),
    "conv5": ("features", 13),
    "fc6": ("classifier", 3),
    "fc7": ("classifier", 5),
    "fc8": ("classifier", 7),
}

#: Image preprocessing choices: the notebook's (default) or float resizing
PREPROCESSING: tuple[str, ...] = ("notebook", "float")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 224


# ----------------------------------------------------------------------------- network


def load_alexnet(*, allow_download: bool | None = None):
    """Return torchvision AlexNet with ImageNet weights (``IMAGENET1K_V1``), eval mode, frozen.

    Parameters
    ----------
    allow_download : bool, optional
        Download missing weights like torchvision (``None``, default: unless the environment
        variable ``IRFA_NWB_OFFLINE`` is true; ``False``: never).

    Raises
    ------
    irfa_nwb.errors.MissingWeightsError
        When the weights are not in ``$TORCH_HOME/hub/checkpoints`` and cannot be downloaded;
        the message says how to fetch them.
    """
    from ..model.pretrained import load_torchvision_model

    return load_torchvision_model("alexnet", allow_download=allow_download)


def _resolve_model(model: Any, device: str | None, allow_download: bool | None):
    import torch

    if model is None:
        model = load_alexnet(allow_download=allow_download)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
    model.eval()
    if device is None:
        device = str(next(model.parameters()).device)
    model.to(device)
    return model, device


def _check_layers(layers: Sequence[str]) -> list[str]:
    layers = [str(name) for name in layers]
    unknown = [name for name in layers if name not in PAPER_SLICES]
    if unknown or not layers:
        raise InputError(f"unknown AlexNet layers {unknown}; choose from {list(ALEXNET_LAYERS)}")
    return layers


def _forward_layers(model: Any, x: Any, layers: Sequence[str]) -> dict[str, Any]:
    """Outputs of the paper's slices for ``layers``, from one pass through ``model``.

    Each tapped output is copied before the next module runs: torchvision's AlexNet uses
    ``ReLU(inplace=True)``, which would otherwise overwrite the pre-ReLU conv3, conv4 and fc7.
    """
    import torch

    taps: dict[str, dict[int, str]] = {"features": {}, "classifier": {}}
    for name in layers:
        part, stop = PAPER_SLICES[name]
        taps[part][stop] = name
    out: dict[str, Any] = {}
    n_features = len(model.features) if taps["classifier"] else max(taps["features"])
    for i, module in enumerate(model.features[:n_features]):
        x = module(x)
        if i + 1 in taps["features"]:
            out[taps["features"][i + 1]] = x.flatten(1).clone()
    if taps["classifier"]:
        x = torch.flatten(model.avgpool(x), 1)
        for i, module in enumerate(model.classifier[: max(taps["classifier"])]):
            x = module(x)
            if i + 1 in taps["classifier"]:
                out[taps["classifier"][i + 1]] = x.clone()
    return out


# ----------------------------------------------------------------------------- preprocessing


def _rgb_stack(images: Any, what: str) -> np.ndarray:
    """Return ``images`` as an (n, y, x, 3) array of its own dtype (grey repeated to RGB)."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise InputError(
            f"{what} must be an image stack of shape (n, y, x), (n, y, x, 1) or (n, y, x, 3), "
            f"got {arr.shape}"
        )
    if arr.shape[0] < 1:
        raise InputError(f"{what} holds no images")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"{what} must hold numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise InputError(f"{what} contain NaN or infinite values; clean them before scoring")
    if arr.shape[-1] == 1:
        # a grey image on all three channels: what the notebook's Normalize broadcast gives
        arr = np.repeat(arr, 3, axis=-1)
    return arr


def notebook_uint8(images: Any) -> np.ndarray:
    """Convert an image set to uint8 exactly as the paper's notebook does.

    ``float32``; divided by 255 if the maximum over the whole set exceeds 1; times 255; cast to
    uint8 (truncation). Values outside [0, 255] after scaling are clipped first (the
    notebook's cast would wrap them around); in-range values are untouched.

    Parameters
    ----------
    images : array_like
        Images of any shape and numeric dtype (uint8 0–255, or floats in [0, 1] or [0, 255]).

    Returns
    -------
    numpy.ndarray of uint8
        Same shape.
    """
    arr = np.asarray(images).astype(np.float32)
    if arr.max() > 1.0:
        arr = arr / np.float32(255.0)
    arr = arr * np.float32(255.0)
    return np.clip(arr, 0.0, 255.0).astype(np.uint8)


def _float01(images: np.ndarray) -> np.ndarray:
    """The float variant's scaling: float32, divided by 255 when the set's maximum exceeds 1."""
    arr = images.astype(np.float32)
    if arr.max() > 1.0:
        arr = arr / np.float32(255.0)
    return arr


def _normalise(batch: Any) -> Any:
    import torch

    mean = torch.tensor(IMAGENET_MEAN, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1)
    return (batch - mean) / std


def _notebook_batch(chunk: np.ndarray, device: str) -> Any:
    """PIL ``Resize((224, 224))`` + ``ToTensor`` + ``Normalize`` of a uint8 (b, y, x, 3) chunk."""
    import torch
    from PIL import Image

    resized = np.stack(
        [
            np.asarray(
                Image.fromarray(img).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
            )
            for img in chunk
        ]
    )
    batch = torch.from_numpy(resized).permute(0, 3, 1, 2).float().div(255)
    return _normalise(batch).to(device)


def _float_batch(chunk: np.ndarray, device: str) -> Any:
    """Float variant: bilinear (antialiased) resize of [0, 1] floats to 224 px, normalised."""
    import torch
    import torch.nn.functional as F

    batch = torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2).to(device)
    batch = F.interpolate(batch, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                          align_corners=False, antialias=True)
    return _normalise(batch)


def preprocess_images(images: Any, *, preprocess: str = "notebook") -> Any:
    """AlexNet input tensor of an image set, as the metric builds it.

    Parameters
    ----------
    images : array_like, shape (n, y, x[, 3])
        Images: uint8, floats in [0, 1], or floats in [0, 255] (see :func:`notebook_uint8`).
    preprocess : {"notebook", "float"}
        ``"notebook"`` (default): the paper's uint8 + PIL route; ``"float"``: no uint8
        quantisation, the float images resized by torch (bilinear, antialiased). The float route
        is not the paper's and gives slightly different numbers.

    Returns
    -------
    torch.Tensor, shape (n, 3, 224, 224)
        ImageNet-normalised float32.
    """
    import torch

    arr = _prepared(_rgb_stack(images, "images"), preprocess)
    return torch.cat([_to_batch(arr[i : i + 64], preprocess, "cpu")
                      for i in range(0, arr.shape[0], 64)])


def _prepared(arr: np.ndarray, preprocess: str) -> np.ndarray:
    if preprocess == "notebook":
        return notebook_uint8(arr)
    if preprocess == "float":
        return _float01(arr)
    raise InputError(f"preprocess must be one of {PREPROCESSING}, got {preprocess!r}")


def _to_batch(chunk: np.ndarray, preprocess: str, device: str) -> Any:
    return _notebook_batch(chunk, device) if preprocess == "notebook" else _float_batch(chunk,
                                                                                        device)


def _iter_features(
    arr: np.ndarray, layers: Sequence[str], model: Any, device: str, batch_size: int,
    preprocess: str,
) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
    """Yield (index slice, layer -> float64 (b, f) features) batch by batch.

    Gradients are switched off around each forward pass only, never across a ``yield``: a
    suspended generator would otherwise leave autograd off for its caller.
    """
    import torch

    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    prepared = _prepared(arr, preprocess)
    for start in range(0, prepared.shape[0], batch_size):
        stop = min(start + batch_size, prepared.shape[0])
        with torch.no_grad():
            batch = _to_batch(prepared[start:stop], preprocess, device)
            out = _forward_layers(model, batch, layers)
            feats = {name: out[name].to("cpu", torch.float64).numpy() for name in layers}
        yield slice(start, stop), feats


# ----------------------------------------------------------------------------- statistics


class _PairMoments:
    """Running Pearson r and mean squared difference of two equally long streams (float64).

    Batches are merged with the pairwise update of Chan, Golub & LeVeque (centred sums), which
    stays accurate where raw sums of squares would cancel.
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean_x = self.mean_y = 0.0
        self.sxx = self.syy = self.sxy = 0.0
        self.sse = 0.0

    def update(self, x: np.ndarray, y: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        nb = x.size
        if nb == 0:
            return
        mx, my = float(x.mean()), float(y.mean())
        dx, dy = x - mx, y - my
        sxx, syy, sxy = float(dx @ dx), float(dy @ dy), float(dx @ dy)
        diff = x - y
        self.sse += float(diff @ diff)
        if self.n == 0:
            self.n, self.mean_x, self.mean_y = nb, mx, my
            self.sxx, self.syy, self.sxy = sxx, syy, sxy
            return
        n = self.n + nb
        ddx, ddy = mx - self.mean_x, my - self.mean_y
        w = self.n * nb / n
        self.sxx += sxx + ddx * ddx * w
        self.syy += syy + ddy * ddy * w
        self.sxy += sxy + ddx * ddy * w
        self.mean_x += ddx * nb / n
        self.mean_y += ddy * nb / n
        self.n = n

    @property
    def r(self) -> float:
        denom = np.sqrt(self.sxx * self.syy)
        return float(self.sxy / denom) if denom > 0 else float("nan")

    @property
    def mse(self) -> float:
        return self.sse / self.n if self.n else float("nan")


# ----------------------------------------------------------------------------- public API


def alexnet_features(
    images: Any,
    *,
    layers: Sequence[str] = ALEXNET_LAYERS,
    model: Any = None,
    device: str | None = None,
    batch_size: int = 32,
    preprocess: str = "notebook",
    allow_download: bool | None = None,
) -> dict[str, np.ndarray]:
    """The paper's AlexNet layer outputs of an image set, flattened per image.

    Parameters
    ----------
    images : array_like, shape (n, y, x[, 3])
        Images: uint8, floats in [0, 1], or floats in [0, 255] (the set is divided by 255 when
        its maximum exceeds 1, as in the notebook). Grey images are put on all three channels.
    layers : sequence of str
        Subset of :data:`ALEXNET_LAYERS`.
    model : torch.nn.Module, optional
        A torchvision AlexNet; default :func:`load_alexnet`.
    device : str, optional
        Torch device; default that of the model's parameters when a model is given, else CUDA
        when available, else CPU. (The model is moved there.)
    batch_size : int
        Images per forward pass.
    preprocess : {"notebook", "float"}
        See :func:`preprocess_images`.
    allow_download : bool, optional
        Passed to :func:`load_alexnet` when no model is given.

    Returns
    -------
    dict of str to numpy.ndarray
        ``layer -> (n, n_features)`` float32 outputs of the layer's slice (see the module
        docstring).
    """
    layers = _check_layers(layers)
    arr = _rgb_stack(images, "images")
    model, device = _resolve_model(model, device, allow_download)
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    for _, feats in _iter_features(arr, layers, model, device, batch_size, preprocess):
        for name in layers:
            chunks[name].append(feats[name].astype(np.float32))
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def alexnet_layer_correlations(
    stimuli: Any,
    reconstructions: Any,
    *,
    layers: Sequence[str] = ALEXNET_LAYERS,
    model: Any = None,
    device: str | None = None,
    batch_size: int = 32,
    preprocess: str = "notebook",
    stimulus_features: Mapping[str, np.ndarray] | None = None,
    allow_download: bool | None = None,
) -> xr.Dataset:
    """The paper's AlexNet layer correlations (and distances) of stimuli and reconstructions.

    Parameters
    ----------
    stimuli, reconstructions : array_like, shape (n, y, x[, 3])
        Paired image sets (same n; their sizes may differ, both are resized to 224 px). Each
        set: uint8, floats in [0, 1], or floats in [0, 255] (see :func:`notebook_uint8`).
    layers : sequence of str
        Subset of :data:`ALEXNET_LAYERS`.
    model, device, batch_size, preprocess, allow_download
        As in :func:`alexnet_features`.
    stimulus_features : mapping of str to numpy.ndarray, optional
        Precomputed ``alexnet_features(stimuli, preprocess=...)`` (saves a pass when scoring
        several reconstructions of the same stimuli).

    Returns
    -------
    xarray.Dataset
        ``overall`` (dims ``("layer",)``): Pearson r between the features of all stimuli and all
        reconstructions, flattened over the whole set (the number the paper reports);
        ``mean_squared_difference`` (``("layer",)``): mean over all images and features of the
        squared feature difference (the notebook's "distance"); ``per_image``
        (``("stimulus_id", "layer")``): Pearson r per stimulus/reconstruction pair (not in the
        paper).

    Raises
    ------
    irfa_nwb.errors.MissingWeightsError
        When no model is given and the pretrained AlexNet weights are not on this machine and
        cannot be downloaded.
    """
    layers = _check_layers(layers)
    a = _rgb_stack(stimuli, "stimuli")
    b = _rgb_stack(reconstructions, "reconstructions")
    if a.shape[0] != b.shape[0]:
        raise InputError(
            f"stimuli and reconstructions must pair up: {a.shape[0]} stimuli, "
            f"{b.shape[0]} reconstructions"
        )
    n = a.shape[0]
    model, device = _resolve_model(model, device, allow_download)
    if stimulus_features is not None and all(name in stimulus_features for name in layers):
        pre = {name: np.asarray(stimulus_features[name]) for name in layers}
        if any(v.shape[0] != n for v in pre.values()):
            raise InputError("stimulus_features do not hold one row per stimulus")
        stim_iter = None
    else:
        pre = None
        stim_iter = _iter_features(a, layers, model, device, batch_size, preprocess)
    moments = {name: _PairMoments() for name in layers}
    per_image = np.empty((n, len(layers)))
    for sl, fb in _iter_features(b, layers, model, device, batch_size, preprocess):
        if stim_iter is not None:
            _, fa = next(stim_iter)
        else:
            fa = {name: pre[name][sl].astype(np.float64) for name in layers}
        for j, name in enumerate(layers):
            if fa[name].shape != fb[name].shape:
                raise InputError(
                    f"{name} features differ in size between stimuli and reconstructions"
                )
            moments[name].update(fa[name], fb[name])
            za, zb = standardized_rows(fa[name]), standardized_rows(fb[name])
            per_image[sl, j] = np.sum(za * zb, axis=1)
    coords: dict[str, Any] = {"layer": list(layers)}
    coords.update(_stimulus_coords(stimuli, reconstructions))
    ds = xr.Dataset(
        {
            "overall": (("layer",), np.array([moments[name].r for name in layers])),
            "mean_squared_difference": (
                ("layer",), np.array([moments[name].mse for name in layers])
            ),
            "per_image": (("stimulus_id", "layer"), per_image),
        },
        coords=coords,
    )
    ds["overall"].attrs["description"] = (
        "Pearson r between the layer features of all stimuli and all reconstructions, "
        "flattened over the set (Le et al. 2025)"
    )
    ds["mean_squared_difference"].attrs["description"] = (
        "mean squared difference of the layer features, over all images and features"
    )
    ds.attrs["preprocess"] = preprocess
    ds.attrs["description"] = (
        "AlexNet layer feature correlations as in the IRFA reference notebook "
        "(quantification.ipynb)" if preprocess == "notebook" else
        "AlexNet layer feature correlations, float-resized inputs (not the notebook's route)"
    )
    return ds


def layer_shares(correlations: Sequence[float] | np.ndarray) -> np.ndarray:
    """Each layer's r as a percentage of the sum over layers (the paper's per-area figure).

    Parameters
    ----------
    correlations : sequence of float
        One r per layer.

    Returns
    -------
    numpy.ndarray
        ``100 * r / sum(r)``.
    """
    r = np.asarray(correlations, dtype=np.float64)
    total = r.sum()
    if not np.isfinite(total) or total == 0:
        raise InputError(f"layer correlations must have a finite, non-zero sum, got {total}")
    return 100.0 * r / total
