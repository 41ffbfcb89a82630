"""Inverse receptive fields (IRFs): averages, consistency and variability across stimuli.

The IRFA attention weights ``w[h, c, y, x]`` (softmax over heads) give two views per head:

- the **spatial IRF**: ``w[h]`` averaged over channels, an ``y × x`` map (at each pixel the maps
  of all heads sum to 1);
- the **feature IRF**: ``w[h]`` summed over pixels, a length-``c`` vector.

The estimator returns them per stimulus (``IRFA.spatial_fields(X)`` with dims
``(stimulus, head, y, x)`` and ``IRFA.feature_fields(X)`` with dims
``(stimulus, head, channel)``). The paper's two findings are that spatial IRFs are consistent
across stimuli while feature IRFs vary with the stimulus; :func:`irf_summary` turns both into
numbers per head, using the same measure (mean pairwise Pearson correlation between stimuli)
for both so they can be compared directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError


def _as_fields(fields: Any, ndim: int, what: str) -> tuple[np.ndarray, list[str] | None]:
    """Return the array and head names (if the input carried a ``head`` coordinate)."""
    heads = None
    if isinstance(fields, xr.DataArray) and "head" in fields.coords:
        heads = [str(h) for h in fields.coords["head"].values]
    arr = np.asarray(fields, dtype=np.float64)
    if arr.ndim != ndim:
        raise InputError(
            f"{what} must have {ndim} dimensions, got shape {arr.shape}; pass the output of "
            f"IRFA.{'spatial' if ndim == 4 else 'feature'}_fields(X)"
        )
    if arr.shape[0] < 1:
        raise InputError(f"{what} hold no stimuli")
    return arr, heads


def _head_coords(
    n_heads: int, heads: Sequence[str] | None, areas: Sequence[str] | Mapping[str, str] | None
) -> dict[str, Any]:
    coords: dict[str, Any] = {}
    if heads is not None:
        if len(heads) != n_heads:
            raise InputError(f"got {len(heads)} head names for {n_heads} heads")
        coords["head"] = ("head", [str(h) for h in heads])
    if areas is not None:
        if isinstance(areas, Mapping):
            if heads is None:
                raise InputError("an area mapping needs head names (a 'head' coordinate)")
            missing = [h for h in heads if h not in areas]
            if missing:
                raise InputError(f"no area given for heads {missing}")
            area_list = [str(areas[h]) for h in heads]
        else:
            area_list = [str(a) for a in areas]
        if len(area_list) != n_heads:
            raise InputError(f"got {len(area_list)} areas for {n_heads} heads")
        coords["area"] = ("head", area_list)
    return coords


def mean_pairwise_correlation(samples: Any) -> float:
    """Mean Pearson correlation over all pairs of rows.

    Parameters
    ----------
    samples : array_like, shape (n, ...)
        ``n`` samples; each is flattened.

    Returns
    -------
    float
        Mean of ``corr(samples[i], samples[j])`` over ``i < j``; NaN with fewer than two
        non-constant samples (constant samples are left out).
    """
    m = np.asarray(samples, dtype=np.float64)
    m = m.reshape(m.shape[0], -1)
    scale = np.abs(m).max(axis=1) * np.sqrt(m.shape[1]) if m.size else np.zeros(len(m))
    m = m - m.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(m, axis=1)
    keep = norm > 1e-9 * scale  # leave out constant rows (up to rounding)
    z = m[keep] / norm[keep, None]
    n = z.shape[0]
    if n < 2:
        return float("nan")
    # sum over i != j of z_i . z_j = |sum_i z_i|^2 - sum_i |z_i|^2  (= n, rows are unit norm)
    total = z.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def spatial_irf_mean(spatial_fields: Any) -> xr.DataArray:
    """Average spatial IRFs over stimuli.

    Parameters
    ----------
    spatial_fields : array_like, shape (n, head, y, x)
        Per-stimulus spatial IRFs (``IRFA.spatial_fields``).

    Returns
    -------
    xarray.DataArray, dims ("head", "y", "x")
        The mean map per head (``head`` coordinate kept when the input had one).
    """
    arr, heads = _as_fields(spatial_fields, 4, "spatial fields")
    coords = _head_coords(arr.shape[1], heads, None)
    return xr.DataArray(arr.mean(axis=0), dims=("head", "y", "x"), coords=coords,
                        name="spatial_irf")


def feature_irf_mean(feature_fields: Any) -> xr.DataArray:
    """Average feature IRFs over stimuli.

    Parameters
    ----------
    feature_fields : array_like, shape (n, head, channel)
        Per-stimulus feature IRFs (``IRFA.feature_fields``).

    Returns
    -------
    xarray.DataArray, dims ("head", "channel")
    """
    arr, heads = _as_fields(feature_fields, 3, "feature fields")
    coords = _head_coords(arr.shape[1], heads, None)
    return xr.DataArray(arr.mean(axis=0), dims=("head", "channel"), coords=coords,
                        name="feature_irf")


def _consistency(fields: Any, ndim: int, what: str, name: str) -> xr.DataArray:
    """Mean pairwise correlation across stimuli of each head's IRF."""
    arr, heads = _as_fields(fields, ndim, what)
    values = [mean_pairwise_correlation(arr[:, h]) for h in range(arr.shape[1])]
    return xr.DataArray(values, dims=("head",), coords=_head_coords(len(values), heads, None),
                        name=name)


def spatial_consistency(spatial_fields: Any) -> xr.DataArray:
    """Consistency of each head's spatial IRF across stimuli.

    Parameters
    ----------
    spatial_fields : array_like, shape (n, head, y, x)
        Per-stimulus spatial IRFs.

    Returns
    -------
    xarray.DataArray, dims ("head",)
        Mean pairwise Pearson correlation between the maps of different stimuli (1 = the same
        map for every stimulus; NaN when fewer than two stimuli have a non-constant map).
    """
    return _consistency(spatial_fields, 4, "spatial fields", "spatial_consistency")


def feature_consistency(feature_fields: Any) -> xr.DataArray:
    """Consistency of each head's feature IRF across stimuli (mean pairwise correlation).

    Parameters
    ----------
    feature_fields : array_like, shape (n, head, channel)
        Per-stimulus feature IRFs.

    Returns
    -------
    xarray.DataArray, dims ("head",)
    """
    return _consistency(feature_fields, 3, "feature fields", "feature_consistency")


def feature_variability(feature_fields: Any) -> xr.DataArray:
    """Variability of each head's feature IRF across stimuli.

    Parameters
    ----------
    feature_fields : array_like, shape (n, head, channel)
        Per-stimulus feature IRFs.

    Returns
    -------
    xarray.DataArray, dims ("head",)
        Coefficient of variation: the across-stimulus standard deviation, averaged over
        channels, divided by the mean absolute value over stimuli and channels (0 = identical
        for every stimulus).
    """
    arr, heads = _as_fields(feature_fields, 3, "feature fields")
    sd = arr.std(axis=0).mean(axis=-1)
    scale = np.abs(arr).mean(axis=(0, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = np.where(scale > 0, sd / np.where(scale > 0, scale, 1.0), np.nan)
    return xr.DataArray(cv, dims=("head",), coords=_head_coords(cv.size, heads, None),
                        name="feature_variability")


def irf_summary(
    spatial_fields: Any,
    feature_fields: Any,
    *,
    heads: Sequence[str] | None = None,
    areas: Sequence[str] | Mapping[str, str] | None = None,
) -> xr.Dataset:
    """The paper's two IRF findings as numbers, per head and per area.

    Parameters
    ----------
    spatial_fields : array_like, shape (n, head, y, x)
        Per-stimulus spatial IRFs.
    feature_fields : array_like, shape (n, head, channel)
        Per-stimulus feature IRFs of the same stimuli.
    heads : sequence of str, optional
        Head names; default the ``head`` coordinate of the inputs.
    areas : sequence of str or mapping of head to area, optional
        Brain area of each head.

    Returns
    -------
    xarray.Dataset
        Dims ``("head",)``: ``spatial_consistency``, ``feature_consistency`` (mean pairwise
        correlation across stimuli) and ``feature_variability`` (coefficient of variation);
        when areas are given also their per-area means with dims ``("area",)`` (variables
        prefixed ``area_``). Attrs ``spatial_consistency`` and ``feature_consistency`` hold the
        means over heads; the paper's findings read ``spatial_consistency >
        feature_consistency``.
    """
    sp, sp_heads = _as_fields(spatial_fields, 4, "spatial fields")
    ft, ft_heads = _as_fields(feature_fields, 3, "feature fields")
    if sp.shape[:2] != ft.shape[:2]:
        raise InputError(
            f"spatial fields {sp.shape} and feature fields {ft.shape} must share the stimulus "
            "and head dimensions"
        )
    names = list(heads) if heads is not None else (sp_heads or ft_heads)
    coords = _head_coords(sp.shape[1], names, areas)
    ds = xr.Dataset(
        {
            "spatial_consistency": ("head", spatial_consistency(sp).values),
            "feature_consistency": ("head", feature_consistency(ft).values),
            "feature_variability": ("head", feature_variability(ft).values),
        },
        coords=coords,
    )
    if "area" in ds.coords:
        per_area = ds.groupby("area").mean()
        for name in list(per_area.data_vars):
            ds[f"area_{name}"] = per_area[name].rename(area="area_name")
    ds.attrs["spatial_consistency"] = float(np.nanmean(ds["spatial_consistency"].values))
    ds.attrs["feature_consistency"] = float(np.nanmean(ds["feature_consistency"].values))
    ds.attrs["description"] = (
        "Per head: mean pairwise Pearson correlation across stimuli of spatial IRFs "
        "(spatial_consistency) and of feature IRFs (feature_consistency), and the coefficient "
        "of variation of feature IRFs across stimuli (feature_variability)."
    )
    return ds
