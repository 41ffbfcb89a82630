"""Responses from sorted units: spike counts (or rates) in windows after presentation onsets.

Spike times are read as the ragged ``spike_times`` column *once* (its index, then the values in a
few large contiguous blocks), never unit by unit: over the network each per-unit read is one HTTP
request. Memory stays bounded by ``max_spikes_per_read`` values plus the returned counts.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, NWBLayoutError
from .tables import colnames, first_of_ragged, read_column, read_ragged, row_ids

__all__ = ["ALLEN_QUALITY", "electrode_metadata", "spike_counts", "unit_metadata"]

#: AllenSDK default unit filters for Visual Coding Neuropixels (DANDI:000021).
ALLEN_QUALITY: dict[str, tuple[str, Any]] = {
    "quality": ("==", "good"),
    "amplitude_cutoff": ("<=", 0.1),
    "presence_ratio": (">=", 0.95),
    "isi_violations": ("<=", 0.5),
}

_OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}


def electrode_metadata(electrodes: Any, rows: np.ndarray | None = None) -> pd.DataFrame:
    """Per-electrode ``electrode_group``, ``area`` and (when present) ``rf_x``, ``rf_y``.

    Parameters
    ----------
    electrodes : DynamicTable
        The NWB electrodes table.
    rows : array of int, optional
        Row positions to return (default all rows). ``-1`` gives a row of unknowns.

    Returns
    -------
    pandas.DataFrame
        Columns ``electrode_id`` (int64), ``electrode_group`` (str), ``area`` (str) and, when the
        table has them, ``rf_x``, ``rf_y`` (float64).
    """
    names = colnames(electrodes)
    n = len(electrodes)
    if "group_name" in names:
        group = read_column(electrodes, "group_name").astype(str)
    elif "group" in names:
        group = read_column(electrodes, "group").astype(str)
    else:
        group = np.full(n, "unknown")
    area = read_column(electrodes, "location").astype(str) if "location" in names else None
    if area is None:
        area = np.full(n, "unknown")
    table = {
        "electrode_id": row_ids(electrodes),
        "electrode_group": group,
        "area": area,
    }
    for rf in ("rf_x", "rf_y"):
        if rf in names:
            table[rf] = read_column(electrodes, rf).astype(np.float64)
    df = pd.DataFrame(table)
    if rows is None:
        return df
    rows = np.asarray(rows, dtype=np.int64)
    missing = rows < 0
    out = df.iloc[np.where(missing, 0, rows)].reset_index(drop=True) if n else None
    if out is None:
        out = pd.DataFrame({"electrode_id": np.full(len(rows), -1)})
    if missing.any():
        out.loc[missing, "electrode_id"] = -1
        out.loc[missing, "electrode_group"] = "unknown"
        out.loc[missing, "area"] = "unknown"
        for rf in ("rf_x", "rf_y"):
            if rf in out:
                out.loc[missing, rf] = np.nan
    return out


def _quality_mask(units: Any, quality: Mapping[str, Any] | str) -> np.ndarray:
    if isinstance(quality, str):
        if quality.lower() != "allen":
            raise InputError(f"quality preset must be 'allen' or a dict, not {quality!r}")
        quality = ALLEN_QUALITY
    names = colnames(units)
    missing = [c for c in quality if c not in names]
    if missing:
        raise NWBLayoutError(
            f"cannot filter units on {missing}: the units table has no such columns "
            f"(it has {list(names)}). Drop these filters or pass quality=None"
        )
    mask = np.ones(len(units), dtype=bool)
    for col, rule in quality.items():
        op, value = rule if isinstance(rule, tuple) else ("==", rule)
        if op not in _OPS:
            raise InputError(
                f"unknown comparison {op!r} for column {col!r}; use one of {list(_OPS)}"
            )
        values = read_column(units, col)
        with np.errstate(invalid="ignore"):
            mask &= np.asarray(_OPS[op](values, value), dtype=bool)
    return mask


def unit_metadata(
    nwbfile: Any,
    *,
    units: Sequence[int] | None = None,
    quality: Mapping[str, Any] | str | None = None,
) -> pd.DataFrame:
    """Metadata of the units to use, one row per unit, in table order.

    The brain area and electrode group of a unit come from, in this order of preference: the
    units table's own ``electrode_group`` / ``location`` columns; its ``electrodes`` column
    (first electrode of each unit); its ``peak_channel_id`` column matched against
    ``electrodes.id`` (Allen Neuropixels files).

    Parameters
    ----------
    nwbfile : pynwb.NWBFile
    units : sequence of int, optional
        Unit ids (values of ``units.id``) to keep, in the order given.
    quality : dict or "allen", optional
        Filters on units-table columns, ``{column: value}`` (equality) or
        ``{column: (op, value)}`` with op in ``== != <= < >= >``; ``"allen"`` is the AllenSDK
        default (quality good, amplitude_cutoff <= 0.1, presence_ratio >= 0.95,
        isi_violations <= 0.5).

    Returns
    -------
    pandas.DataFrame
        Columns ``row`` (position in the units table), ``unit_id``, ``electrode_group``,
        ``area`` and ``rf_x``, ``rf_y`` when the electrodes carry them.
    """
    table = nwbfile.units
    if table is None or len(table) == 0:
        raise NWBLayoutError(
            f"NWB file {nwbfile.identifier!r} has no units table (or it is empty); use "
            "responses=<name of a continuous series> to read MUA / LFP instead"
        )
    names = colnames(table)
    if "spike_times" not in names:
        raise NWBLayoutError(f"the units table has no spike_times column (it has {list(names)})")
    ids = row_ids(table)
    electrodes = nwbfile.electrodes
    if "electrodes" in names and electrodes is not None:
        meta = electrode_metadata(electrodes, first_of_ragged(table, "electrodes"))
    elif "peak_channel_id" in names and electrodes is not None:
        peak = read_column(table, "peak_channel_id").astype(np.int64)
        elec_ids = row_ids(electrodes)
        order = np.argsort(elec_ids)
        pos = np.searchsorted(elec_ids[order], peak)
        pos = np.clip(pos, 0, len(order) - 1)
        found = elec_ids[order][pos] == peak
        rows = np.where(found, order[pos], -1)
        if not found.all():
            warnings.warn(
                f"{int((~found).sum())} units have a peak_channel_id not in electrodes.id; "
                "their area is 'unknown'",
                stacklevel=3,
            )
        meta = electrode_metadata(electrodes, rows)
    else:
        meta = pd.DataFrame(
            {"electrode_group": np.full(len(ids), "unknown"), "area": np.full(len(ids), "unknown")}
        )
    # the units table's own columns win where present
    if "electrode_group" in names:
        meta["electrode_group"] = read_column(table, "electrode_group").astype(str)
    if "location" in names:
        meta["area"] = read_column(table, "location").astype(str)
    if (meta["electrode_group"] == "unknown").all():
        warnings.warn(
            "the units table links to no electrodes (no electrodes / peak_channel_id / "
            "electrode_group column): all units get electrode_group 'unknown' and area 'unknown'",
            stacklevel=3,
        )
    meta = meta.drop(columns=["electrode_id"], errors="ignore")
    meta.insert(0, "unit_id", ids)
    meta.insert(0, "row", np.arange(len(ids)))
    if quality is not None:
        meta = meta[_quality_mask(table, quality)]
        if len(meta) == 0:
            raise InputError(f"no unit passes the quality filters {quality!r}")
    if units is not None:
        wanted = np.asarray(list(units), dtype=np.int64)
        by_id = meta.set_index("unit_id", drop=False)
        absent = [int(u) for u in wanted if u not in by_id.index]
        if absent:
            raise InputError(
                f"unit ids {absent[:10]} are not in the units table"
                + (" (or were removed by the quality filters)" if quality is not None else "")
            )
        meta = by_id.loc[wanted].reset_index(drop=True)
    return meta.reset_index(drop=True)


def _blocks(starts: np.ndarray, ends: np.ndarray, limit: int) -> list[np.ndarray]:
    """Group positions (sorted by start) into runs whose spikes span at most ``limit`` values."""
    order = np.argsort(starts, kind="stable")
    blocks: list[list[int]] = []
    current: list[int] = []
    lo = hi = 0
    for i in order:
        s, e = int(starts[i]), int(ends[i])
        if current and max(hi, e) - lo > limit:
            blocks.append(current)
            current = []
        if not current:
            lo, hi = s, e
        current.append(int(i))
        hi = max(hi, e)
    if current:
        blocks.append(current)
    return [np.asarray(b) for b in blocks]


def spike_counts(
    nwbfile: Any,
    rows: np.ndarray,
    onsets: np.ndarray,
    starts: np.ndarray,
    stops: np.ndarray,
    *,
    bins: int | None = None,
    max_spikes_per_read: int = 20_000_000,
) -> np.ndarray:
    """Count spikes of units in windows ``[onset + start, onset + stop)``.

    Parameters
    ----------
    nwbfile : pynwb.NWBFile
    rows : array of int, shape (n_units,)
        Positions of the units in the units table.
    onsets : array of float, shape (n_presentations,)
        Presentation onsets (s).
    starts, stops : array of float, shape (n_units,)
        Window of each unit relative to onset (s), e.g. from per-area windows.
    bins : int, optional
        Split every window into this many equal time bins.
    max_spikes_per_read : int
        Largest number of spike times held in memory at once.

    Returns
    -------
    numpy.ndarray
        float32, shape (n_presentations, n_units) or (n_presentations, n_units, bins).
    """
    table = nwbfile.units
    data, ends = read_ragged(table, "spike_times")
    rows = np.asarray(rows, dtype=np.int64)
    onsets = np.asarray(onsets, dtype=np.float64)
    n_bins = 1 if bins is None else int(bins)
    if n_bins < 1:
        raise InputError(f"bins must be a positive integer, not {bins!r}")
    all_starts = np.concatenate([[0], ends[:-1]])
    u_start, u_end = all_starts[rows], ends[rows]
    out = np.zeros((len(onsets), len(rows), n_bins), dtype=np.float32)
    frac = np.linspace(0.0, 1.0, n_bins + 1)
    for block in _blocks(u_start, u_end, max_spikes_per_read):
        lo, hi = int(u_start[block].min()), int(u_end[block].max())
        values = np.asarray(data[lo:hi], dtype=np.float64) if hi > lo else np.empty(0)
        for j in block:
            spikes = values[u_start[j] - lo : u_end[j] - lo]
            if spikes.size > 1 and np.any(np.diff(spikes) < 0):
                spikes = np.sort(spikes)
            edges = onsets[:, None] + starts[j] + frac[None, :] * (stops[j] - starts[j])
            idx = np.searchsorted(spikes, edges, side="left")
            out[:, j, :] = np.diff(idx, axis=1)
    return out if bins is not None else out[:, :, 0]
