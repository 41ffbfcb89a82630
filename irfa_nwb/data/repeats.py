"""Utilities on response tensors: repeats, reliability, unit selection, z-scoring, splits.

All functions accept the ``responses`` DataArray or the Dataset from
:func:`irfa_nwb.load_dataset` (they then work on its ``responses`` and keep the images aligned).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError

__all__ = [
    "average_repeats",
    "split_half_reliability",
    "select_units",
    "to_training_pair",
    "train_test_split",
    "zscore_sessions",
]


def _responses(data: xr.Dataset | xr.DataArray) -> xr.DataArray:
    if isinstance(data, xr.Dataset):
        if "responses" not in data:
            raise InputError("the Dataset has no 'responses' variable")
        return data["responses"]
    if isinstance(data, xr.DataArray):
        return data
    raise InputError(
        f"expected an xarray Dataset or DataArray of responses, got {type(data).__name__}"
    )


def _need(da: xr.DataArray, dim: str, coord: str) -> None:
    if dim not in da.dims:
        raise InputError(f"responses need a {dim!r} dimension (they have dims {da.dims})")
    if coord not in da.coords:
        raise InputError(f"responses need a {coord!r} coordinate along {dim!r}")


def _unit_coords(da: xr.DataArray) -> dict[str, Any]:
    return {k: v for k, v in da.coords.items() if v.dims == ("unit",)}


def average_repeats(data: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """Average the presentations of each stimulus.

    Parameters
    ----------
    data : Dataset or DataArray
        Responses with dims ``("presentation", "unit"[, "time_bin"])`` and a ``stimulus_id``
        presentation coordinate.

    Returns
    -------
    xarray.DataArray
        float32, dims ``("stimulus", "unit"[, "time_bin"])``, stimuli sorted by
        ``stimulus_id``; coords ``stimulus_id``, ``n_repeats`` (int64), ``split`` when the
        input has a consistent one, and all unit coords. NaN responses are ignored (a stimulus
        whose repeats are all NaN gives NaN).
    """
    da = _responses(data)
    _need(da, "presentation", "stimulus_id")
    ids = np.asarray(da["stimulus_id"].values)
    uniq, inverse = np.unique(ids, return_inverse=True)
    values = np.moveaxis(
        np.asarray(da.values, dtype=np.float64), da.get_axis_num("presentation"), 0
    )
    finite = np.isfinite(values)
    sums = np.zeros((len(uniq), *values.shape[1:]))
    counts = np.zeros_like(sums)
    np.add.at(sums, inverse, np.where(finite, values, 0.0))
    np.add.at(counts, inverse, finite)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (sums / counts).astype(np.float32)
    n_rep = np.bincount(inverse, minlength=len(uniq)).astype(np.int64)
    other = [d for d in da.dims if d != "presentation"]
    coords: dict[str, Any] = {
        "stimulus_id": ("stimulus", uniq),
        "n_repeats": ("stimulus", n_rep),
        **_unit_coords(da),
    }
    for name, coord in da.coords.items():
        if coord.dims and all(d in other and d != "unit" for d in coord.dims):
            coords[name] = coord
    if "split" in da.coords:
        split = np.asarray(da["split"].values).astype(str)
        per = np.empty(len(uniq), dtype=object)
        consistent = True
        for k in range(len(uniq)):
            vals = np.unique(split[inverse == k])
            consistent &= len(vals) == 1
            per[k] = vals[0]
        if consistent:
            coords["split"] = ("stimulus", per.astype(str))
    return xr.DataArray(mean, dims=("stimulus", *other), coords=coords, attrs=dict(da.attrs))


def split_half_reliability(
    data: xr.Dataset | xr.DataArray,
    *,
    n_splits: int = 20,
    spearman_brown: bool = True,
    seed: int = 0,
) -> xr.DataArray:
    """Split-half reliability of every unit across stimuli.

    For each of ``n_splits`` random splits, the repeats of every stimulus are divided into two
    halves; the Pearson correlation across stimuli between the two half-averages is computed
    per unit, Spearman-Brown corrected (``2r / (1 + r)``) unless told otherwise, and averaged
    over splits.

    Parameters
    ----------
    data : Dataset or DataArray
        Responses ``("presentation", "unit")`` with repeats (stimuli with fewer than 2 repeats
        are ignored). Time bins, if any, are averaged first.
    n_splits : int
        Number of random splits.
    spearman_brown : bool
        Apply the Spearman-Brown correction.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    xarray.DataArray
        float64, dims ``("unit",)`` with the unit coords; NaN where a unit does not vary.
    """
    da = _responses(data)
    _need(da, "presentation", "stimulus_id")
    if "time_bin" in da.dims:
        da = da.mean("time_bin")
    ids = np.asarray(da["stimulus_id"].values)
    values = np.asarray(da.transpose("presentation", "unit").values, dtype=np.float64)
    uniq, inverse = np.unique(ids, return_inverse=True)
    groups = [np.flatnonzero(inverse == k) for k in range(len(uniq))]
    groups = [g for g in groups if len(g) >= 2]
    if len(groups) < 3:
        raise InputError(
            "split-half reliability needs at least 3 stimuli shown at least twice; these "
            f"responses have {len(groups)}"
        )
    rng = np.random.default_rng(seed)
    rs = np.zeros((n_splits, values.shape[1]))
    for s in range(n_splits):
        a = np.empty((len(groups), values.shape[1]))
        b = np.empty_like(a)
        for k, g in enumerate(groups):
            perm = rng.permutation(g)
            half = len(perm) // 2
            a[k] = np.nanmean(values[perm[:half]], axis=0)
            b[k] = np.nanmean(values[perm[half:]], axis=0)
        a -= a.mean(axis=0)
        b -= b.mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))
            if spearman_brown:
                r = 2 * r / (1 + r)
        rs[s] = r
    return xr.DataArray(
        rs.mean(axis=0),
        dims=("unit",),
        coords=_unit_coords(da),
        name="reliability",
        attrs={"n_splits": int(n_splits), "spearman_brown": int(spearman_brown)},
    )


def select_units(
    data: xr.Dataset | xr.DataArray,
    *,
    min_reliability: float | None = None,
    reliability: xr.DataArray | np.ndarray | None = None,
    areas: Sequence[str] | None = None,
    electrode_groups: Sequence[str] | None = None,
    unit_ids: Sequence[int] | None = None,
    **reliability_kwargs: Any,
) -> xr.Dataset | xr.DataArray:
    """Keep the units that pass all the given criteria.

    Parameters
    ----------
    data : Dataset or DataArray
        With a ``unit`` dimension.
    min_reliability : float, optional
        Keep units with reliability strictly above this (the paper uses 0.4). Reliability is
        ``reliability`` if given, else a ``reliability`` unit coordinate (e.g. TVSD's), else
        :func:`split_half_reliability` of ``data``.
    reliability : DataArray or array, optional
        One value per unit.
    areas, electrode_groups : sequence of str, optional
        Keep units in these areas / electrode groups.
    unit_ids : sequence of int, optional
        Keep these unit ids.
    **reliability_kwargs
        Passed to :func:`split_half_reliability`.

    Returns
    -------
    Same type as ``data``, with fewer units.
    """
    da = _responses(data)
    if "unit" not in da.dims:
        raise InputError(f"data need a 'unit' dimension (they have dims {da.dims})")
    keep = np.ones(da.sizes["unit"], dtype=bool)
    if min_reliability is not None:
        if reliability is None:
            if "reliability" in da.coords:
                reliability = da["reliability"]
            else:
                reliability = split_half_reliability(da, **reliability_kwargs)
        rel = np.asarray(getattr(reliability, "values", reliability), dtype=np.float64)
        if rel.shape != keep.shape:
            raise InputError(f"reliability has shape {rel.shape}; expected ({keep.size},)")
        with np.errstate(invalid="ignore"):
            keep &= rel > float(min_reliability)
    for coord, allowed in (
        ("area", areas),
        ("electrode_group", electrode_groups),
        ("unit_id", unit_ids),
    ):
        if allowed is not None:
            if coord not in da.coords:
                raise InputError(f"cannot select on {coord!r}: the data have no such coordinate")
            keep &= np.isin(da[coord].values, list(allowed))
    if not keep.any():
        raise InputError("no unit passes the selection")
    return data.isel(unit=np.flatnonzero(keep))


def zscore_sessions(
    data: xr.Dataset | xr.DataArray, *, by: str = "session", dim: str | None = None
) -> xr.Dataset | xr.DataArray:
    """Z-score every unit within each session (over presentations or stimuli).

    Parameters
    ----------
    data : Dataset or DataArray
        Responses with a ``presentation`` (or ``stimulus``) dimension.
    by : str
        Coordinate along that dimension naming the session (e.g. recording day); when absent,
        all of ``data`` is one session.
    dim : str, optional
        Dimension to z-score over (default ``presentation`` if present, else ``stimulus``).

    Returns
    -------
    Same type as ``data``; responses float32 with mean 0 and standard deviation 1 per unit and
    session (a constant unit gives 0). NaNs are ignored in the statistics and kept.
    """
    da = _responses(data)
    if dim is None:
        dim = "presentation" if "presentation" in da.dims else "stimulus"
    if dim not in da.dims:
        raise InputError(f"cannot z-score over {dim!r}: responses have dims {da.dims}")
    axis = da.get_axis_num(dim)
    values = np.asarray(da.values, dtype=np.float64)
    out = np.empty_like(values)
    sessions = np.asarray(da[by].values) if by in da.coords else np.zeros(da.sizes[dim])
    for s in np.unique(sessions):
        sel = np.flatnonzero(sessions == s)
        block = np.take(values, sel, axis=axis)
        mean = np.nanmean(block, axis=axis, keepdims=True)
        std = np.nanstd(block, axis=axis, keepdims=True)
        std[~(std > 0)] = 1.0
        idx = [slice(None)] * values.ndim
        idx[axis] = sel
        out[tuple(idx)] = (block - mean) / std
    result = da.copy(data=out.astype(np.float32))
    result.attrs["zscored_by"] = by if by in da.coords else "all"
    if isinstance(data, xr.Dataset):
        return data.assign(responses=result)
    return result


def _split_dim(da: xr.DataArray) -> str:
    for d in ("presentation", "stimulus"):
        if d in da.dims:
            return d
    raise InputError(f"responses need a 'presentation' or 'stimulus' dim (they have {da.dims})")


def train_test_split(
    data: xr.Dataset | xr.DataArray,
    *,
    test_size: float | int = 0.1,
    seed: int = 0,
    use_split: bool = True,
) -> tuple[xr.Dataset | xr.DataArray, xr.Dataset | xr.DataArray]:
    """Split into train and test sets; all repeats of a stimulus end up on the same side.

    Parameters
    ----------
    data : Dataset or DataArray
        Responses along ``presentation`` (or averaged along ``stimulus``) with a
        ``stimulus_id`` coordinate.
    test_size : float or int
        Fraction (0 < f < 1) or number of stimuli for the test side. Ignored when the data
        carry a designated split.
    seed : int
        Seed of ``numpy.random.default_rng`` for the random split.
    use_split : bool
        Honour a ``split`` coordinate (``"train"`` / ``"test"``, e.g. TVSD's designated test
        set) when present.

    Returns
    -------
    (train, test)
        Same type as ``data``. For a Dataset, ``images`` are cut to the stimuli of each side.
    """
    da = _responses(data)
    dim = _split_dim(da)
    _need(da, dim, "stimulus_id")
    ids = np.asarray(da["stimulus_id"].values)
    if use_split and "split" in da.coords:
        split = np.asarray(da["split"].values).astype(str)
        bad = sorted(set(split.tolist()) - {"train", "test"})
        if bad:
            raise InputError(f"split coordinate must hold 'train' / 'test', found {bad}")
        test_ids = np.unique(ids[split == "test"])
        if np.intersect1d(test_ids, np.unique(ids[split == "train"])).size:
            raise InputError("some stimuli are in both the designated train and test sets")
        is_test = split == "test"
    else:
        uniq = np.unique(ids)
        n_test = (
            int(round(test_size * len(uniq))) if isinstance(test_size, float) else int(test_size)
        )
        if isinstance(test_size, float) and not 0 < test_size < 1:
            raise InputError(f"test_size as a fraction must be in (0, 1), got {test_size}")
        if not 0 < n_test < len(uniq):
            raise InputError(
                f"test_size={test_size} gives {n_test} test stimuli out of {len(uniq)}; "
                "each side needs at least one"
            )
        rng = np.random.default_rng(seed)
        test_ids = rng.choice(uniq, size=n_test, replace=False)
        is_test = np.isin(ids, test_ids)
    train = data.isel({dim: np.flatnonzero(~is_test)})
    test = data.isel({dim: np.flatnonzero(is_test)})
    if isinstance(data, xr.Dataset) and "images" in data:
        train = _cut_images(train, np.unique(ids[~is_test]))
        test = _cut_images(test, np.unique(ids[is_test]))
    return train, test


def _cut_images(ds: xr.Dataset, ids: np.ndarray) -> xr.Dataset:
    return ds.sel(stimulus=ids) if "stimulus" in ds["images"].dims else ds


def to_training_pair(
    dataset: xr.Dataset, *, average: bool = True
) -> tuple[xr.DataArray, xr.DataArray]:
    """Responses and images aligned stimulus by stimulus, ready for ``IRFA.fit(X, y)``.

    Parameters
    ----------
    dataset : xarray.Dataset
        From :func:`irfa_nwb.load_dataset` (responses without time bins, and images).
    average : bool
        Average the repeats of each stimulus (default). Otherwise every presentation is one
        row (its stimulus repeated in ``y``).

    Returns
    -------
    X : xarray.DataArray
        float32, dims ``("stimulus", "unit")``; coords ``stimulus_id`` (and ``n_repeats``,
        ``split`` when averaged) and all unit coords (``unit_id``, ``electrode_group``,
        ``area``, ``rf_x``, ``rf_y``...).
    y : xarray.DataArray
        Images, dims ``("stimulus", "y", "x", "channel")``, coord ``stimulus_id``, in the
        same order as ``X``.
    """
    if not isinstance(dataset, xr.Dataset) or "images" not in dataset:
        raise InputError("to_training_pair needs a Dataset with 'responses' and 'images'")
    da = dataset["responses"]
    if "time_bin" in da.dims:
        raise InputError(
            "responses have time bins; reload without bins= or average them "
            "(ds['responses'].mean('time_bin')) before making a training pair"
        )
    if average:
        X = average_repeats(da)
    else:
        X = da.rename(presentation="stimulus")
    ids = np.asarray(X["stimulus_id"].values)
    known = np.asarray(dataset["images"]["stimulus"].values)
    missing = np.setdiff1d(ids, known)
    if missing.size:
        raise InputError(f"responses refer to stimuli without images: {missing[:5].tolist()}")
    y = dataset["images"].sel(stimulus=ids)
    y = y.drop_vars("stimulus").assign_coords(stimulus_id=("stimulus", ids))
    X = X.transpose("stimulus", "unit")
    return X, y
