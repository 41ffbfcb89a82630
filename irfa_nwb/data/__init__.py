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
- :mod:`.tvsd`        THINGS Ventral Stream Spiking Dataset reader and NWB converter
- :mod:`.verify`      read every byte a reader may need and report damage (:func:`verify_nwb`)

Heavy or optional packages (pynwb, h5py, dandi, remfile, spikeinterface) are imported inside
the functions that need them.
"""

from __future__ import annotations

import importlib
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
    "load_tvsd": ".tvsd",
    "convert_tvsd": ".tvsd",
    "TVSD_ARRAY_AREAS_N": ".tvsd",
    "mua_envelope": ".mua",
    "ALLEN_QUALITY": ".units",
    "verify_nwb": ".verify",
    "VerifyReport": ".verify",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'irfa_nwb.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
