"""THINGS Ventral Stream Spiking Dataset (TVSD, Papale et al. 2025): readers and NWB converter.

TVSD lives on G-Node GIN (``paolo_papale/TVSD``, not DANDI) as MATLAB v7.3 files per monkey.
Modules, one job each:

- :mod:`.layout`    arrays -> areas (:data:`MONKEY_N_ARRAY_AREAS`, :data:`MONKEY_F_ARRAY_AREAS`),
  the channel mapping to array order, receptive-field centres, file structure, the IRFA
  windows (:data:`IRFA_WINDOWS`)
- :mod:`.normmua`   :func:`load_tvsd`: the authors' normalised MUA, ``THINGS_normMUA.mat``
- :mod:`.trials`    :func:`load_tvsd_trials`: ``THINGS_MUA_trials.mat`` with the IRFA paper's
  preprocessing (windows, z-scoring per day, repeat averaging, electrode selection), streamed
- :mod:`.stimuli`   :func:`read_things_paths` and the THINGS images
- :mod:`.convert`   :func:`convert_tvsd`: normMUA + images -> best-practice NWB

h5py, scipy and pynwb are imported inside the functions that need them.
"""

from __future__ import annotations

import warnings
from typing import Any

from .convert import convert_tvsd
from .layout import (
    CHANNELS_PER_ARRAY,
    IRFA_WINDOWS,
    MONKEY_F_ARRAY_AREAS,
    MONKEY_N_ARRAY_AREAS,
    read_channel_mapping,
)
from .normmua import load_tvsd
from .stimuli import read_things_paths
from .trials import load_tvsd_trials, repeat_reliability

__all__ = [
    "CHANNELS_PER_ARRAY",
    "IRFA_WINDOWS",
    "MONKEY_F_ARRAY_AREAS",
    "MONKEY_N_ARRAY_AREAS",
    "convert_tvsd",
    "load_tvsd",
    "load_tvsd_trials",
    "read_channel_mapping",
    "read_things_paths",
    "repeat_reliability",
]

#: names kept for one release, with a FutureWarning on access
_DEPRECATED = {"TVSD_ARRAY_AREAS_N": "MONKEY_N_ARRAY_AREAS"}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(
            f"irfa_nwb.data.tvsd.{name} is deprecated and will be removed in irfa-nwb 0.3; "
            f"use irfa_nwb.data.tvsd.{new}",
            FutureWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module 'irfa_nwb.data.tvsd' has no attribute {name!r}")
