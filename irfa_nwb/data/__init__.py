"""irfa_nwb.data: NWB / DANDI / TVSD loaders into labelled xarray objects (no torch).

Modules, one job each:

- :mod:`.sources`     open local / streamed / DANDI files (:func:`open_nwb`)
- :mod:`.stimuli`     find presentations (IndexSeries, image series, interval tables)
- :mod:`.images`      read images (NWB containers, arrays, folders, files)
- :mod:`.units`       spike counts / rates from the units table, unit metadata
- :mod:`.continuous`  window means of continuous series (processed MUA)
- :mod:`.mua`         MUA envelope from raw voltage (spikeinterface, optional)
- :mod:`.loader`      :func:`load_dataset`, the one call from a file to a Dataset
- :mod:`.repeats`     repeats, reliability, unit selection, z-scoring, stimulus splits
- :mod:`.tvsd`        THINGS Ventral Stream Spiking Dataset: readers of the normalised MUA and of
  the trials (the IRFA preprocessing), NWB converter (dataset-specific: import its names from
  ``irfa_nwb.data.tvsd``)
- :mod:`.verify`      read every byte a reader may need and report damage (:func:`verify_nwb`)

Heavy or optional packages (pynwb, h5py, dandi, remfile, spikeinterface) are imported inside
the functions that need them.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_EXPORTS = {
    "open_nwb": ".sources",
    "parse_dandi_address": ".sources",
    "resolve_dandi_url": ".sources",
    "list_stimulus_tables": ".stimuli",
    "load_dataset": ".loader",
    "build_dataset": ".loader",
    "ImageSet": ".images",
    "read_images": ".images",
    "average_repeats": ".repeats",
    "stack_presentations": ".repeats",
    "split_half_reliability": ".repeats",
    "select_units": ".repeats",
    "zscore_sessions": ".repeats",
    "split_stimuli": ".repeats",
    "train_test_split": ".repeats",
    "to_training_pair": ".repeats",
    "mua_envelope": ".mua",
    "ALLEN_QUALITY": ".units",
    "verify_nwb": ".verify",
    "VerifyReport": ".verify",
}

#: dataset-specific names that moved to a subpackage: old name -> (module, new name); they
#: still work for one release, with a FutureWarning
_MOVED = {
    "load_tvsd": (".tvsd", "load_tvsd"),
    "convert_tvsd": (".tvsd", "convert_tvsd"),
    "TVSD_ARRAY_AREAS_N": (".tvsd", "MONKEY_N_ARRAY_AREAS"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        module, new = _MOVED[name]
        warnings.warn(
            f"irfa_nwb.data.{name} is deprecated and will be removed in irfa-nwb 0.3; use "
            f"irfa_nwb.data{module}.{new}",
            FutureWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(module, __name__), new)
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'irfa_nwb.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
