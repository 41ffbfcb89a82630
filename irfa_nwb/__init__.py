"""irfa-nwb: reconstruct natural images from visual-cortex recordings stored in NWB.

The package is organised like the pipeline it implements::

    irfa_nwb.data       NWB / DANDI / TVSD loaders -> xarray (no torch)
    irfa_nwb.estimator  scikit-learn style IRFA estimator (numpy / xarray in and out)
    irfa_nwb.model      pure PyTorch modules and losses (no NWB, no xarray)
    irfa_nwb.analysis   inverse receptive fields, clustering, metrics, figures
    irfa_nwb.results    NWB writer / reader for analysis outputs
    irfa_nwb.simulation ground-truth "virtual cortex" simulator
    irfa_nwb.workflows  end-to-end workflows (demo, fit from NWB)
    irfa_nwb.cli        the ``irfa-nwb`` command line

Heavy dependencies (torch, pynwb, ...) are imported lazily: ``import irfa_nwb`` is cheap and
reading NWB files never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

# public name -> module that defines it (imported on first access)
_LAZY = {
    "IRFA": "irfa_nwb.estimator",
    "load_model": "irfa_nwb.estimator",
    "load_dataset": "irfa_nwb.data",
    "open_nwb": "irfa_nwb.data",
    "verify_nwb": "irfa_nwb.data",
    "list_stimulus_tables": "irfa_nwb.data",
    "average_repeats": "irfa_nwb.data",
    "split_half_reliability": "irfa_nwb.data",
    "select_units": "irfa_nwb.data",
    "zscore_sessions": "irfa_nwb.data",
    "train_test_split": "irfa_nwb.data",
    "to_training_pair": "irfa_nwb.data",
    "load_tvsd": "irfa_nwb.data",
    "convert_tvsd": "irfa_nwb.data",
    "write_results": "irfa_nwb.results",
    "read_results": "irfa_nwb.results",
    "simulate": "irfa_nwb.simulation",
    "simulate_nwb": "irfa_nwb.simulation",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        try:
            value = getattr(module, name)
        except AttributeError as err:  # pragma: no cover - only while a part is unbuilt
            raise AttributeError(
                f"irfa_nwb.{name} is not available in this version of irfa-nwb"
            ) from err
        globals()[name] = value
        return value
    raise AttributeError(f"module 'irfa_nwb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
