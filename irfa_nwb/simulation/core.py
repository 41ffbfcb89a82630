"""``simulate``: a ground-truth data set in the data model of :func:`irfa_nwb.load_dataset`."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._version import __version__
from ..data import ImageSet, build_dataset
from ..errors import InputError
from .cortex import DEFAULT_ARRAYS, VirtualCortex, make_cortex
from .images import PHOTOS, natural_patches

__all__ = [
    "SOURCE",
    "array_rf_centres",
    "onset_rate",
    "simulate",
    "simulate_recording",
    "simulation_streams",
    "stimulus_names",
]

#: ``attrs["source"]`` of a simulated Dataset
SOURCE = "irfa_nwb.simulate_recording"

#: Onset of the first presentation (s).
FIRST_ONSET = 1.0


def simulation_streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent random streams used by :func:`simulate`, all from ``default_rng(seed)``.

    ``images``, ``cortex``, ``schedule``, ``noise`` and ``spikes`` (spike times in the NWB
    file) are children spawned from
    ``np.random.default_rng(seed)``, so e.g. :func:`~irfa_nwb.simulation.make_cortex` with
    ``random_state=simulation_streams(seed)["cortex"]`` rebuilds the cortex of
    ``simulate_recording(random_state=seed)``
    whatever the number of stimuli.
    """
    names = ("images", "cortex", "schedule", "noise", "spikes")
    children = np.random.default_rng(seed).spawn(len(names))
    return dict(zip(names, children, strict=True))


def onset_rate(isi: float) -> float:
    """Presentation rate (Hz) as stored in NWB (a float32 attribute), as a Python float."""
    return float(np.float32(1.0 / isi))


def stimulus_names(n: int) -> np.ndarray:
    """Names of the simulated stimuli (also the ``RGBImage`` names in the NWB file)."""
    return np.array([f"stimulus_{i:05d}" for i in range(n)])


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def simulate_recording(
    n_stimuli: int = 1000,
    n_test: int = 50,
    n_repeats: int = 10,
    image_size: int = 64,
    *,
    random_state: int = 0,
    arrays: Mapping[str, int] | None = None,
    units_per_array: int = 24,
    noise: str = "poisson",
    fano: float | None = None,
    baseline_rate: float = 10.0,
    max_rate: float = 100.0,
    window: float = 0.2,
    isi: float = 0.25,
    photos: Sequence[str] | None = None,
    return_cortex: bool = False,
) -> xr.Dataset | tuple[xr.Dataset, VirtualCortex]:
    """Simulate a recording of V1/V4/IT arrays viewing natural image patches.

    ``n_stimuli`` patches are cut from the photographs bundled with scikit-image; ``n_test`` of
    them (chosen at random) form the test set and are each shown ``n_repeats`` times, the others
    (the training set) once; all presentations are shuffled and shown every ``isi`` seconds.
    The response of each unit is a spike count in ``[0, window)`` after onset, drawn around the
    expected count of a :class:`~irfa_nwb.simulation.VirtualCortex` (see its module for the
    model).

    Parameters
    ----------
    n_stimuli : int, default 1000
        Number of distinct images (training + test).
    n_test : int, default 50
        Number of them in the test set (repeated).
    n_repeats : int, default 10
        Presentations of every test image.
    image_size : int, default 64
        Side of the square RGB images in pixels.
    random_state : int, default 0
        The only source of randomness (``np.random.default_rng(random_state)``, see
        :func:`simulation_streams`); the same arguments give an identical Dataset.
    arrays : mapping of str to int, optional
        Arrays per area (``"V1"``, ``"V4"``, ``"IT"``); default ``{"V1": 4, "V4": 2, "IT": 2}``.
    units_per_array : int, default 24
        Units (channels) per array.
    noise : {"poisson", "none"}, default "poisson"
        ``"poisson"``: integer spike counts; ``"none"``: the expected counts themselves (not
        integers).
    fano : float, optional
        None (default): the cortex's modulated Poisson noise, per-unit Fano factors 1-1.5 over
        natural images, trial gain partly shared within each array (see
        :meth:`~irfa_nwb.simulation.VirtualCortex.sample_counts`). A number >= 1: independent
        counts with that Fano factor (Poisson for 1, gamma-Poisson above).
    baseline_rate, max_rate : float, default 10, 100
        Typical (median) spontaneous and peak firing rates (Hz); units scatter around them.
    window : float, default 0.2
        Response window (s).
    isi : float, default 0.25
        Onset-to-onset interval (s), at least ``window``.
    photos : sequence of str, optional
        ``skimage.data`` photographs to cut patches from (default
        :data:`irfa_nwb.simulation.images.PHOTOS`).
    return_cortex : bool, default False
        Also return the :class:`~irfa_nwb.simulation.VirtualCortex` (ground truth: RF sizes,
        expected counts for any image).

    Returns
    -------
    xarray.Dataset
        The data model of :func:`irfa_nwb.load_dataset`:

        - ``responses`` float32, dims ``("stimulus_id", "repeat", "unit")``: spike counts of
          every presentation (NaN for the repeats a training image does not have); coords
          ``start_time`` (float64 s, per presentation), ``split`` (``"train"`` / ``"test"``,
          per stimulus). Unit coords ``unit_id`` (int64),
          ``electrode_group`` (array name, e.g. ``"V1_a1"``), ``area`` (``"V1"``, ``"V4"``,
          ``"IT"``), ``rf_x``, ``rf_y`` (float64 true RF centre, fraction of the image width
          from the left / height from the top, ``attrs["units"] == "image_fraction"``).
        - ``images`` uint8, dims ``("stimulus_id", "y", "x", "channel")``, stimulus ids
          ``0 .. n_stimuli - 1``, coord ``image_name``.
        - ``attrs``: ``source = "irfa_nwb.simulate_recording"``, ``irfa_nwb_version``,
          ``random_state`` and every
          parameter (str / int / float only).

        The true RF centre of an array is exactly the mean of its units' ``rf_x`` / ``rf_y``
        (see :func:`array_rf_centres`). With ``return_cortex=True``: ``(dataset, cortex)``.

    Examples
    --------
    >>> ds = simulate_recording(n_stimuli=200, n_test=10, n_repeats=5, image_size=32)
    >>> ds.responses.dims
    ('stimulus_id', 'repeat', 'unit')
    """
    n_stimuli = _check_int("n_stimuli", n_stimuli, 1)
    n_test = _check_int("n_test", n_test, 0)
    n_repeats = _check_int("n_repeats", n_repeats, 1)
    image_size = _check_int("image_size", image_size, 8)
    if n_test > n_stimuli:
        raise InputError(f"n_test ({n_test}) cannot exceed n_stimuli ({n_stimuli})")
    if not (isi >= window > 0):
        raise InputError(f"need isi >= window > 0, got isi={isi}, window={window}")
    arrays = dict(DEFAULT_ARRAYS if arrays is None else arrays)
    photos = tuple(PHOTOS if photos is None else photos)

    seed = int(random_state)
    streams = simulation_streams(seed)
    images = natural_patches(n_stimuli, image_size, random_state=streams["images"],
                             photos=photos)
    cortex = make_cortex(
        image_size=image_size,
        arrays=arrays,
        units_per_array=units_per_array,
        baseline_rate=baseline_rate,
        max_rate=max_rate,
        window=window,
        random_state=streams["cortex"],
    )

    sched = streams["schedule"]
    is_test = np.zeros(n_stimuli, dtype=bool)
    is_test[sched.choice(n_stimuli, size=n_test, replace=False)] = True
    shown = np.concatenate(
        [np.flatnonzero(~is_test), np.repeat(np.flatnonzero(is_test), n_repeats)]
    )
    shown = shown[sched.permutation(shown.size)].astype(np.int64)
    # onsets exactly as an NWB reader recomputes them from starting_time and the float32 rate
    start_time = FIRST_ONSET + np.arange(shown.size, dtype=np.float64) / onset_rate(isi)
    split = np.where(is_test[shown], "test", "train")

    expected = cortex.expected_counts(images)  # (stimulus, unit)
    counts = cortex.sample_counts(expected[shown], streams["noise"], noise=noise, fano=fano)

    attrs: dict[str, str | int | float] = {
        "source": SOURCE,
        "irfa_nwb_version": __version__,
        "random_state": seed,
        "n_stimuli": n_stimuli,
        "n_test": n_test,
        "n_repeats": n_repeats,
        "image_size": image_size,
        "units_per_array": int(units_per_array),
        "noise": str(noise),
        "fano": "per-unit" if fano is None else float(fano),
        "baseline_rate": float(baseline_rate),
        "max_rate": float(max_rate),
        "window": float(window),
        "isi": float(isi),
        "photos": ",".join(photos),
        "value_units": "spikes",
        "responses_kind": "spike_count" if noise == "poisson" else "expected_spike_count",
    }
    for area in ("V1", "V4", "IT"):
        attrs[f"n_arrays_{area}"] = int(arrays.get(area, 0))

    units = pd.DataFrame(
        {
            "unit_id": np.arange(cortex.n_units, dtype=np.int64),
            "electrode_group": cortex.electrode_group.astype(str),
            "area": cortex.area.astype(str),
            "rf_x": cortex.rf_x.astype(np.float64),
            "rf_y": cortex.rf_y.astype(np.float64),
        }
    )
    ds = build_dataset(
        counts.astype(np.float32),
        units,
        shown,
        start_time,
        ImageSet(images, stimulus_names(n_stimuli), "irfa_nwb.simulation"),
        attrs,
        split=split,
    )
    rf_attrs = {"units": "image_fraction", "long_name": "true receptive field centre"}
    for name in ("rf_x", "rf_y"):
        ds[name].attrs.update(rf_attrs)
    if return_cortex:
        return ds, cortex
    return ds


def simulate(*args: Any, seed: int | None = None, **kwargs: Any):
    """Deprecated alias of :func:`simulate_recording` (``seed`` is now ``random_state``)."""
    warnings.warn(
        "irfa_nwb.simulate is deprecated and will be removed in irfa-nwb 0.3; use "
        "irfa_nwb.simulate_recording(..., random_state=...)",
        FutureWarning,
        stacklevel=2,
    )
    if seed is not None:
        kwargs["random_state"] = seed
    return simulate_recording(*args, **kwargs)


def array_rf_centres(dataset: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """True RF centre of every array (electrode group) of a simulated data set.

    By construction it is the mean of the ``rf_x`` / ``rf_y`` of the array's units, so this
    also works on a simulated file read back with :func:`irfa_nwb.load_dataset`.

    Parameters
    ----------
    dataset : xarray.Dataset or xarray.DataArray
        Anything with unit coords ``electrode_group``, ``area``, ``rf_x`` and ``rf_y``.

    Returns
    -------
    xarray.Dataset
        Variables ``rf_x``, ``rf_y`` (float64, image fractions) and ``area`` along dim
        ``electrode_group`` (in order of first appearance).
    """
    missing = [c for c in ("electrode_group", "area", "rf_x", "rf_y") if c not in dataset.coords]
    if missing:
        raise InputError(f"need unit coords {missing} to compute array RF centres")
    group = np.asarray(dataset["electrode_group"].values).astype(str)
    area = np.asarray(dataset["area"].values).astype(str)
    rx = np.asarray(dataset["rf_x"].values, dtype=np.float64)
    ry = np.asarray(dataset["rf_y"].values, dtype=np.float64)
    _, first = np.unique(group, return_index=True)
    names = group[np.sort(first)]
    cx = np.array([rx[group == g].mean() for g in names])
    cy = np.array([ry[group == g].mean() for g in names])
    ar = np.array([area[group == g][0] for g in names])
    attrs = {"units": "image_fraction"}
    return xr.Dataset(
        {
            "rf_x": ("electrode_group", cx, attrs),
            "rf_y": ("electrode_group", cy, attrs),
            "area": ("electrode_group", ar),
        },
        coords={"electrode_group": names},
    )
