"""Tools on loaded response data: repeats, reliability, unit selection, z-scoring, splits.

Every function takes the Dataset of :func:`irfa_nwb.load_dataset` (responses and images on one
``stimulus_id`` index; the images stay aligned) or its ``responses`` DataArray, and returns the
same kind of object.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import xarray as xr

from ..errors import InputError

__all__ = [
    "average_repeats",
    "stack_presentations",
    "select_units",
    "split_half_reliability",
    "split_stimuli",
    "to_training_pair",
    "train_test_split",
    "zscore_sessions",
]

Data = TypeVar("Data", xr.Dataset, xr.DataArray)


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


def _need_stimuli(da: xr.DataArray) -> None:
    if "stimulus_id" not in da.dims:
        raise InputError(
            f"responses need a 'stimulus_id' dimension (they have dims {da.dims}); load them "
            "with irfa_nwb.load_dataset"
        )


def _unit_coords(da: xr.DataArray) -> dict[str, Any]:
    return {k: v for k, v in da.coords.items() if v.dims == ("unit",)}


def _with_responses(data: Data, responses: xr.DataArray) -> Data:
    if isinstance(data, xr.Dataset):
        rest = data.drop_vars(["responses", *[c for c in data.coords if "repeat" in
                                              data[c].dims]])
        if "repeat" in rest.dims and "repeat" not in responses.dims:
            rest = rest.drop_dims("repeat")
        return rest.assign(responses=responses)
    return responses


def average_repeats(data: Data) -> Data:
    """Average the presentations of each stimulus.

    Parameters
    ----------
    data : Dataset or DataArray
        Responses with dims ``("stimulus_id", "repeat", "unit"[, "time_bin"])``. Data without
        a ``repeat`` dim (already averaged) are returned unchanged.

    Returns
    -------
    Same type as ``data``
        Responses float32 with dims ``("stimulus_id", "unit"[, "time_bin"])`` and coord
        ``n_repeats`` (int64: presentations with any finite value); coordinates along
        ``repeat`` (``start_time``) are dropped; images and unit coords kept. NaN responses
        are ignored (a stimulus whose repeats are all NaN gives NaN).
    """
    da = _responses(data)
    if "repeat" not in da.dims:
        return data
    _need_stimuli(da)
    ordered = da.transpose("stimulus_id", "repeat", ...)
    values = np.asarray(ordered.values, dtype=np.float64)
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (np.where(finite, values, 0.0).sum(axis=1) / finite.sum(axis=1)).astype(np.float32)
    shape = values.shape
    n_repeats = finite.reshape(shape[0], shape[1], -1).any(axis=2).sum(axis=1).astype(np.int64)
    coords = {k: v for k, v in da.coords.items() if "repeat" not in v.dims}
    coords["n_repeats"] = ("stimulus_id", n_repeats)
    dims = [d for d in ordered.dims if d != "repeat"]
    out = xr.DataArray(mean, dims=dims, coords=coords, attrs=dict(da.attrs), name=da.name)
    out = out.transpose(*[d for d in da.dims if d != "repeat"])
    return _with_responses(data, out)


def stack_presentations(data: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """The responses as one row per presentation, in the order they were shown.

    Parameters
    ----------
    data : Dataset or DataArray
        Responses ``(stimulus_id, repeat, unit[, time_bin])`` with a ``start_time`` coord.

    Returns
    -------
    xarray.DataArray
        dims ``("presentation", "unit"[, "time_bin"])`` (a Brain-Score-style assembly) with
        presentation coords ``stimulus_id``, ``repeat``, ``start_time`` and any per-stimulus
        coords (``split``...); missing repeats dropped; sorted by ``start_time``.
    """
    da = _responses(data)
    _need_stimuli(da)
    if "repeat" not in da.dims:
        raise InputError("responses are averaged over repeats; there are no presentations left")
    stacked = da.stack(presentation=("stimulus_id", "repeat")).transpose("presentation", ...)
    shown = np.isfinite(np.asarray(stacked.values)).reshape(stacked.sizes["presentation"], -1)
    stacked = stacked.isel(presentation=np.flatnonzero(shown.any(axis=1)))
    ids = stacked["stimulus_id"].values
    repeat = stacked["repeat"].values
    stacked = stacked.drop_vars(["presentation", "stimulus_id", "repeat"])
    stacked = stacked.assign_coords(stimulus_id=("presentation", ids),
                                    repeat=("presentation", repeat))
    if "start_time" in stacked.coords:
        stacked = stacked.isel(presentation=np.argsort(stacked["start_time"].values,
                                                       kind="stable"))
    return stacked


def split_half_reliability(
    data: xr.Dataset | xr.DataArray,
    *,
    n_splits: int = 20,
    spearman_brown: bool = True,
    random_state: int | None = 0,
) -> xr.DataArray:
    """Split-half reliability of every unit across stimuli.

    For each of ``n_splits`` random splits, the repeats of every stimulus are divided into two
    halves; the Pearson correlation across stimuli between the two half-averages is computed
    per unit, Spearman-Brown corrected (``2r / (1 + r)``) unless told otherwise, and averaged
    over splits.

    Parameters
    ----------
    data : Dataset or DataArray
        Responses with a ``repeat`` dim (stimuli shown fewer than 2 times are ignored). Time
        bins, if any, are averaged first.
    n_splits : int
        Number of random splits.
    spearman_brown : bool
        Apply the Spearman-Brown correction.
    random_state : int or None
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    xarray.DataArray
        float64, dims ``("unit",)`` with the unit coords; NaN where a unit does not vary.
    """
    da = _responses(data)
    _need_stimuli(da)
    if "repeat" not in da.dims:
        raise InputError(
            "split-half reliability needs the single presentations (a 'repeat' dim); these "
            "responses are already averaged"
        )
    if "time_bin" in da.dims:
        da = da.mean("time_bin")
    values = np.asarray(da.transpose("stimulus_id", "repeat", "unit").values, dtype=np.float64)
    shown = np.isfinite(values).any(axis=2)  # (stimulus, repeat)
    usable = [k for k in range(values.shape[0]) if shown[k].sum() >= 2]
    if len(usable) < 3:
        raise InputError(
            "split-half reliability needs at least 3 stimuli shown at least twice; these "
            f"responses have {len(usable)}"
        )
    rng = np.random.default_rng(random_state)
    rs = np.zeros((n_splits, values.shape[2]))
    for s in range(n_splits):
        a = np.empty((len(usable), values.shape[2]))
        b = np.empty_like(a)
        for row, k in enumerate(usable):
            perm = rng.permutation(np.flatnonzero(shown[k]))
            half = len(perm) // 2
            a[row] = np.nanmean(values[k, perm[:half]], axis=0)
            b[row] = np.nanmean(values[k, perm[half:]], axis=0)
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
    data: Data,
    *,
    min_reliability: float | None = None,
    reliability: xr.DataArray | np.ndarray | None = None,
    areas: Sequence[str] | None = None,
    electrode_groups: Sequence[str] | None = None,
    unit_ids: Sequence[int] | None = None,
    **reliability_kwargs: Any,
) -> Data:
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


def zscore_sessions(data: Data, *, by: str = "session") -> Data:
    """Z-score every unit within each session, over all its presentations.

    Parameters
    ----------
    data : Dataset or DataArray
        Responses ``(stimulus_id[, repeat], unit[, time_bin])``.
    by : str
        Coordinate naming the session (e.g. recording day) of every presentation: along
        ``stimulus_id``, or along ``(stimulus_id, repeat)``. When absent, all of ``data`` is
        one session.

    Returns
    -------
    Same type as ``data``; responses float32 with mean 0 and standard deviation 1 per unit (and
    time bin) and session; a constant unit gives 0. NaNs are ignored in the statistics and
    kept.
    """
    da = _responses(data)
    _need_stimuli(da)
    sample_dims = [d for d in da.dims if d in ("stimulus_id", "repeat")]
    other = [d for d in da.dims if d not in sample_dims]
    ordered = da.transpose(*sample_dims, *other)
    values = np.asarray(ordered.values, dtype=np.float64)
    n_samples = int(np.prod([da.sizes[d] for d in sample_dims]))
    flat = values.reshape(n_samples, -1)
    if by in da.coords:
        labels = np.asarray(
            da[by].broadcast_like(ordered.isel({d: 0 for d in other})).transpose(*sample_dims)
            .values
        ).reshape(n_samples)
    else:
        labels = np.zeros(n_samples)
    out = np.empty_like(flat)
    for session in np.unique(labels):
        rows = labels == session
        block = flat[rows]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
            mean = np.nanmean(block, axis=0)
            std = np.nanstd(block, axis=0)
        std[~(std > 0)] = 1.0
        out[rows] = (block - mean) / std
    result = ordered.copy(data=out.reshape(values.shape).astype(np.float32))
    result = result.transpose(*da.dims)
    result.attrs["zscored_by"] = by if by in da.coords else "all"
    if isinstance(data, xr.Dataset):
        return data.assign(responses=result)
    return result


def split_stimuli(
    data: Data,
    *,
    test_size: float | int = 0.1,
    random_state: int | None = 0,
    use_split: bool = True,
) -> tuple[Data, Data]:
    """Split the stimuli into a train and a test set (all repeats of a stimulus together).

    Parameters
    ----------
    data : Dataset or DataArray
        With a ``stimulus_id`` dimension (images, when present, are split with the responses).
    test_size : float or int
        Fraction (0 < f < 1) or number of stimuli for the test side. Ignored when the data
        carry a designated split.
    random_state : int or None
        Seed of ``numpy.random.default_rng`` for the random split.
    use_split : bool
        Honour a ``split`` coordinate (``"train"`` / ``"test"`` per stimulus, e.g. TVSD's
        designated test set) when present.

    Returns
    -------
    (train, test)
        Same type as ``data``.
    """
    da = _responses(data)
    _need_stimuli(da)
    n = da.sizes["stimulus_id"]
    if use_split and "split" in da.coords:
        split = np.asarray(da["split"].values).astype(str)
        bad = sorted(set(split.tolist()) - {"train", "test"})
        if bad:
            raise InputError(f"split coordinate must hold 'train' / 'test', found {bad}")
        is_test = split == "test"
        if is_test.all() or not is_test.any():
            raise InputError(
                f"the designated split puts every stimulus on one side ({split[0]!r}); pass "
                "use_split=False to draw a random split"
            )
    else:
        if isinstance(test_size, float) and not 0 < test_size < 1:
            raise InputError(f"test_size as a fraction must be in (0, 1), got {test_size}")
        n_test = int(round(test_size * n)) if isinstance(test_size, float) else int(test_size)
        if not 0 < n_test < n:
            raise InputError(
                f"test_size={test_size} gives {n_test} test stimuli out of {n}; each side "
                "needs at least one"
            )
        rng = np.random.default_rng(random_state)
        is_test = np.zeros(n, dtype=bool)
        is_test[rng.choice(n, size=n_test, replace=False)] = True
    return (
        data.isel(stimulus_id=np.flatnonzero(~is_test)),
        data.isel(stimulus_id=np.flatnonzero(is_test)),
    )


def train_test_split(
    data: Data,
    *,
    test_size: float | int = 0.1,
    seed: int = 0,
    use_split: bool = True,
) -> tuple[Data, Data]:
    """Deprecated alias of :func:`split_stimuli` (``seed`` is now ``random_state``).

    Its name clashed with :func:`sklearn.model_selection.train_test_split`, which splits
    arrays row by row; this one splits a Dataset by stimulus.
    """
    warnings.warn(
        "irfa_nwb.train_test_split is deprecated and will be removed in irfa-nwb 0.3; use "
        "irfa_nwb.split_stimuli(data, test_size=..., random_state=...)",
        FutureWarning,
        stacklevel=2,
    )
    return split_stimuli(data, test_size=test_size, random_state=seed, use_split=use_split)


def to_training_pair(
    dataset: xr.Dataset, *, average: bool = True
) -> tuple[xr.DataArray, xr.DataArray]:
    """Deprecated: pass ``dataset["responses"]`` and ``dataset["images"]`` to ``fit`` directly.

    Returns ``(average_repeats(dataset)["responses"], dataset["images"])`` (or the single
    presentations when ``average=False``); the two share the ``stimulus_id`` index.
    """
    warnings.warn(
        "irfa_nwb.to_training_pair is deprecated and will be removed in irfa-nwb 0.3: responses "
        "and images share the stimulus_id index, so call "
        "IRFA().fit(ds['responses'], ds['images']) (after irfa_nwb.average_repeats(ds) to "
        "average repeats)",
        FutureWarning,
        stacklevel=2,
    )
    if not isinstance(dataset, xr.Dataset) or "images" not in dataset:
        raise InputError("to_training_pair needs a Dataset with 'responses' and 'images'")
    source = average_repeats(dataset) if average else dataset
    return source["responses"], source["images"]
