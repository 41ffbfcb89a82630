"""Store IRFA results in NWB and read them back as xarray.

:func:`write_results` runs a fitted estimator on a dataset and writes a **new** NWB file (by
default) whose ``analysis`` section holds the reconstructions, the inverse receptive fields,
per-stimulus metrics, the model configuration and training history, and a record of the source
data. :func:`read_results` returns all of it as one :class:`xarray.Dataset`.

This module imports pynwb / hdmf but never torch (computing AlexNet correlations, when asked,
imports torch lazily through :mod:`irfa_nwb.analysis.metrics`).
"""

from .reader import read_results
from .writer import RESULT_NAMES, compute_results, write_results

__all__ = ["RESULT_NAMES", "compute_results", "read_results", "write_results"]
