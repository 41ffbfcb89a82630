"""TVSD -> best-practice NWB, built with the shared :mod:`irfa_nwb.data.nwbfile` helpers."""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from ...outputs import check_output_path
from ..nwbfile import add_electrodes, images_container, new_nwbfile, write_nwbfile
from ..repeats import stack_presentations
from .layout import CHANNELS_PER_ARRAY
from .normmua import load_tvsd

__all__ = ["convert_tvsd"]

#: s between consecutive presentations in converted files (order, not time)
PSEUDO_PERIOD = 1.0

_ELECTRODE_COLUMNS = {
    "reliability": "mean pairwise test-repeat reliability (TVSD 'reliab')",
    "snr": "signal-to-noise ratio (TVSD 'SNR_max')",
    "oracle": "noise ceiling (TVSD 'oracle')",
    "latency": "response latency averaged over days, ms (TVSD 'lats')",
}


def convert_tvsd(
    mua_file: str | os.PathLike,
    output: str | os.PathLike,
    *,
    images_file: str | os.PathLike | None = None,
    image_root: str | os.PathLike | None = None,
    images: Any = None,
    image_size: tuple[int, int] | None = (64, 64),
    array_areas: Mapping[int, str | None] | None = None,
    channels_per_array: int = CHANNELS_PER_ARRAY,
    include_unmapped: bool = False,
    subject_id: str = "monkeyN",
    species: str = "Macaca mulatta",
    sex: str = "U",
    age: str | None = None,
    session_start_time: datetime.datetime | None = None,
    institution: str | None = "Netherlands Institute for Neuroscience (KNAW)",
    lab: str | None = "Vision and Cognition (Roelfsema lab)",
    experimenter: Sequence[str] | None = (
        "Papale, Paolo",
        "Wang, Feng",
        "Self, Matthew W.",
        "Roelfsema, Pieter R.",
    ),
    overwrite: bool = False,
) -> Path:
    """Convert TVSD normalised MUA (+ images) into a best-practice NWB file.

    The file holds: the images in ``stimulus_template/things_images`` (``Images`` of
    ``RGBImage``, in stimulus id order, each described by its THINGS path); an ``IndexSeries``
    ``presentations`` in ``stimulus`` pointing at them; the normalised MUA as an
    ``ElectricalSeries`` ``normMUA`` in ``processing/ecephys`` (one sample per presentation);
    an interval table ``tvsd_presentations`` with ``image_index`` and ``split``; electrodes
    with ``location`` (area), group per Utah array and ``array`` / ``reliability`` / ``snr``
    / ``oracle`` / ``latency`` columns. normMUA has no presentation times, so presentations
    are placed 1 s apart in presentation order (pseudo-time, said so in the descriptions);
    :func:`irfa_nwb.load_dataset` on the result gives back the responses of
    :func:`~irfa_nwb.data.tvsd.load_tvsd` with any window inside [0, 1) s.

    Parameters
    ----------
    mua_file, images_file, image_root, images, image_size, array_areas, channels_per_array, \
include_unmapped
        As in :func:`~irfa_nwb.data.tvsd.load_tvsd` (``image_size`` defaults to the paper's
        64 x 64).
    output : path-like
        The NWB file to write (checked first, then written atomically: a temporary file in
        the same folder, then renamed).
    subject_id, species, sex, age
        Subject metadata; ``age`` (ISO 8601 duration, e.g. ``"P9Y"``) is required: normMUA
        does not store it and nwbinspector flags its absence as critical.
    session_start_time : datetime, optional
        Default: the modification time of ``mua_file`` (normMUA does not store the recording
        dates; the file says so).
    institution, lab, experimenter
        General metadata (defaults: the TVSD authors and their institute).
    overwrite : bool
        Replace ``output`` if it exists.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    InputError
        No ``age``, no images, or ``output`` cannot be written (exists without
        ``overwrite``, missing or read-only folder): checked before reading the data.
    """
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb.ecephys import ElectricalSeries
    from pynwb.epoch import TimeIntervals
    from pynwb.image import IndexSeries

    if age is None:
        raise InputError(
            "convert_tvsd needs the subject's age as an ISO 8601 duration (e.g. age='P9Y'): "
            "normMUA does not store it and NWB best practice (nwbinspector) requires it"
        )
    if images is False or (images is None and (images_file is None or image_root is None)):
        raise InputError(
            "convert_tvsd needs the images: pass images_file= and image_root= (THINGS folder), "
            "or images="
        )
    output = check_output_path(output, overwrite=overwrite, what="NWB file")
    ds = load_tvsd(
        mua_file,
        images_file=images_file,
        image_root=image_root,
        images=images,
        image_size=image_size,
        array_areas=array_areas,
        channels_per_array=channels_per_array,
        include_unmapped=include_unmapped,
    )
    note = ""
    if session_start_time is None:
        mtime = Path(mua_file).stat().st_mtime
        session_start_time = datetime.datetime.fromtimestamp(mtime, tz=datetime.timezone.utc)
        note = (
            " session_start_time is the modification time of the source .mat file: normMUA "
            "does not store the recording dates."
        )
    nwb = new_nwbfile(
        session_description=(
            "THINGS Ventral Stream Spiking Dataset (TVSD, Papale et al. 2025): normalized "
            "multi-unit activity from Utah arrays in V1, V4 and IT of a macaque viewing THINGS "
            "images, converted by irfa-nwb." + note
        ),
        session_start_time=session_start_time,
        experiment_description="Passive fixation of THINGS images (200 ms on, 200 ms off).",
        keywords=["TVSD", "THINGS", "MUA", "V1", "V4", "IT"],
        source_script=f"irfa_nwb.data.tvsd.convert_tvsd from {Path(mua_file).name}",
        source_script_file_name="irfa_nwb/data/tvsd/convert.py",
        institution=institution,
        lab=lab,
        experimenter=list(experimenter) if experimenter else None,
        subject={
            "subject_id": subject_id,
            "species": species,
            "sex": sex,
            "age": age,
            "description": "TVSD subject",
        },
    )

    units = ds["responses"]
    groups = np.asarray(units["electrode_group"].values).astype(str)
    areas = np.asarray(units["area"].values).astype(str)
    columns: dict[str, tuple[np.ndarray, str]] = {
        "array": (
            np.array([int(g[5:]) for g in groups], dtype=np.int64),
            "Utah array number (1-based)",
        )
    }
    for col, desc in _ELECTRODE_COLUMNS.items():
        if col in units.coords:
            columns[col] = (np.asarray(units[col].values, dtype=np.float64), desc)
    add_electrodes(
        nwb,
        ids=np.asarray(units["unit_id"].values, dtype=np.int64),
        groups=groups,
        areas=areas,
        device_name="UtahArrays",
        device_description="Utah arrays (Blackrock Microsystems), 64 electrodes each",
        group_descriptions={
            g: f"Utah array {g[5:]} ({areas[groups == g][0] or 'unknown'})"
            for g in dict.fromkeys(groups.tolist())
        },
        columns=columns,
    )

    img = ds["images"]
    pix = np.asarray(img.values)
    if pix.dtype != np.uint8:
        pix = np.round(pix * 255).astype(np.uint8)
    things = img["things_path"].values if "things_path" in img.coords else None
    container = images_container(
        "things_images",
        pix,
        names=[f"stimulus{i:05d}" for i in range(pix.shape[0])],
        descriptions=[
            f"THINGS image {things[i]}" if things is not None else f"stimulus {i}"
            for i in range(pix.shape[0])
        ],
        description="THINGS stimulus images in stimulus-id order (training images, then test)",
    )
    nwb.add_stimulus_template(container)

    pres = stack_presentations(ds)
    n_pres = pres.sizes["presentation"]
    times = np.arange(n_pres, dtype=np.float64) * PSEUDO_PERIOD
    pseudo = (
        "Pseudo-time: presentations are placed 1 s apart in presentation order; "
        "normMUA does not store presentation times."
    )
    shown = pres["stimulus_id"].values.astype(np.int64)
    nwb.add_stimulus(
        IndexSeries(
            name="presentations",
            data=shown.astype(np.uint32),
            indexed_images=container,
            unit="N/A",
            starting_time=0.0,
            rate=1.0 / PSEUDO_PERIOD,
            description="Index of the image shown at each presentation. " + pseudo,
        )
    )
    table = TimeIntervals(
        name="tvsd_presentations",
        description="TVSD presentations with their train/test split. " + pseudo,
    )
    table.add_column(name="image_index", description="index into stimulus_template/things_images")
    table.add_column(name="split", description="'train' (shown once) or 'test' (repeated)")
    for t, i, s in zip(times, shown, pres["split"].values, strict=True):
        table.add_interval(
            start_time=float(t), stop_time=float(t) + 0.2, image_index=int(i), split=str(s)
        )
    nwb.add_time_intervals(table)
    region = nwb.create_electrode_table_region(
        list(range(units.sizes["unit"])), "electrodes of the normalized MUA"
    )
    module = nwb.create_processing_module("ecephys", "processed extracellular data")
    module.add(
        ElectricalSeries(
            name="normMUA",
            data=H5DataIO(np.asarray(pres.values, dtype=np.float32), compression="gzip"),
            electrodes=region,
            starting_time=0.0,
            rate=1.0 / PSEUDO_PERIOD,
            description=(
                "Normalized MUA per presentation (window mean, z-scored per electrode and "
                "day by the TVSD authors; dimensionless, although ElectricalSeries "
                "declares volts). One sample per presentation. " + pseudo
            ),
            filtering="MUA envelope: band-pass, rectified, low-pass (see Papale et al. 2025)",
        )
    )
    return write_nwbfile(nwb, output, overwrite=overwrite)
