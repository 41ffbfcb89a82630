"""Store IRFA results in NWB and read them back as xarray: I/O only.

:func:`write_results` writes the Dataset of :func:`irfa_nwb.evaluate` into a **new** NWB file
(by default) whose ``analysis`` section holds the reconstructions (named by stimulus id), the
inverse receptive fields, per-stimulus metrics, the model configuration, training history and
a record of the source data and the model file. :func:`read_results` returns the same Dataset.
Nothing here predicts or computes metrics (see :mod:`irfa_nwb.analysis`).
"""

from .reader import read_results
from .writer import results_containers, write_results

__all__ = ["read_results", "results_containers", "write_results"]
