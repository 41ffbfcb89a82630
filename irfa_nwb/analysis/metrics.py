"""Pixel-level reconstruction quality: pixel correlation, SSIM, identification.

All functions take two image stacks of the same shape ``(n, y, x, channel)`` (or ``(n, y, x)``)
with values in ``[0, 1]``: the presented stimuli and their reconstructions, paired by index.
NumPy arrays and :class:`xarray.DataArray` objects are both accepted; per-image results come
back as :class:`xarray.DataArray` with a ``stimulus_id`` dimension (with the inputs'
``stimulus_id`` values, when they had them).

Network-based measures live elsewhere: the IRFA paper's AlexNet layer correlations in
:mod:`irfa_nwb.analysis.alexnet`, the eight-metric table of NSD reconstruction work in
:mod:`irfa_nwb.analysis.nsd_metrics`.
"""

from __future__ import annotations

from math import comb
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from ..stats import pearson_r, pearson_rows, standardized_rows

__all__ = [
    "identification_accuracy",
    "identification_rank",
    "pearson_r",
    "pixel_correlation",
    "reconstruction_metrics",
    "similarity_matrix",
    "ssim",
]

# ----------------------------------------------------------------------------- helpers


def _stimulus_coords(*arrays: Any) -> dict[str, Any]:
    """Return ``stimulus_id`` coordinates from the first DataArray input that has one."""
    for arr in arrays:
        if isinstance(arr, xr.DataArray) and "stimulus_id" in arr.coords:
            sid = arr.coords["stimulus_id"]
            if sid.ndim == 1:
                return {"stimulus_id": ("stimulus_id", np.asarray(sid.values))}
    return {}


def _as_pair(stimuli: Any, reconstructions: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return two float64 image stacks of identical shape."""
    a = np.asarray(stimuli, dtype=np.float64)
    b = np.asarray(reconstructions, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(
            f"stimuli and reconstructions must have the same shape, got {a.shape} and {b.shape}; "
            "resize the stimuli to the reconstruction size (estimator.image_size_) and pair them "
            "by stimulus before computing metrics"
        )
    if a.ndim not in (3, 4):
        raise InputError(
            f"expected image stacks of shape (n, y, x) or (n, y, x, channel), got {a.shape}"
        )
    if a.shape[0] < 1:
        raise InputError("need at least one image to compute metrics")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise InputError("images contain NaN or infinite values; clean them before scoring")
    return a, b


# ----------------------------------------------------------------------------- pixel metrics


def pixel_correlation(stimuli: Any, reconstructions: Any) -> xr.DataArray:
    """Pearson r between each stimulus and its reconstruction over all pixels and channels.

    Parameters
    ----------
    stimuli, reconstructions : array_like, shape (n, y, x[, channel])
        Paired image stacks.

    Returns
    -------
    xarray.DataArray, dims ("stimulus_id",)
        One correlation per image (NaN for a constant image).
    """
    a, b = _as_pair(stimuli, reconstructions)
    return xr.DataArray(
        pearson_rows(a, b), dims=("stimulus_id",),
        coords=_stimulus_coords(stimuli, reconstructions), name="pixel_r",
    )


def ssim(stimuli: Any, reconstructions: Any, *, data_range: float = 1.0) -> xr.DataArray:
    """Structural similarity (SSIM, scikit-image) of each reconstruction to its stimulus.

    Colour images are compared per channel and averaged (``channel_axis=-1``). The window is
    7 × 7 pixels, shrunk to the largest odd size that fits images smaller than that.

    Parameters
    ----------
    stimuli, reconstructions : array_like, shape (n, y, x[, channel])
        Paired image stacks.
    data_range : float, default 1.0
        Value range of the images (1.0 for images in [0, 1]).

    Returns
    -------
    xarray.DataArray, dims ("stimulus_id",)
        One SSIM value per image.
    """
    from skimage.metrics import structural_similarity

    a, b = _as_pair(stimuli, reconstructions)
    side = min(a.shape[1], a.shape[2])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        raise InputError(f"images of {a.shape[1]}x{a.shape[2]} pixels are too small for SSIM")
    channel_axis = -1 if a.ndim == 4 else None
    values = np.array(
        [
            structural_similarity(
                a[i], b[i], data_range=data_range, channel_axis=channel_axis, win_size=win
            )
            for i in range(a.shape[0])
        ]
    )
    return xr.DataArray(
        values, dims=("stimulus_id",), coords=_stimulus_coords(stimuli, reconstructions),
        name="ssim",
    )


# ----------------------------------------------------------------------------- identification


def similarity_matrix(stimuli: Any, reconstructions: Any) -> np.ndarray:
    """Pixel correlation of every reconstruction with every stimulus.

    Parameters
    ----------
    stimuli, reconstructions : array_like, shape (n, y, x[, channel])
        Paired image stacks.

    Returns
    -------
    numpy.ndarray, shape (n, n)
        ``S[i, j]`` = Pearson r between reconstruction ``i`` and stimulus ``j``.
    """
    a, b = _as_pair(stimuli, reconstructions)
    n = a.shape[0]
    za = standardized_rows(a.reshape(n, -1))
    zb = standardized_rows(b.reshape(n, -1))
    return zb @ za.T


def identification_rank(
    stimuli: Any, reconstructions: Any, *, similarity: np.ndarray | None = None
) -> xr.DataArray:
    """Rank of the true stimulus among all stimuli, by similarity to the reconstruction.

    Rank 1 means the reconstruction correlates more with its own stimulus than with any other;
    rank ``k`` means ``k - 1`` other stimuli correlate more (ties count against the true
    stimulus, so constant reconstructions are never "identified").

    Parameters
    ----------
    stimuli, reconstructions : array_like, shape (n, y, x[, channel])
        Paired image stacks.
    similarity : numpy.ndarray, shape (n, n), optional
        Precomputed ``S[i, j]`` (reconstruction i vs stimulus j); default pixel correlation
        (:func:`similarity_matrix`).

    Returns
    -------
    xarray.DataArray of int64, dims ("stimulus_id",)
        1-based ranks.
    """
    s = similarity_matrix(stimuli, reconstructions) if similarity is None else similarity
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise InputError(f"similarity must be a square matrix, got shape {s.shape}")
    own = np.diag(s)
    s = np.where(np.isnan(s), -np.inf, s)
    own_cmp = np.where(np.isnan(own), -np.inf, own)
    better = (s >= own_cmp[:, None]).sum(axis=1) - 1  # every j != i at least as similar
    ranks = (better + 1).astype(np.int64)
    return xr.DataArray(
        ranks,
        dims=("stimulus_id",),
        coords=_stimulus_coords(stimuli, reconstructions),
        name="identification_rank",
    )


def identification_accuracy(ranks: Any, n_way: int | None = None) -> float:
    """Expected n-way identification accuracy from identification ranks.

    For each reconstruction, the probability that its own stimulus is the most similar among
    itself and ``n_way - 1`` distractors drawn at random (without replacement) from the other
    ``n - 1`` stimuli is ``C(n - rank, n_way - 1) / C(n - 1, n_way - 1)``; this is averaged
    over reconstructions. It is exact (no sampling). ``n_way = 2`` is the usual pairwise
    accuracy (chance 0.5), ``n_way = n`` the fraction of rank-1 images (chance 1/n).

    Parameters
    ----------
    ranks : array_like of int, shape (n,)
        1-based ranks from :func:`identification_rank`.
    n_way : int, optional
        Number of candidates per trial, 2 ≤ n_way ≤ n; default n.

    Returns
    -------
    float
        Accuracy in [0, 1].
    """
    r = np.asarray(ranks).astype(np.int64).ravel()
    n = r.size
    if n < 2:
        raise InputError("identification needs at least two stimuli")
    if np.any(r < 1) or np.any(r > n):
        raise InputError(f"ranks must lie in 1..{n}, got {r.min()}..{r.max()}")
    m = n if n_way is None else int(n_way)
    if not 2 <= m <= n:
        raise InputError(f"n_way must be between 2 and the number of stimuli ({n}), got {m}")
    total = comb(n - 1, m - 1)
    return float(np.mean([comb(n - int(k), m - 1) / total for k in r]))


# ----------------------------------------------------------------------------- moved names

#: names that moved to :mod:`irfa_nwb.analysis.alexnet` (still importable from here)
_MOVED_TO_ALEXNET = ("ALEXNET_LAYERS", "alexnet_features", "alexnet_layer_correlations",
                     "load_alexnet")


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_ALEXNET:
        from . import alexnet

        return getattr(alexnet, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- summary


def reconstruction_metrics(stimuli: Any, reconstructions: Any) -> xr.Dataset:
    """Per-stimulus pixel r, SSIM and identification rank, and their summaries.

    Parameters
    ----------
    stimuli, reconstructions : array_like, shape (n, y, x[, channel])
        Paired image stacks in [0, 1].

    Returns
    -------
    xarray.Dataset
        Variables ``pixel_r``, ``ssim``, ``identification_rank`` (dims ``("stimulus_id",)``);
        attrs ``mean_pixel_r``, ``mean_ssim``, ``identification_accuracy`` (n-way with n =
        all stimuli) and ``identification_accuracy_2way`` (NaN with a single stimulus).
    """
    r = pixel_correlation(stimuli, reconstructions)
    s = ssim(stimuli, reconstructions)
    rank = identification_rank(stimuli, reconstructions)
    ds = xr.Dataset({"pixel_r": r, "ssim": s, "identification_rank": rank})
    n = rank.size
    ds.attrs["mean_pixel_r"] = float(np.nanmean(r.values)) if n else float("nan")
    ds.attrs["mean_ssim"] = float(np.mean(s.values))
    ds.attrs["identification_accuracy"] = (
        identification_accuracy(rank.values) if n >= 2 else float("nan")
    )
    ds.attrs["identification_accuracy_2way"] = (
        identification_accuracy(rank.values, 2) if n >= 2 else float("nan")
    )
    return ds
