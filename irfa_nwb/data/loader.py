"""``load_dataset``: one call from an NWB file to an ``xarray.Dataset`` ready for IRFA.

The Dataset is indexed by one stimulus key, ``stimulus_id``, shared by its two variables:

- ``responses`` (float32): dims ``("stimulus_id", "repeat", "unit")`` (or with a trailing
  ``"time_bin"``): the response of every unit to every presentation of every stimulus,
  presentations of a stimulus numbered 0, 1, … in the order they were shown; NaN where a
  stimulus was shown fewer times than the most repeated one. ``load_dataset(...,
  repeats="average")`` averages the repeats while loading (dims ``("stimulus_id", "unit")``,
  coord ``n_repeats``), as :func:`irfa_nwb.average_repeats` does afterwards.
  Coords: ``start_time`` (float64 s, ``(stimulus_id, repeat)``; NaN for missing repeats),
  ``split`` (``"train"`` / ``"test"`` per stimulus, when the file designates one), unit coords
  ``unit_id`` (int64), ``electrode_group`` (str, the IRFA head), ``area`` (str), and ``rf_x``,
  ``rf_y`` (float64) when the electrodes table has those columns; ``window_start`` /
  ``window_stop`` (float64 s) when per-area windows were asked for.
- ``images``: dims ``("stimulus_id", "y", "x", "channel")``, uint8 or float32 in [0, 1], the
  image of every stimulus shown (``image_name`` coord when the images are named).

So ``IRFA().fit(ds["responses"], ds["images"])`` pairs every presentation with its image, and
``ds.stack(presentation=("stimulus_id", "repeat"))`` gives a Brain-Score-style
``presentation × unit`` view. Stimulus ids are int64 image indices or str image names.

Provenance (source, DANDI id / version / asset path, NWB identifier, object ids, window, units of
the values) is in ``attrs`` of the Dataset and of ``responses``, as str / int / float / lists.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._version import __version__
from ..errors import InputError, NWBLayoutError
from .continuous import channel_metadata, find_series, window_means
from .images import ImageSet, read_images
from .sources import _open_with_provenance
from .stimuli import file_images, find_presentations, match_images
from .units import spike_counts, unit_metadata

__all__ = ["build_dataset", "load_dataset", "repeat_numbers"]

Window = tuple[float, float]


def _check_window(w: Any, what: str) -> Window:
    try:
        a, b = (float(v) for v in w)
    except (TypeError, ValueError) as err:
        raise InputError(f"{what} must be a pair (start, stop) in seconds, got {w!r}") from err
    if not b > a:
        raise InputError(f"{what} must have stop > start, got {w!r}")
    return a, b


def _unit_windows(
    areas: np.ndarray, window: Window, windows: Mapping[str, Any] | None
) -> tuple[np.ndarray, np.ndarray]:
    starts = np.full(len(areas), window[0])
    stops = np.full(len(areas), window[1])
    if windows:
        present = set(areas.tolist())
        unknown = [k for k in windows if k not in present]
        if len(unknown) == len(windows):
            raise InputError(
                f"windows are given for areas {list(windows)} but the units are in areas "
                f"{sorted(present)}; use the area names of the file"
            )
        for area, w in windows.items():
            a, b = _check_window(w, f"windows[{area!r}]")
            sel = areas == area
            starts[sel], stops[sel] = a, b
    return starts, stops


#: a Dataset larger than this made mostly of missing repeats gets a warning
_PADDING_WARN_BYTES = 1 << 30


def _stimulus_key(stimulus_ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(stimulus_ids)
    return ids.astype(np.int64) if ids.dtype.kind in "iu" else ids.astype(str)


def repeat_numbers(stimulus_ids: np.ndarray, start_time: np.ndarray) -> tuple[np.ndarray, ...]:
    """Stimuli, and each presentation's stimulus position and repeat number (in time order).

    Returns
    -------
    uniq : array
        Sorted unique stimulus ids.
    stimulus_index : int array, one per presentation
        Position of its stimulus in ``uniq``.
    repeat : int array, one per presentation
        0 for the first presentation of its stimulus, 1 for the second, …
    """
    uniq, inverse = np.unique(stimulus_ids, return_inverse=True)
    order = np.lexsort((np.asarray(start_time, dtype=np.float64), inverse))
    repeat = np.empty(len(inverse), dtype=np.int64)
    sorted_inverse = inverse[order]
    first = np.r_[0, np.flatnonzero(np.diff(sorted_inverse)) + 1]
    counts = np.diff(np.r_[first, len(order)])
    repeat[order] = np.arange(len(order)) - np.repeat(first, counts)
    return uniq, inverse, repeat


def _per_stimulus_split(split: np.ndarray, inverse: np.ndarray, n: int) -> np.ndarray:
    split = np.asarray(split).astype(str)
    per = np.empty(n, dtype=object)
    for k in range(n):
        values = np.unique(split[inverse == k])
        if len(values) != 1:
            raise InputError(
                f"stimulus at position {k} is marked {values.tolist()} in the split column: a "
                "stimulus must be all train or all test"
            )
        per[k] = values[0]
    return per.astype(str)


def build_dataset(
    values: np.ndarray,
    units: pd.DataFrame,
    stimulus_ids: np.ndarray,
    start_time: np.ndarray,
    images: ImageSet | None,
    attrs: dict[str, Any],
    *,
    split: np.ndarray | None = None,
    extra_unit_coords: Mapping[str, np.ndarray] | None = None,
    extra_image_coords: Mapping[str, np.ndarray] | None = None,
    repeats: str = "keep",
) -> xr.Dataset:
    """Assemble the Dataset of the data model from per-presentation arrays (every reader).

    Parameters
    ----------
    values : array, shape (n_presentations, n_units[, n_bins])
    units : pandas.DataFrame
        Columns ``unit_id``, ``electrode_group``, ``area`` and optionally ``rf_x``, ``rf_y``.
    stimulus_ids : array, shape (n_presentations,)
        int64 image positions (indices into ``images``) or str image names.
    start_time : array of float, shape (n_presentations,)
    images : ImageSet or None
        When ``None`` the Dataset has no ``images`` variable.
    attrs : dict
        Provenance.
    split : array of str, optional
        ``"train"`` / ``"test"`` per presentation (the same for all presentations of a
        stimulus).
    extra_unit_coords : mapping, optional
        More coordinates along ``unit``.
    extra_image_coords : mapping, optional
        More coordinates of the images, one value per image of ``images`` (in its order).
    repeats : {"keep", "average"}
        Keep every presentation (``repeat`` dim) or average the repeats of each stimulus.
    """
    if repeats not in ("keep", "average"):
        raise InputError(f"repeats must be 'keep' or 'average'; got {repeats!r}")
    values = np.asarray(values, dtype=np.float32)
    stimulus_ids = _stimulus_key(stimulus_ids)
    uniq, inverse, repeat = repeat_numbers(stimulus_ids, start_time)
    n_stim, n_rep = len(uniq), int(repeat.max()) + 1 if len(repeat) else 0
    n_repeats = np.bincount(inverse, minlength=n_stim).astype(np.int64)
    coords: dict[str, Any] = {
        "stimulus_id": ("stimulus_id", uniq),
        "unit_id": ("unit", units["unit_id"].to_numpy(dtype=np.int64)),
        "electrode_group": ("unit", units["electrode_group"].to_numpy().astype(str)),
        "area": ("unit", units["area"].to_numpy().astype(str)),
    }
    for rf in ("rf_x", "rf_y"):
        if rf in units:
            coords[rf] = ("unit", units[rf].to_numpy(dtype=np.float64))
    if split is not None:
        coords["split"] = ("stimulus_id", _per_stimulus_split(split, inverse, n_stim))
    for name, val in (extra_unit_coords or {}).items():
        coords[name] = ("unit", np.asarray(val))
    tail: tuple[str, ...] = ("unit",)
    if values.ndim == 3:
        tail = ("unit", "time_bin")
        coords["time_bin"] = ("time_bin", np.arange(values.shape[2], dtype=np.int64))
    if repeats == "average":
        sums = np.zeros((n_stim, *values.shape[1:]), dtype=np.float64)
        counts = np.zeros_like(sums)
        finite = np.isfinite(values)
        np.add.at(sums, inverse, np.where(finite, values, 0.0))
        np.add.at(counts, inverse, finite)
        with np.errstate(invalid="ignore", divide="ignore"):
            table = (sums / counts).astype(np.float32)
        dims: tuple[str, ...] = ("stimulus_id", *tail)
        coords["n_repeats"] = ("stimulus_id", n_repeats)
    else:
        size = n_stim * n_rep * int(np.prod(values.shape[1:])) * 4
        if size > _PADDING_WARN_BYTES and n_stim * n_rep > 2 * len(stimulus_ids):
            warnings.warn(
                f"keeping every repeat takes {size / 2**30:.1f} GiB, mostly missing repeats "
                f"(stimuli are shown 1 to {n_rep} times); load with repeats='average' to "
                "average them while loading",
                UserWarning,
                stacklevel=3,
            )
        table = np.full((n_stim, n_rep, *values.shape[1:]), np.nan, dtype=np.float32)
        table[inverse, repeat] = values
        onset = np.full((n_stim, n_rep), np.nan)
        onset[inverse, repeat] = np.asarray(start_time, dtype=np.float64)
        dims = ("stimulus_id", "repeat", *tail)
        coords["repeat"] = ("repeat", np.arange(n_rep, dtype=np.int64))
        coords["start_time"] = (("stimulus_id", "repeat"), onset, {"units": "s"})
    responses = xr.DataArray(table, dims=dims, coords=coords, attrs=dict(attrs))
    data_vars: dict[str, Any] = {"responses": responses}
    if images is not None:
        if uniq.dtype.kind in "iu":
            rows = uniq
        else:
            if images.names is None:
                raise InputError("images are unnamed but the stimuli are identified by name")
            position = {name: i for i, name in enumerate(images.names.astype(str).tolist())}
            rows = np.array([position[name] for name in uniq.tolist()], dtype=np.int64)
        img_coords: dict[str, Any] = {"stimulus_id": ("stimulus_id", uniq)}
        if images.names is not None and uniq.dtype.kind in "iu":
            img_coords["image_name"] = ("stimulus_id", images.names.astype(str)[rows])
        for name, val in (extra_image_coords or {}).items():
            img_coords[name] = ("stimulus_id", np.asarray(val)[rows])
        data_vars["images"] = xr.DataArray(
            images.pixels[rows], dims=("stimulus_id", "y", "x", "channel"), coords=img_coords
        )
    return xr.Dataset(data_vars, attrs=dict(attrs))


def load_dataset(
    source: Any,
    *,
    presentations: str | None = None,
    image_column: str | None = None,
    responses: str = "auto",
    window: Sequence[float] = (0.0, 0.2),
    windows: Mapping[str, Sequence[float]] | None = None,
    bins: int | None = None,
    rate: bool = False,
    latency: float = 0.0,
    images: Any = None,
    image_size: tuple[int, int] | None = None,
    units: Sequence[int] | None = None,
    quality: Mapping[str, Any] | str | None = None,
    keep_blank: bool = False,
    envelope: bool = False,
    envelope_kwargs: Mapping[str, Any] | None = None,
    repeats: str = "keep",
    **open_kwargs: Any,
) -> xr.Dataset:
    """Load responses and stimulus images from an NWB file into one ``xarray.Dataset``.

    Parameters
    ----------
    source : path, pynwb.NWBFile, DANDI address or URL
        Anything :func:`irfa_nwb.open_nwb` accepts (``dandi://<id>[@version]/<path>``, archive
        asset URLs, http(s) URLs, local paths, an open ``NWBFile``).
    presentations : str, optional
        Name or path of the stimulus series or interval table to use; default the best
        candidate (see :func:`irfa_nwb.list_stimulus_tables`).
    image_column : str, optional
        Column of an interval table with the image index / name (default ``image_index``,
        ``frame`` or ``image_name``, whichever exists).
    responses : str
        ``"auto"`` (the units table if it has units, else the only continuous series in
        ``processing``), ``"units"``, or the name / path of a ``TimeSeries`` /
        ``ElectricalSeries`` (e.g. ``"processing/ecephys/MUA"``).
    window : (float, float)
        Response window ``[start, stop)`` in seconds relative to each onset.
    windows : mapping area -> (float, float), optional
        Per-area windows, e.g. ``{"V1": (0, .133), "V4": (.033, .166), "IT": (.066, .199)}``;
        units in other areas use ``window``.
    bins : int, optional
        Split each window into this many time bins (adds the ``time_bin`` dim).
    rate : bool
        For spikes: spikes/s instead of counts.
    latency : float
        Shift added to every onset (s), e.g. for movie frames shown at 30 Hz so that each
        frame's window follows its own onset plus the response latency.
    images : array, DataArray, folder, list of paths, mapping or False, optional
        Images when they are not in the file (DANDI:000021 natural scenes, movie frames), matched
        by index or by name; they take precedence over images in the file. ``False``: load the
        responses only (no ``images`` variable).
    image_size : (int, int), optional
        Resize images to (height, width) (then float32 in [0, 1]).
    units : sequence of int, optional
        Unit ids (``units.id``, or electrode ids for continuous series) to keep.
    quality : dict or "allen", optional
        Unit filters on units-table columns (see :func:`irfa_nwb.data.units.unit_metadata`).
    keep_blank : bool
        Keep blank (``frame == -1``) and omitted presentations.
    envelope : bool
        The chosen series is raw voltage: compute the MUA envelope with spikeinterface first
        (band-pass 500-9000 Hz, rectify, low-pass 200 Hz, 1 kHz; needs ``irfa-nwb[ephys]``).
    envelope_kwargs : mapping, optional
        Passed to :func:`irfa_nwb.data.mua.mua_envelope`.
    repeats : {"keep", "average"}
        Keep every presentation (``repeat`` dim) or average the repeats of each stimulus
        while loading (use this when stimuli are shown very different numbers of times).
    **open_kwargs
        Passed to :func:`irfa_nwb.open_nwb` (``backend``, ``cache_dir``, ``retries``,
        ``api_url``).

    Returns
    -------
    xarray.Dataset
        See the module docstring for variables, coordinates and attributes.

    Raises
    ------
    NWBLayoutError
        The file holds no usable presentations / responses / images; the message lists what
        was found.
    InputError
        Arguments do not match the file (unknown units, image count, window...).
    """
    win = _check_window(window, "window")
    with _open_with_provenance(source, **open_kwargs) as (nwb, prov):
        pres = find_presentations(
            nwb, presentations, image_column=image_column, keep_blank=keep_blank
        )
        if len(pres.start_time) == 0:
            raise NWBLayoutError(f"{pres.source} has no presentations (after dropping blanks)")
        onsets = pres.start_time + float(latency)

        use_units = responses == "units" or (
            responses == "auto" and nwb.units is not None and len(nwb.units) > 0 and not envelope
        )
        attrs: dict[str, Any] = dict(prov)
        attrs["irfa_nwb_version"] = __version__
        if use_units:
            meta = unit_metadata(nwb, units=units, quality=quality)
            starts, stops = _unit_windows(meta["area"].to_numpy().astype(str), win, windows)
            values = spike_counts(nwb, meta["row"].to_numpy(), onsets, starts, stops, bins=bins)
            if rate:
                width = (stops - starts) / (bins or 1)
                values = values / width[None, :, None] if bins else values / width[None, :]
            attrs.update(
                responses_source="units",
                responses_object_id=str(nwb.units.object_id),
                units_object_id=str(nwb.units.object_id),
                value_units="spikes/s" if rate else "spikes",
                responses_kind="spike_rate" if rate else "spike_count",
            )
        else:
            name = None if responses == "auto" else responses
            path, series = find_series(
                nwb, name, where="acquisition" if envelope and name is None else "processing"
            )
            meta = channel_metadata(nwb, series)
            if units is not None:
                meta = _select_ids(meta, units)
            series_obj_id = str(series.object_id)
            if envelope:
                from .mua import mua_envelope

                series = mua_envelope(series, **dict(envelope_kwargs or {}))
            starts, stops = _unit_windows(meta["area"].to_numpy().astype(str), win, windows)
            values = window_means(series, meta["row"].to_numpy(), onsets, starts, stops, bins=bins)
            attrs.update(
                responses_source=path,
                responses_object_id=series_obj_id,
                value_units=str(getattr(series, "unit", "") or "unknown"),
                responses_kind="mua_envelope_mean" if envelope else "window_mean",
            )

        if images is False:
            image_set = None
        elif images is not None:
            image_set = read_images(images, image_size=image_size)
            attrs["images_source"] = image_set.origin
        else:
            image_set = file_images(pres, image_size)
            if image_set is None:
                raise NWBLayoutError(
                    f"the images shown by {pres.source} are not in the file; pass them with "
                    "images=<folder | list of files | array> (matched by index or name), or "
                    "images=False to load the responses only"
                )
            attrs["images_source"] = image_set.origin
        if image_set is not None:
            stim_ids = match_images(pres, image_set, str(attrs.get("images_source", "images")))
        else:
            stim_ids = pres.keys

        attrs.update(
            presentations_source=pres.source,
            presentations_object_id=pres.object_id,
            window=[float(win[0]), float(win[1])],
            latency=float(latency),
            n_dropped_presentations=int(pres.n_dropped),
        )
        if pres.image_column:
            attrs["image_column"] = pres.image_column
        if bins:
            attrs["bins"] = int(bins)
        extra = None
        if windows:
            extra = {
                "window_start": starts.astype(np.float64),
                "window_stop": stops.astype(np.float64),
            }
            attrs["windows"] = [f"{k}: {float(v[0])} {float(v[1])}" for k, v in windows.items()]
        ds = build_dataset(
            values,
            meta,
            stim_ids,
            pres.start_time,
            image_set,
            attrs,
            split=pres.split,
            extra_unit_coords=extra,
            repeats=repeats,
        )
        if bins and not windows:
            edges = win[0] + np.arange(int(bins) + 1) * (win[1] - win[0]) / int(bins)
            ds = ds.assign_coords(
                bin_start=("time_bin", edges[:-1]), bin_stop=("time_bin", edges[1:])
            )
        return ds


def _select_ids(meta: pd.DataFrame, ids: Sequence[int]) -> pd.DataFrame:
    wanted = np.asarray(list(ids), dtype=np.int64)
    by_id = meta.set_index("unit_id", drop=False)
    absent = [int(u) for u in wanted if u not in by_id.index]
    if absent:
        raise InputError(f"channel / electrode ids {absent[:10]} are not in the series")
    return by_id.loc[wanted].reset_index(drop=True)
