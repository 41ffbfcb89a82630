"""irfa-nwb: reconstruct natural images from visual-cortex recordings stored in NWB.

The package is organised like the pipeline it implements::

    irfa_nwb.data        NWB / DANDI / TVSD loaders -> xarray, NWB building (no torch)
    irfa_nwb.model       pure PyTorch modules and losses (no NWB, no xarray)
    irfa_nwb.estimator   IRFA and the ridge baseline (scikit-learn contract; NumPy / xarray)
    irfa_nwb.analysis    evaluate: reconstructions, IRFs, metrics, clustering, figures
    irfa_nwb.results     NWB writer / reader of evaluations (I/O only)
    irfa_nwb.simulation  ground-truth "virtual cortex" simulator
    irfa_nwb.workflows   end-to-end workflows (demo, fit, predict, report)
    irfa_nwb.cli         the ``irfa-nwb`` command line

The top-level names (see ``__init__.pyi``) are imported lazily: ``import irfa_nwb`` is cheap
and reading NWB files never imports torch. Library code logs to ``logging.getLogger(
"irfa_nwb")`` and never prints.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from typing import Any

import lazy_loader as _lazy

from ._version import __version__ as __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())

_getattr, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)

#: deprecated top-level names -> module; the functions warn when called
_DEPRECATED_FUNCTIONS = {
    "train_test_split": "irfa_nwb.data",
    "to_training_pair": "irfa_nwb.data",
    "simulate": "irfa_nwb.simulation",
    "simulate_nwb": "irfa_nwb.simulation",
}
#: dataset-specific names that left the top level (warn on access)
_MOVED = {"load_tvsd": "irfa_nwb.data.tvsd", "convert_tvsd": "irfa_nwb.data.tvsd"}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED_FUNCTIONS:
        return getattr(importlib.import_module(_DEPRECATED_FUNCTIONS[name]), name)
    if name in _MOVED:
        warnings.warn(
            f"irfa_nwb.{name} is deprecated and will be removed from the top level in "
            f"irfa-nwb 0.3; use {_MOVED[name]}.{name}",
            FutureWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    return _getattr(name)
