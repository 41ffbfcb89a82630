"""TVSD's recording layout: arrays and areas, channel order, file structure, time windows.

Sources (read 2025; see ``docs/user_guide.md``, section TVSD):

- the dataset's README (G-Node GIN, ``paolo_papale/TVSD``): ``THINGS_MUA_trials.mat`` holds
  ``ALLMUA`` ``[electrode x trial x time]``, ``ALLMAT`` (one row per trial) and ``tb`` (ms
  from stimulus onset); the channel order of ``ALLMUA`` follows the headstages, not the arrays;
- the authors' ``_code/norm_MUA.m``: ``ALLMAT`` columns ``[#trial #train_pic #test_pic #pic_rep
  #ncount #day]`` (the README lists a ``#correct`` column before ``#day`` as well: both are
  accepted), the area of every physical channel for both monkeys, and the remapping
  ``normMUA = normMUA(mapping, :)`` with ``mapping`` from ``_logs/1024chns_mapping_20220105.mat``;
- the IRFA / MonkeySee authors' preprocessing (``neuralcodinglab/MonkeySee``,
  ``SpatialBased/data_prep_spatial.py``): windows 0-133, 33-166 and 66-199 ms after onset for
  V1, V4 and IT (``data[..., 100 + start : 100 + stop]`` with onset at sample 100, i.e.
  ``start <= t < stop``), electrodes kept when ``reliab`` averaged over repeat pairs exceeds 0.4
  and their receptive-field centre (``all_centrex`` / ``all_centrey`` of ``THINGS_RFs.mat``) is
  known.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError, NWBLayoutError
from . import _matlab

__all__ = [
    "ALLMAT_COLUMNS",
    "CHANNELS_PER_ARRAY",
    "IRFA_WINDOWS",
    "MAPPING_PATTERN",
    "MONKEY_F_ARRAY_AREAS",
    "MONKEY_N_ARRAY_AREAS",
    "RF_VARIABLES",
    "array_areas",
    "find_channel_mapping",
    "read_channel_mapping",
    "read_rf_centres",
]

#: Electrodes per Utah array (8 x 8).
CHANNELS_PER_ARRAY = 64

#: Array (1-based, physical order) -> area for monkey N as the IRFA paper uses it: V1 arrays
#: 1-5 and 7-8, V4 arrays 9-12, IT arrays 13-16 (channels 1-512 V1, 513-768 V4, 769-1024 IT
#: in ``norm_MUA.m``); array 6 is left out (no receptive-field centres; 15 IRFA heads).
MONKEY_N_ARRAY_AREAS: dict[int, str | None] = {
    **{a: "V1" for a in (1, 2, 3, 4, 5, 7, 8)},
    6: None,
    **{a: "V4" for a in (9, 10, 11, 12)},
    **{a: "IT" for a in (13, 14, 15, 16)},
}

#: Array (1-based, physical order) -> area for monkey F from ``norm_MUA.m`` (channels 1-512
#: V1, 513-832 IT, 833-1024 V4): V1 arrays 1-8, IT arrays 9-13, V4 arrays 14-16. Which arrays
#: the IRFA authors would leave out for monkey F is not published: none is left out here.
MONKEY_F_ARRAY_AREAS: dict[int, str | None] = {
    **{a: "V1" for a in range(1, 9)},
    **{a: "IT" for a in range(9, 14)},
    **{a: "V4" for a in range(14, 17)},
}

#: Per-area response windows of the IRFA paper, in seconds after stimulus onset, each
#: ``[start, stop)``: 133 ms, later in higher areas.
IRFA_WINDOWS: dict[str, tuple[float, float]] = {
    "V1": (0.0, 0.133),
    "V4": (0.033, 0.166),
    "IT": (0.066, 0.199),
}

#: Columns of ``ALLMAT`` (0-based positions) in its two published forms: 6 columns in
#: ``norm_MUA.m`` and the MonkeySee code, 7 (with ``correct``) in the dataset's README. ``day``
#: is the last column in both.
ALLMAT_COLUMNS: dict[int, tuple[str, ...]] = {
    6: ("trial_idx", "train_idx", "test_idx", "rep", "count", "day"),
    7: ("trial_idx", "train_idx", "test_idx", "rep", "count", "correct", "day"),
}

#: File name pattern of the authors' channel mapping, looked for in ``_logs/`` next to the
#: trials file and in its own folder (``1024chns_mapping_20220105.mat`` in the authors' code).
MAPPING_PATTERN = "*1024chns_mapping*.mat"
#: Variable holding the mapping (1-based; ``physical = recorded(mapping)``).
MAPPING_VARIABLE = "mapping"
#: Variables of the receptive-field file (``THINGS_RFs.mat`` in the MonkeySee code): centre x,
#: centre y per electrode in physical order, NaN where no receptive field was mapped.
RF_VARIABLES = ("all_centrex", "all_centrey")


def array_areas(
    n_electrodes: int,
    channels_per_array: int,
    mapping: Mapping[int, str | None] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Array number (1-based) and area (``""`` for arrays mapped to ``None``) per electrode.

    Parameters
    ----------
    n_electrodes : int
        Electrodes in physical (array) order.
    channels_per_array : int
    mapping : mapping int -> str or None, optional
        Default :data:`MONKEY_N_ARRAY_AREAS`.
    """
    if channels_per_array < 1 or n_electrodes % channels_per_array:
        raise InputError(
            f"{n_electrodes} electrodes are not a whole number of arrays of {channels_per_array}"
        )
    table = dict(MONKEY_N_ARRAY_AREAS if mapping is None else mapping)
    arrays = np.arange(n_electrodes) // channels_per_array + 1
    missing = sorted(set(arrays.tolist()) - set(table))
    if missing:
        raise InputError(
            f"array_areas gives no area for arrays {missing}; map every array (1-based) to an "
            "area name, or to None to leave it out"
        )
    areas = np.array([table[a] or "" for a in arrays.tolist()])
    return arrays, areas


def describe_areas(mapping: Mapping[int, str | None] | None) -> list[str]:
    """``["1: V1", "2: V1", ...]`` for provenance attributes."""
    table = MONKEY_N_ARRAY_AREAS if mapping is None else mapping
    return [f"{a}: {v}" for a, v in sorted(table.items())]


def find_channel_mapping(trials_file: str | os.PathLike) -> Path | None:
    """The authors' channel mapping file next to a trials file, if there is exactly one.

    Looks in ``<folder>/_logs/`` and ``<folder>/`` for :data:`MAPPING_PATTERN` (the GIN layout
    is ``monkeyN/THINGS_MUA_trials.mat`` with ``monkeyN/_logs/``).

    Raises
    ------
    InputError
        Several candidates (pass the one to use).
    """
    folder = Path(trials_file).parent
    found = sorted(
        {p for d in (folder / "_logs", folder) if d.is_dir() for p in d.glob(MAPPING_PATTERN)}
    )
    if len(found) > 1:
        raise InputError(
            f"several channel mapping files next to {Path(trials_file).name}: "
            f"{[str(p) for p in found]}; pass the one to use as channel_mapping="
        )
    return found[0] if found else None


def read_channel_mapping(source: Any, n_electrodes: int) -> tuple[np.ndarray, str]:
    """The channel permutation from recording order to physical (array) order.

    Parameters
    ----------
    source : path-like or sequence of int
        A ``.mat`` file (any version) with the variable ``mapping`` as the TVSD authors
        distribute it (1-based: physical channel ``i`` is recorded channel ``mapping(i)``), or
        that permutation directly as **0-based** integers.
    n_electrodes : int

    Returns
    -------
    order : int64 array
        0-based, ``physical = recorded[:, order]`` (``order[i]`` is the recorded channel of
        physical channel ``i``).
    description : str
        Where it came from, for provenance.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        raw = _matlab.read_variable(path, MAPPING_VARIABLE)
        order = np.asarray(raw, dtype=np.float64).ravel()
        if not np.all(order == np.round(order)):
            raise NWBLayoutError(f"{path.name}: {MAPPING_VARIABLE!r} is not a list of channels")
        order = order.astype(np.int64) - 1
        description = f"{path.resolve()} (variable {MAPPING_VARIABLE!r}, 1-based)"
    else:
        order = np.asarray(list(source) if not isinstance(source, np.ndarray) else source)
        if order.dtype.kind not in "iu":
            raise InputError("channel_mapping given as numbers must be integers (0-based)")
        order = order.astype(np.int64).ravel()
        description = "channel_mapping given as an array (0-based)"
    if order.size != n_electrodes or sorted(order.tolist()) != list(range(n_electrodes)):
        raise InputError(
            f"the channel mapping ({description}) is not a permutation of the file's "
            f"{n_electrodes} channels (it has {order.size} entries, range "
            f"{order.min() if order.size else None}..{order.max() if order.size else None}, "
            "0-based)"
        )
    return order, description


def read_rf_centres(
    source: Any, n_electrodes: int, variables: Sequence[str] = RF_VARIABLES
) -> tuple[np.ndarray, np.ndarray, str]:
    """Receptive-field centres per electrode (physical order), NaN where unknown.

    Parameters
    ----------
    source : path-like or (x, y)
        A ``.mat`` file (any version) with the variables ``variables`` (default ``all_centrex``,
        ``all_centrey``), or the two arrays directly.
    n_electrodes : int
    variables : (str, str)

    Returns
    -------
    (rf_x, rf_y, description)
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        x = _matlab.read_variable(path, variables[0])
        y = _matlab.read_variable(path, variables[1])
        description = f"{path.resolve()} (variables {variables[0]!r}, {variables[1]!r})"
    else:
        try:
            x, y = source
        except (TypeError, ValueError) as err:
            raise InputError("rf_file must be a .mat file or a pair (rf_x, rf_y)") from err
        description = "rf centres given as arrays"
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size != n_electrodes or y.size != n_electrodes:
        raise InputError(
            f"receptive-field centres ({description}) have {x.size} x and {y.size} y values "
            f"for {n_electrodes} electrodes"
        )
    return x, y, description
