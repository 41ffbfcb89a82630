"""Ground-truth "virtual cortex" simulator (see DESIGN.md §7).

V1-, V4- and IT-like units on multi-electrode arrays respond to natural image patches cut from
the photographs bundled with scikit-image; the result comes in the data model of
:func:`irfa_nwb.load_dataset` (:func:`simulate_recording`) or as a best-practice NWB file
(:func:`write_simulated_recording`) that ``load_dataset`` reads back identically. Only numpy,
scipy and scikit-image are used for the simulation; pynwb / hdmf are imported when writing NWB.

- :func:`simulate_recording` -> ``xarray.Dataset`` (``responses``, ``images``, true RF centres as
  unit coords ``rf_x`` / ``rf_y``).
- :func:`write_simulated_recording` / :func:`write_simulation_nwb` -> NWB file.
- :func:`array_rf_centres` -> true RF centre of every array (the mean of its units' centres).
- :func:`make_cortex`, :class:`VirtualCortex` -> the ground-truth model itself (expected counts
  for any image), :func:`natural_patches` -> the stimuli.

Modules: ``images`` (stimuli), ``filters`` (filter bank, energy maps), ``layout`` (arrays, RF
geometry), ``units`` (V1 / V4 / IT unit models), ``noise`` (spike-count variability),
``cortex`` (the model assembled and calibrated), ``core`` (``simulate``), ``nwb`` (NWB files).
"""

from __future__ import annotations

from typing import Any

from .core import (
    SOURCE,
    array_rf_centres,
    simulate,
    simulate_recording,
    simulation_streams,
    stimulus_names,
)
from .cortex import AREAS, DEFAULT_ARRAYS, VirtualCortex, make_cortex, sample_counts
from .images import PHOTOS, natural_patches

__all__ = [
    "AREAS",
    "DEFAULT_ARRAYS",
    "PHOTOS",
    "SOURCE",
    "VirtualCortex",
    "array_rf_centres",
    "make_cortex",
    "natural_patches",
    "sample_counts",
    "simulate",
    "simulate_nwb",
    "simulate_recording",
    "simulation_streams",
    "stimulus_names",
    "write_simulated_recording",
    "write_simulation_nwb",
]

_NWB = ("simulate_nwb", "write_simulated_recording", "write_simulation_nwb")


def __getattr__(name: str) -> Any:
    # the NWB writer needs pynwb: import it only when asked for
    if name in _NWB:
        from . import nwb

        return getattr(nwb, name)
    raise AttributeError(f"module 'irfa_nwb.simulation' has no attribute {name!r}")
