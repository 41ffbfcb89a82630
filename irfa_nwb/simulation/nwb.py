"""Write a simulated data set as a best-practice NWB file (the generic layout of DESIGN §4).

Layout
------
- ``stimulus_template/natural_image_patches``: ``Images`` with one ``RGBImage`` per stimulus
  (named ``stimulus_00000``...), in stimulus-id order (``order_of_images``).
- ``stimulus/natural_image_presentations``: ``IndexSeries`` into those images, one entry per
  presentation, ``starting_time`` + ``rate`` (onsets are regular).
- ``intervals/presentations``: ``TimeIntervals`` with ``start_time``, ``stop_time`` (onset +
  window), ``image_index``, ``image_name`` and ``split`` (``"train"`` / ``"test"``).
- ``electrodes``: one row per unit (id = ``unit_id``), ``location`` = area, ``group`` = the
  array's ``ElectrodeGroup`` (named like the array), extra columns
  ``rf_x``, ``rf_y`` (true RF centre, image fractions, x from the left, y from the top).
- responses, either
  ``"spikes"``: ``units`` (id = ``unit_id``, ``electrodes`` -> its electrode row,
  ``electrode_group``) whose spikes in ``[onset, onset + window)`` number exactly the
  simulated count (spike times uniform in the window, i.e. a Poisson process given the count);
  or ``"mua"``: ``processing/ecephys/MUA``, an ``ElectricalSeries`` over all electrodes
  sampled at ``mua_rate`` whose value from each onset to the next equals the simulated
  response, so a window mean gives it back.
- ``subject``, session and provenance metadata so that nwbinspector reports nothing.
"""

from __future__ import annotations

import os
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._version import __version__
from ..data import stack_presentations
from ..data.nwbfile import add_electrodes, images_container, new_nwbfile, write_nwbfile
from ..errors import InputError
from ..outputs import check_output_path
from .core import FIRST_ONSET, SOURCE, onset_rate, simulate_recording, simulation_streams

__all__ = ["simulate_nwb", "write_simulated_recording", "write_simulation_nwb"]

SESSION_START = datetime(2025, 1, 1, 9, 0, 0, tzinfo=timezone.utc)
IMAGES_NAME = "natural_image_patches"
SERIES_NAME = "natural_image_presentations"
TABLE_NAME = "presentations"
IRFA_DOI = "https://doi.org/10.48550/arXiv.2501.03051"
#: Sampling rate (Hz) of the virtual recording system; spike times lie on its grid.
SPIKE_RATE = 30000.0


def _spike_times(
    counts: np.ndarray, onsets: np.ndarray, window: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Sorted spike times per unit with ``counts[p, u]`` spikes in ``[onsets[p], + window)``.

    Spike times are uniform in the window (a Poisson process given its count) on the sample
    grid of a :data:`SPIKE_RATE` recording system (the ``units`` table's ``resolution``).
    """
    counts = np.asarray(counts)
    if counts.size and (np.any(counts < 0) or np.any(counts != np.round(counts))):
        raise InputError(
            'responses="spikes" needs integer spike counts (simulate with noise="poisson"); '
            'use responses="mua" for non-integer responses'
        )
    counts = counts.astype(np.int64)
    n_slots = int(np.floor(window * SPIKE_RATE + 1e-6))  # sample k at k / SPIKE_RATE < window
    out = []
    for u in range(counts.shape[1]):
        c = counts[:, u]
        k = rng.integers(0, n_slots, size=int(c.sum()))
        out.append(np.sort(np.repeat(onsets, c) + k / SPIKE_RATE))
    return out


def _mua_samples(
    values: np.ndarray, onsets: np.ndarray, isi: float, rate: float
) -> tuple[np.ndarray, float]:
    """Piecewise-constant signal ``(n_samples, n_channels)``: each response held until the next
    onset (zero before the first); sample ``k`` at ``k / rate`` s."""
    if isi * rate < 2:
        raise InputError(f"mua_rate must give at least 2 samples per presentation ({isi} s)")
    # first sample at or after each onset, as readers compute it
    idx = np.ceil(onsets * rate - 1e-9).astype(np.int64)
    last = int(np.ceil((onsets[-1] + isi) * rate - 1e-9))
    end = last + int(np.ceil(rate))  # 1 s of silence after the last presentation
    stops = np.append(idx[1:], last)
    data = np.zeros((end, values.shape[1]), dtype=np.float32)
    owner = np.full(end, -1, dtype=np.int64)
    for p, (a, b) in enumerate(zip(idx, stops, strict=True)):
        owner[a:b] = p
    held = owner >= 0
    data[held] = values[owner[held]]
    return data, 0.0


def write_simulation_nwb(
    dataset: xr.Dataset,
    path: str | os.PathLike,
    *,
    responses: str = "spikes",
    mua_rate: float = 100.0,
    overwrite: bool = False,
) -> Path:
    """Write a Dataset from :func:`~irfa_nwb.simulation.simulate_recording` to an NWB file.

    The file is written to a temporary file in the same folder, then moved into place.

    Parameters
    ----------
    dataset : xarray.Dataset
        Output of :func:`~irfa_nwb.simulation.simulate_recording`.
    path : str or os.PathLike
        Destination ``.nwb`` file.
    responses : {"spikes", "mua"}, default "spikes"
        Store the responses as spike times in ``units`` or as a processed MUA
        ``ElectricalSeries`` in ``processing/ecephys`` (see the module docstring).
    mua_rate : float, default 100.0
        Sampling rate (Hz) of the MUA series.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from hdmf.backends.hdf5 import H5DataIO
    from hdmf.common import DynamicTableRegion, VectorData, VectorIndex
    from pynwb.ecephys import ElectricalSeries
    from pynwb.epoch import TimeIntervals
    from pynwb.image import IndexSeries
    from pynwb.misc import Units

    if responses not in ("spikes", "mua"):
        raise InputError(f'responses must be "spikes" or "mua", got {responses!r}')
    if dataset.attrs.get("source") != SOURCE:
        raise InputError("dataset must come from irfa_nwb.simulate_recording(...)")
    path = check_output_path(path, overwrite=overwrite, what="NWB file")

    attrs = dict(dataset.attrs)
    seed = int(attrs["random_state"])
    window, isi = float(attrs["window"]), float(attrs["isi"])
    resp = stack_presentations(dataset)
    values = np.asarray(resp.values)
    onsets = np.asarray(resp["start_time"].values, dtype=np.float64)
    shown = np.asarray(resp["stimulus_id"].values, dtype=np.int64)
    split = np.asarray(resp["split"].values).astype(str)
    images = np.asarray(dataset["images"].values)
    names = np.asarray(dataset["image_name"].values).astype(str)
    unit_ids = np.asarray(resp["unit_id"].values, dtype=np.int64)
    groups = np.asarray(resp["electrode_group"].values).astype(str)
    areas = np.asarray(resp["area"].values).astype(str)
    rf_x = np.asarray(resp["rf_x"].values, dtype=np.float64)
    rf_y = np.asarray(resp["rf_y"].values, dtype=np.float64)

    params = ", ".join(f"{k}={v}" for k, v in attrs.items() if k != "source")
    nwb = new_nwbfile(
        session_description=(
            "Simulated recording of a virtual visual cortex (V1-, V4- and IT-like units on "
            "multi-electrode arrays) viewing natural image patches, made by "
            f"irfa_nwb.simulate_recording (irfa-nwb {__version__}) as ground truth for IRFA "
            "image reconstruction."
        ),
        identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{SOURCE}:{params}:{responses}")),
        session_start_time=SESSION_START,
        session_id=f"simulation-seed-{seed}",
        experimenter=["Simulator, Irfa-Nwb"],
        lab="irfa-nwb virtual lab",
        institution="irfa-nwb (simulation, no animal was used)",
        experiment_description=f"Parameters: {params}.",
        keywords=["simulation", "ground truth", "natural images", "V1", "V4", "IT", "IRFA"],
        related_publications=[IRFA_DOI],
        source_script=f"irfa_nwb.simulate_recording (irfa-nwb {__version__})",
        source_script_file_name="irfa_nwb/simulation/nwb.py",
        subject={
            "subject_id": f"virtual-macaque-{seed}",
            "species": "Macaca mulatta",
            "sex": "M",
            "age": "P6Y",
            "description": "Virtual subject: a simulated visual cortex (no animal was used).",
        },
    )

    # stimuli --------------------------------------------------------------------------
    container = images_container(
        IMAGES_NAME,
        images,
        names=list(names),
        descriptions=[f"simulated stimulus {i}" for i in range(len(names))],
        description=(
            "Natural image patches cut from photographs bundled with scikit-image, in stimulus "
            "id order (RGB, uint8)."
        ),
    )
    nwb.add_stimulus_template(container)
    nwb.add_stimulus(
        IndexSeries(
            name=SERIES_NAME,
            data=H5DataIO(shown.astype(np.uint32), compression="gzip"),
            indexed_images=container,
            unit="N/A",
            starting_time=float(onsets[0]) if onsets.size else FIRST_ONSET,
            rate=onset_rate(isi),
            description=(
                f"Index of the image shown at each onset (every {isi} s, on for {window} s)."
            ),
        )
    )
    table = TimeIntervals(
        name=TABLE_NAME,
        description="One row per stimulus presentation; split marks the held-out test set.",
    )
    table.add_column("image_index", "index into stimulus_template/" + IMAGES_NAME)
    table.add_column("image_name", "name of the RGBImage shown")
    table.add_column("split", '"train" (shown once) or "test" (repeated)')
    for k in range(onsets.size):
        table.add_row(
            start_time=float(onsets[k]),
            stop_time=float(onsets[k] + window),
            image_index=int(shown[k]),
            image_name=str(names[shown[k]]),
            split=str(split[k]),
        )
    nwb.add_time_intervals(table)

    # arrays and electrodes ------------------------------------------------------------
    egroups = add_electrodes(
        nwb,
        ids=unit_ids,
        groups=groups,
        areas=areas,
        device_name="virtual_arrays",
        device_description="Virtual multi-electrode arrays simulated by irfa-nwb",
        group_descriptions={
            g: (
                f"Simulated {areas[groups == g][0]} array; true RF centre (image fraction) "
                f"x={rf_x[groups == g].mean():.4f}, y={rf_y[groups == g].mean():.4f} "
                "(mean of its units)"
            )
            for g in dict.fromkeys(groups.tolist())
        },
        columns={
            "rf_x": (rf_x, "true receptive field centre, fraction of image width from the left"),
            "rf_y": (rf_y, "true receptive field centre, fraction of image height from the top"),
        },
    )

    # responses ------------------------------------------------------------------------
    if responses == "spikes":
        rng = simulation_streams(seed)["spikes"]
        spikes = _spike_times(values, onsets, window, rng)
        # whole columns at once: add_unit would convert ~1e6 spike times one by one
        n_u = unit_ids.size
        times = VectorData(
            name="spike_times",
            data=H5DataIO(np.concatenate(spikes) if spikes else np.zeros(0), compression="gzip"),
            description="spike times (s)",
        )
        times_index = VectorIndex(
            name="spike_times_index",
            data=np.cumsum([s.size for s in spikes]).astype(np.int64),
            target=times,
        )
        elecs = DynamicTableRegion(
            name="electrodes",
            data=np.arange(n_u, dtype=np.int64),
            description="the electrode of each unit",
            table=nwb.electrodes,
        )
        elecs_index = VectorIndex(
            name="electrodes_index", data=np.arange(1, n_u + 1, dtype=np.int64), target=elecs
        )
        egroup = VectorData(
            name="electrode_group",
            data=[egroups[g] for g in groups],
            description="the array (electrode group) of each unit",
        )
        nwb.units = Units(
            name="units",
            id=unit_ids.tolist(),
            columns=[times, times_index, elecs, elecs_index, egroup],
            description=(
                "Simulated multi-unit spiking, one unit per electrode; the spikes in [onset, "
                f"onset + {window}) s number the simulated spike count of that presentation."
            ),
            electrode_table=nwb.electrodes,
            resolution=1.0 / SPIKE_RATE,
        )
    else:
        rate = float(np.float32(mua_rate))  # NWB stores the rate as float32
        data, t0 = _mua_samples(values, onsets, isi, rate)
        region = nwb.create_electrode_table_region(
            region=list(range(unit_ids.size)), description="all simulated channels"
        )
        ecephys = nwb.create_processing_module(
            name="ecephys", description="Processed multi-unit activity (simulated)."
        )
        ecephys.add(
            ElectricalSeries(
                name="MUA",
                data=H5DataIO(data, compression="gzip", chunks=(min(len(data), 4096), 1)),
                electrodes=region,
                starting_time=t0,
                rate=rate,
                filtering="simulated MUA: expected spike count in the response window",
                description=(
                    "Simulated MUA: the response (spike count in the window after onset) held "
                    "from each onset to the next; zero before the first. Values are counts; "
                    "the 'volts' unit is nominal."
                ),
            )
        )

    return write_nwbfile(nwb, path, overwrite=overwrite)


def write_simulated_recording(
    path: str | os.PathLike,
    *,
    responses: str = "spikes",
    mua_rate: float = 100.0,
    overwrite: bool = False,
    **simulate_kwargs: Any,
) -> Path:
    """Simulate a recording and write it as a best-practice NWB file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination ``.nwb`` file (written atomically).
    responses : {"spikes", "mua"}, default "spikes"
        Spike times in ``units`` or processed MUA in ``processing/ecephys/MUA``.
    mua_rate : float, default 100.0
        Sampling rate (Hz) of the MUA series.
    overwrite : bool, default False
        Replace an existing file.
    **simulate_kwargs
        Passed to :func:`~irfa_nwb.simulation.simulate_recording` (``n_stimuli``,
        ``random_state``...).

    Returns
    -------
    pathlib.Path
        The written file; ``irfa_nwb.load_dataset(path)`` gives back
        ``simulate_recording(**simulate_kwargs)``.
    """
    simulate_kwargs.pop("return_cortex", None)
    if responses not in ("spikes", "mua"):
        raise InputError(f'responses must be "spikes" or "mua", got {responses!r}')
    check_output_path(path, overwrite=overwrite, what="NWB file")
    ds = simulate_recording(**simulate_kwargs)
    return write_simulation_nwb(
        ds, path, responses=responses, mua_rate=mua_rate, overwrite=overwrite
    )


def simulate_nwb(path: str | os.PathLike, *, seed: int | None = None, **kwargs: Any) -> Path:
    """Deprecated alias of :func:`write_simulated_recording` (``seed`` is ``random_state``)."""
    warnings.warn(
        "irfa_nwb.simulate_nwb is deprecated and will be removed in irfa-nwb 0.3; use "
        "irfa_nwb.write_simulated_recording(path, ..., random_state=...)",
        FutureWarning,
        stacklevel=2,
    )
    if seed is not None:
        kwargs["random_state"] = seed
    return write_simulated_recording(path, **kwargs)
