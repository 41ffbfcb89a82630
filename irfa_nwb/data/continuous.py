"""Responses from continuous signals (processed MUA, LFP power...): mean over a window.

A series is a ``TimeSeries`` / ``ElectricalSeries`` with data (time, channel) in ``processing``
or ``acquisition``. The window mean of every channel after every onset is computed from blocks
of rows read in one go (at most ``max_values_per_read`` values at a time), with cumulative sums.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, NWBLayoutError
from .units import electrode_metadata

__all__ = ["channel_metadata", "find_series", "list_series", "window_means"]


def list_series(nwbfile: Any) -> list[tuple[str, Any]]:
    """All ``TimeSeries`` in ``processing`` and ``acquisition`` as ``(path, series)``.

    Image series are left out. Paths look like ``processing/ecephys/MUA`` or
    ``acquisition/ElectricalSeries`` (containers such as ``LFP`` are looked into).
    """
    from pynwb.base import TimeSeries
    from pynwb.image import ImageSeries

    found: list[tuple[str, Any]] = []

    def visit(prefix: str, obj: Any) -> None:
        if isinstance(obj, ImageSeries):
            return
        if isinstance(obj, TimeSeries):
            found.append((f"{prefix}/{obj.name}", obj))
            return
        # MultiContainerInterface (LFP, FilteredEphys...) holds series in a dict-like attribute
        for attr in ("electrical_series", "time_series", "data_interfaces"):
            inner = getattr(obj, attr, None)
            if isinstance(inner, dict) or hasattr(inner, "values"):
                for child in inner.values():
                    visit(f"{prefix}/{obj.name}", child)
                return

    for module in nwbfile.processing.values():
        for obj in module.data_interfaces.values():
            visit(f"processing/{module.name}", obj)
    for obj in nwbfile.acquisition.values():
        visit("acquisition", obj)
    return found


def find_series(
    nwbfile: Any, name: str | None = None, *, where: str = "processing"
) -> tuple[str, Any]:
    """Find one continuous series by name or path; with ``name=None``, the only one in ``where``.

    Raises
    ------
    NWBLayoutError
        When nothing matches or the choice is ambiguous; the message lists the candidates.
    """
    found = list_series(nwbfile)
    listing = ", ".join(f"{p} ({type(s).__name__}, shape {tuple(s.data.shape)})" for p, s in found)
    if name is not None:
        hits = [(p, s) for p, s in found if p == name or s.name == name or p.endswith("/" + name)]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise NWBLayoutError(
                f"no time series named {name!r} in processing/ or acquisition/; found: "
                f"{listing or 'none'}"
            )
        raise NWBLayoutError(
            f"several series match {name!r}: {[p for p, _ in hits]}; pass the full path"
        )
    hits = [(p, s) for p, s in found if p.startswith(where + "/")]
    if len(hits) > 1:  # several series: an ElectricalSeries, if only one, is the natural choice
        from pynwb.ecephys import ElectricalSeries

        electrical = [(p, s) for p, s in hits if isinstance(s, ElectricalSeries)]
        if len(electrical) == 1:
            return electrical[0]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise NWBLayoutError(
            f"no units table and no continuous series in {where}/ to take responses from; found: "
            f"{listing or 'no time series at all'}. For raw voltage in acquisition/ use "
            "responses=<its name> with envelope=True"
        )
    raise NWBLayoutError(
        f"several continuous series in {where}/ could hold responses: {[p for p, _ in hits]}; "
        "pass responses=<path> to choose one"
    )


def channel_metadata(nwbfile: Any, series: Any) -> pd.DataFrame:
    """One row per channel of ``series``: ``unit_id``, ``electrode_group``, ``area``, rf columns.

    ``unit_id`` is the electrode id for ``ElectricalSeries`` (from its ``electrodes`` region),
    else the channel index; channels of a plain ``TimeSeries`` get the series name as
    electrode group and area ``"unknown"``.
    """
    n_channels = 1 if len(series.data.shape) == 1 else int(series.data.shape[1])
    region = getattr(series, "electrodes", None)
    if region is not None:
        rows = np.asarray(region.data[:], dtype=np.int64)
        if len(rows) != n_channels:
            raise NWBLayoutError(
                f"series {series.name!r} has {n_channels} channels but its electrodes region "
                f"lists {len(rows)} electrodes"
            )
        meta = electrode_metadata(region.table, rows)
        meta = meta.rename(columns={"electrode_id": "unit_id"})
    else:
        meta = pd.DataFrame(
            {
                "unit_id": np.arange(n_channels, dtype=np.int64),
                "electrode_group": np.full(n_channels, series.name),
                "area": np.full(n_channels, "unknown"),
            }
        )
    meta.insert(0, "row", np.arange(n_channels))
    return meta


def _sample_index(series: Any, times: np.ndarray) -> np.ndarray:
    """Index of the first sample at or after each time."""
    if series.timestamps is not None:
        ts = np.asarray(series.timestamps[:], dtype=np.float64)
        return np.searchsorted(ts, times, side="left")
    rate = float(series.rate)
    t0 = float(series.starting_time or 0.0)
    return np.ceil((times - t0) * rate - 1e-9).astype(np.int64)


def window_means(
    series: Any,
    channels: np.ndarray,
    onsets: np.ndarray,
    starts: np.ndarray,
    stops: np.ndarray,
    *,
    bins: int | None = None,
    max_values_per_read: int = 20_000_000,
) -> np.ndarray:
    """Mean of each channel over ``[onset + start, onset + stop)`` for every onset.

    Parameters
    ----------
    series : pynwb TimeSeries
        Data (time,) or (time, channel); ``conversion`` and ``offset`` are applied.
    channels : array of int, shape (n_units,)
        Channel (column) positions to use.
    onsets : array of float, shape (n_presentations,)
    starts, stops : array of float, shape (n_units,)
        Window per channel relative to onset (s).
    bins : int, optional
        Split each window into this many equal bins.
    max_values_per_read : int
        Largest number of values (samples x channels of the series) read at once; a single
        window longer than that is still read whole.

    Returns
    -------
    numpy.ndarray
        float32, (n_presentations, n_units) or (n_presentations, n_units, bins). Windows with no
        sample (outside the recording or shorter than a sample) are NaN, with a warning.
    """
    data = series.data
    n_time = int(data.shape[0])
    one_d = len(data.shape) == 1
    channels = np.asarray(channels, dtype=np.int64)
    onsets = np.asarray(onsets, dtype=np.float64)
    n_bins = 1 if bins is None else int(bins)
    if n_bins < 1:
        raise InputError(f"bins must be a positive integer, not {bins!r}")
    conversion = float(getattr(series, "conversion", 1.0) or 1.0)
    offset = float(getattr(series, "offset", 0.0) or 0.0)
    out = np.full((len(onsets), len(channels), n_bins), np.nan, dtype=np.float32)
    frac = np.linspace(0.0, 1.0, n_bins + 1)
    pairs = pd.DataFrame({"a": starts, "b": stops}).drop_duplicates()
    # sample edges for every (window, presentation, bin edge)
    edge_sets = []
    for a, b in pairs.itertuples(index=False):
        edges = onsets[:, None] + a + frac[None, :] * (b - a)
        idx = np.clip(_sample_index(series, edges.ravel()).reshape(edges.shape), 0, n_time)
        cols = np.flatnonzero((starts == a) & (stops == b))
        edge_sets.append((idx, cols))
    lo_all = np.min([e[:, 0] for e, _ in edge_sets], axis=0)
    hi_all = np.max([e[:, -1] for e, _ in edge_sets], axis=0)
    order = np.argsort(lo_all, kind="stable")
    width = 1 if one_d else int(data.shape[1])
    max_rows = max(1, int(max_values_per_read) // width)
    i = 0
    empty = 0
    while i < len(order):
        lo = int(lo_all[order[i]])
        hi = int(hi_all[order[i]])
        j = i + 1
        while j < len(order) and max(hi, int(hi_all[order[j]])) - lo <= max_rows:
            hi = max(hi, int(hi_all[order[j]]))
            j += 1
        members = order[i:j]
        block = np.asarray(data[lo:hi], dtype=np.float64)
        block = block[:, None] if one_d else block[:, channels]
        csum = np.concatenate([np.zeros((1, block.shape[1])), np.cumsum(block, axis=0)])
        for idx, cols in edge_sets:
            e = idx[members] - lo  # (m, n_bins + 1)
            length = np.diff(e, axis=1)  # (m, n_bins)
            sums = csum[e[:, 1:]][:, :, cols] - csum[e[:, :-1]][:, :, cols]  # (m, bins, c)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = sums / length[:, :, None]
            means[length == 0] = np.nan
            empty += int((length == 0).sum()) * len(cols)
            out[np.ix_(members, cols, np.arange(n_bins))] = np.transpose(means, (0, 2, 1))
        i = j
    if empty:
        warnings.warn(
            f"{empty} windows of series {series.name!r} hold no sample (outside the recording or "
            "shorter than one sample); they are NaN",
            stacklevel=3,
        )
    out = out * conversion + offset
    return out if bins is not None else out[:, :, 0]
