"""THINGS Ventral Stream Spiking Dataset (TVSD, Papale et al. 2025): reader and NWB converter.

TVSD is published on G-Node GIN as MATLAB v7.3 (HDF5) files, read here with ``h5py``. As seen
from HDF5 (MATLAB arrays appear transposed), ``THINGS_normMUA.mat`` holds:

==================  ==========================  ==========================================
name                shape (h5py)                meaning
==================  ==========================  ==========================================
``train_MUA``       (n_train, n_electrodes)     normalised MUA per training image (1 rep)
``test_MUA``        (n_test, n_electrodes)      test images, averaged over repeats
``test_MUA_reps``   (n_reps, n_test, n_elec.)   test images, every repeat
``reliab``          (n_pairs, n_electrodes)     pairwise split reliabilities
``SNR``, ``lats``   (n_days, n_electrodes)      signal-to-noise ratio, latency per day
``SNR_max``         (n_electrodes, 1)           best SNR over days
``oracle``          (n_electrodes, 1)           noise ceiling
``tb``              (n_time, 1)                 time base (ms)
==================  ==========================  ==========================================

``_logs/things_imgs.mat`` holds structs ``train_imgs`` and ``test_imgs`` whose field
``things_path`` (cell array of strings) gives each image's path inside the THINGS image
database (e.g. ``aardvark/aardvark_01b.jpg``), in the order of the MUA rows.

The normalised MUA is already averaged in area-specific windows and z-scored per electrode and
day by the authors, and its electrodes are in array order (64 per Utah array). The raw trial
file's channel order follows the headstage wiring and needs the authors' remapping: pass
``channel_order`` when reading data stored in another order.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._atomic import write_nwb_atomic
from ..errors import InputError, NWBLayoutError
from .images import ImageSet, read_images
from .loader import build_dataset
from .repeats import stack_presentations

__all__ = ["TVSD_ARRAY_AREAS_N", "convert_tvsd", "load_tvsd", "read_things_paths"]

#: Array (1-based) -> area for monkey N, as used in the IRFA paper: V1 arrays 1-5 and 7-8
#: (array 6 left out), V4 arrays 9-12, IT arrays 13-16.
TVSD_ARRAY_AREAS_N: dict[int, str | None] = {
    **{a: "V1" for a in (1, 2, 3, 4, 5, 7, 8)},
    6: None,
    **{a: "V4" for a in (9, 10, 11, 12)},
    **{a: "IT" for a in (13, 14, 15, 16)},
}

_PSEUDO_PERIOD = 1.0  # s between consecutive presentations in converted files (order, not time)


def _matlab_string(f: Any, obj: Any) -> str:
    arr = np.asarray(obj[()])
    if arr.dtype == object:  # a cell holding a reference
        return _matlab_string(f, f[arr.ravel()[0]])
    codes = arr.ravel(order="F").astype(np.uint32)
    return "".join(chr(c) for c in codes if c)


def _matlab_strings(f: Any, obj: Any) -> list[str]:
    """A MATLAB v7.3 cell array of strings (dataset of references) as a list of str."""
    import h5py

    if isinstance(obj, h5py.Dataset) and obj.dtype == h5py.ref_dtype:
        return [_matlab_string(f, f[ref]) for ref in np.asarray(obj[()]).ravel(order="F")]
    if isinstance(obj, h5py.Dataset):
        return [_matlab_string(f, obj)]
    raise NWBLayoutError(f"{obj.name} is not a MATLAB string or cell array of strings")


def read_things_paths(images_file: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Read the THINGS paths of the training and test images from ``things_imgs.mat``.

    Parameters
    ----------
    images_file : path-like
        ``_logs/things_imgs.mat`` (MATLAB v7.3) with structs ``train_imgs`` and ``test_imgs``.

    Returns
    -------
    (train_paths, test_paths) : lists of str
        Paths relative to the THINGS image root, in the order of the MUA rows.
    """
    import h5py

    path = Path(images_file)
    if not path.is_file():
        raise FileNotFoundError(f"TVSD image list {str(path)!r} not found")
    out = []
    with h5py.File(path, "r") as f:
        for name in ("train_imgs", "test_imgs"):
            if name not in f:
                raise NWBLayoutError(
                    f"{path.name} has no {name!r} (it has "
                    f"{sorted(k for k in f if k != '#refs#')}); "
                    "expected TVSD's _logs/things_imgs.mat"
                )
            group = f[name]
            field = next((k for k in ("things_path", "local_path") if k in group), None)
            if field is None:
                raise NWBLayoutError(
                    f"{path.name}:{name} has no things_path field (fields {sorted(group)})"
                )
            out.append([p.replace("\\", "/") for p in _matlab_strings(f, group[field])])
    return out[0], out[1]


def _array_areas(
    n_electrodes: int, channels_per_array: int, array_areas: Mapping[int, str | None] | None
) -> tuple[np.ndarray, np.ndarray]:
    if n_electrodes % channels_per_array:
        raise InputError(
            f"{n_electrodes} electrodes are not a whole number of arrays of {channels_per_array}"
        )
    mapping = dict(TVSD_ARRAY_AREAS_N if array_areas is None else array_areas)
    arrays = np.arange(n_electrodes) // channels_per_array + 1
    missing = sorted(set(arrays.tolist()) - set(mapping))
    if missing:
        raise InputError(
            f"array_areas gives no area for arrays {missing}; map every array (1-based) to an "
            "area name, or to None to leave it out"
        )
    areas = np.array([mapping[a] or "" for a in arrays])
    return arrays, areas


def _per_electrode(f: Any, name: str, n: int) -> np.ndarray | None:
    if name not in f:
        return None
    arr = np.asarray(f[name][()], dtype=np.float64)
    if arr.size == n:
        return arr.ravel()
    if arr.ndim == 2 and arr.shape[1] == n:
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmean(arr, axis=0)
    return None


def load_tvsd(
    mua_file: str | os.PathLike,
    *,
    images_file: str | os.PathLike | None = None,
    image_root: str | os.PathLike | None = None,
    images: Any = None,
    image_size: tuple[int, int] | None = None,
    array_areas: Mapping[int, str | None] | None = None,
    channels_per_array: int = 64,
    channel_order: Sequence[int] | None = None,
    include_unmapped: bool = False,
    test_repeats: bool = False,
) -> xr.Dataset:
    """Read TVSD's normalised MUA (and images) into the Dataset of the data model.

    Parameters
    ----------
    mua_file : path-like
        ``THINGS_normMUA.mat``.
    images_file : path-like, optional
        ``_logs/things_imgs.mat``; with ``image_root`` (the THINGS image folder) the images are
        read from ``image_root / things_path``.
    image_root : path-like, optional
        Folder of the THINGS images.
    images : array, folder, list of paths or False, optional
        The images directly instead (train images then test images, in MUA row order), or
        ``False`` for responses only. Default: from ``images_file`` + ``image_root`` when given,
        else no images.
    image_size : (int, int), optional
        Resize the images (THINGS images differ in size; e.g. ``(64, 64)`` as in the paper).
    array_areas : mapping int -> str or None, optional
        Area of each Utah array (1-based); ``None`` leaves an array out. Default
        :data:`TVSD_ARRAY_AREAS_N` (monkey N in the IRFA paper). Monkey F needs its own map.
    channels_per_array : int
        Electrodes per array (64).
    channel_order : sequence of int, optional
        Permutation applied to the electrode axis first (``data[:, channel_order]``), for data
        stored in recording-system order.
    include_unmapped : bool
        Keep electrodes of arrays mapped to ``None`` (area ``""``).
    test_repeats : bool, default False
        Keep every repeat of the test images (``test_MUA_reps``; the Dataset then has a
        ``repeat`` dim of 30, NaN for the training images' missing repeats, several GiB);
        default: their averages (``test_MUA``), as the paper uses them.

    Returns
    -------
    xarray.Dataset
        ``responses`` (stimulus_id x repeat x unit), ``stimulus_id`` int64: training images
        0..n_train-1, then test images; ``start_time`` NaN (not in normMUA); ``split``
        ("train"/"test") per stimulus; unit coords ``unit_id`` (electrode index 0..1023),
        ``electrode_group`` ("array01".."array16"), ``area`` and, when present,
        ``reliability`` (mean of ``reliab``), ``snr`` (``SNR_max``), ``oracle``, ``latency``
        (mean of ``lats``, ms); ``images`` with a ``things_path`` coord when known.
    """
    import h5py

    path = Path(mua_file)
    if not path.is_file():
        raise FileNotFoundError(f"TVSD MUA file {str(path)!r} not found")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise InputError(
            f"{str(path)!r} is not a MATLAB v7.3 (HDF5) file: {err}. TVSD's THINGS_normMUA.mat "
            "is v7.3; re-save older .mat files with save(..., '-v7.3')"
        ) from err
    with f:
        for name in ("train_MUA", "test_MUA"):
            if name not in f:
                raise NWBLayoutError(
                    f"{path.name} has no {name!r} (it has {sorted(k for k in f if k != '#refs#')})"
                    "; expected TVSD's THINGS_normMUA.mat"
                )
        train = np.asarray(f["train_MUA"][()], dtype=np.float32)
        n_elec = train.shape[1]
        use_reps = test_repeats and "test_MUA_reps" in f
        test = np.asarray(f["test_MUA_reps" if use_reps else "test_MUA"][()], dtype=np.float32)
        if test.shape[-1] != n_elec:
            raise NWBLayoutError(
                f"train_MUA has {n_elec} electrodes but the test data have shape {test.shape}"
            )
        extra = {
            "reliability": _per_electrode(f, "reliab", n_elec),
            "snr": _per_electrode(f, "SNR_max", n_elec),
            "oracle": _per_electrode(f, "oracle", n_elec),
            "latency": _per_electrode(f, "lats", n_elec),
        }
        if extra["snr"] is None:
            extra["snr"] = _per_electrode(f, "SNR", n_elec)
    n_train = train.shape[0]
    if use_reps:
        n_reps, n_test, _ = test.shape
        values = test.reshape(n_reps * n_test, n_elec)
        test_ids = np.tile(np.arange(n_test), n_reps) + n_train
        present = ~np.all(np.isnan(values), axis=1)  # missing repeats are all-NaN rows
        values, test_ids = values[present], test_ids[present]
    else:
        n_test = test.shape[0]
        values, test_ids = test, np.arange(n_test) + n_train
    responses = np.concatenate([train, values])
    ids = np.concatenate([np.arange(n_train), test_ids]).astype(np.int64)
    split = np.array(["train"] * n_train + ["test"] * len(test_ids))

    if channel_order is not None:
        order = np.asarray(channel_order, dtype=np.int64)
        if sorted(order.tolist()) != list(range(n_elec)):
            raise InputError(f"channel_order must be a permutation of 0..{n_elec - 1}")
        responses = responses[:, order]
        extra = {k: (None if v is None else v[order]) for k, v in extra.items()}
    arrays, areas = _array_areas(n_elec, channels_per_array, array_areas)
    keep = np.ones(n_elec, dtype=bool) if include_unmapped else areas != ""
    units = pd.DataFrame(
        {
            "unit_id": np.flatnonzero(keep).astype(np.int64),
            "electrode_group": [f"array{a:02d}" for a in arrays[keep]],
            "area": areas[keep],
        }
    )
    extra_units = {k: v[keep] for k, v in extra.items() if v is not None}

    image_set: ImageSet | None = None
    paths: list[str] | None = None
    if images_file is not None:
        train_paths, test_paths = read_things_paths(images_file)
        if (len(train_paths), len(test_paths)) != (n_train, n_test):
            raise InputError(
                f"things_imgs lists {len(train_paths)} train / {len(test_paths)} test images but "
                f"the MUA file has {n_train} / {n_test}"
            )
        paths = train_paths + test_paths
    if images is not None and images is not False:
        image_set = read_images(images, image_size=image_size)
        origin = image_set.origin
    elif images is None and paths is not None and image_root is not None:
        root = Path(image_root)
        files = [root / p for p in paths]
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} THINGS images are missing under {str(root)!r}, e.g. {missing[:3]}"
                "; download the THINGS images (things-initiative.org) and pass their folder"
            )
        image_set = read_images(files, image_size=image_size)
        origin = str(root)
    if image_set is not None and len(image_set) != n_train + n_test:
        raise InputError(
            f"{len(image_set)} images given but TVSD has {n_train} train + {n_test} test images"
        )

    attrs: dict[str, Any] = {
        "source": str(path.resolve()),
        "dataset": "TVSD (THINGS Ventral Stream Spiking Dataset, Papale et al. 2025)",
        "responses_source": "test_MUA_reps" if use_reps else "test_MUA",
        "value_units": "normalized MUA (z-scored per electrode and day by the TVSD authors)",
        "window": "area-specific windows applied by the TVSD authors",
        "n_train_images": int(n_train),
        "n_test_images": int(n_test),
        "array_areas": [
            f"{a}: {v}"
            for a, v in sorted((TVSD_ARRAY_AREAS_N if array_areas is None else array_areas).items())
        ],
    }
    if image_set is not None:
        attrs["images_source"] = origin
    stim_coords = {"things_path": np.array(paths)} if (paths and image_set is not None) else None
    ds = build_dataset(
        responses[:, keep],
        units,
        ids,
        np.full(len(ids), np.nan),
        image_set,
        attrs,
        split=split,
        extra_unit_coords=extra_units,
        extra_image_coords=stim_coords,
    )
    return ds


def convert_tvsd(
    mua_file: str | os.PathLike,
    output: str | os.PathLike,
    *,
    images_file: str | os.PathLike | None = None,
    image_root: str | os.PathLike | None = None,
    images: Any = None,
    image_size: tuple[int, int] | None = (64, 64),
    array_areas: Mapping[int, str | None] | None = None,
    channels_per_array: int = 64,
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

    The file holds: the images in ``stimulus_template`` (``Images`` of ``RGBImage``, in stimulus
    id order, each described by its THINGS path); an ``IndexSeries`` ``presentations`` in
    ``stimulus`` pointing at them; the normalised MUA as an ``ElectricalSeries`` ``normMUA``
    in ``processing/ecephys`` (one sample per presentation); an interval table
    ``tvsd_presentations`` with ``image_index`` and ``split``; electrodes with ``location``
    (area), group per Utah array and ``reliability`` / ``snr`` / ``oracle`` / ``latency``.
    normMUA has no presentation times, so presentations are placed 1 s apart in presentation
    order (pseudo-time, said so in the descriptions); :func:`irfa_nwb.load_dataset` on the
    result gives back the responses of :func:`load_tvsd` with any window inside [0, 1) s.

    Parameters
    ----------
    mua_file, images_file, image_root, images, image_size, array_areas, channels_per_array,
    include_unmapped
        As in :func:`load_tvsd` (``image_size`` defaults to the paper's 64 x 64).
    output : path-like
        The NWB file to write (atomically: a temporary file in the same folder, then renamed).
    subject_id, species, sex, age
        Subject metadata; ``age`` (ISO 8601 duration, e.g. ``"P9Y"``) is required: normMUA
        does not store it and nwbinspector flags its absence as critical.
    institution, lab, experimenter
        General metadata (defaults: the TVSD authors and their institute).
    session_start_time : datetime, optional
        Default: the modification time of ``mua_file`` (normMUA does not store the recording
        dates; the file says so).
    overwrite : bool
        Replace ``output`` if it exists.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from hdmf.backends.hdf5 import H5DataIO
    from pynwb import NWBFile
    from pynwb.base import ImageReferences, Images
    from pynwb.ecephys import ElectricalSeries
    from pynwb.epoch import TimeIntervals
    from pynwb.file import Subject
    from pynwb.image import GrayscaleImage, IndexSeries, RGBImage

    output = Path(output)
    if age is None:
        raise InputError(
            "convert_tvsd needs the subject's age as an ISO 8601 duration (e.g. age='P9Y'): "
            "normMUA does not store it and NWB best practice (nwbinspector) requires it"
        )
    if output.exists() and not overwrite:
        raise FileExistsError(f"{str(output)!r} exists; pass overwrite=True to replace it")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"folder {str(output.parent)!r} does not exist")
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
    if "images" not in ds:
        raise InputError(
            "convert_tvsd needs the images: pass images_file= and image_root= (THINGS folder), "
            "or images="
        )
    note = ""
    if session_start_time is None:
        mtime = Path(mua_file).stat().st_mtime
        session_start_time = datetime.datetime.fromtimestamp(mtime, tz=datetime.timezone.utc)
        note = (
            " session_start_time is the modification time of the source .mat file: normMUA "
            "does not store the recording dates."
        )
    nwb = NWBFile(
        session_description=(
            "THINGS Ventral Stream Spiking Dataset (TVSD, Papale et al. 2025): normalized "
            "multi-unit activity from Utah arrays in V1, V4 and IT of a macaque viewing THINGS "
            "images, converted by irfa-nwb." + note
        ),
        identifier=str(uuid.uuid4()),
        session_start_time=session_start_time,
        experiment_description="Passive fixation of THINGS images (200 ms on, 200 ms off).",
        keywords=["TVSD", "THINGS", "MUA", "V1", "V4", "IT"],
        source_script=f"irfa_nwb.data.convert_tvsd from {Path(mua_file).name}",
        source_script_file_name="irfa_nwb/data/tvsd.py",
        institution=institution,
        lab=lab,
        experimenter=list(experimenter) if experimenter else None,
        subject=Subject(
            subject_id=subject_id, species=species, sex=sex, age=age, description="TVSD subject"
        ),
    )
    device = nwb.create_device(
        name="UtahArrays",
        description="Utah arrays, 64 electrodes each",
        manufacturer="Blackrock Microsystems",
    )
    for col, desc in (
        ("array", "Utah array number (1-based)"),
        ("reliability", "mean pairwise test-repeat reliability (TVSD 'reliab')"),
        ("snr", "signal-to-noise ratio (TVSD 'SNR_max')"),
        ("oracle", "noise ceiling (TVSD 'oracle')"),
        ("latency", "response latency averaged over days, ms (TVSD 'lats')"),
    ):
        if col == "array" or col in ds.coords:
            nwb.add_electrode_column(name=col, description=desc)
    groups: dict[str, Any] = {}
    units = ds["responses"]
    for k in range(units.sizes["unit"]):
        gname = str(units["electrode_group"].values[k])
        area = str(units["area"].values[k]) or "unknown"
        if gname not in groups:
            groups[gname] = nwb.create_electrode_group(
                name=gname,
                description=f"Utah array {gname[5:]} ({area})",
                location=area,
                device=device,
            )
        extra = {
            c: float(units[c].values[k])
            for c in ("reliability", "snr", "oracle", "latency")
            if c in units.coords
        }
        nwb.add_electrode(
            id=int(units["unit_id"].values[k]),
            group=groups[gname],
            location=area,
            array=int(gname[5:]),
            **extra,
        )

    img = ds["images"]
    pix = np.asarray(img.values)
    if pix.dtype != np.uint8:
        pix = np.round(pix * 255).astype(np.uint8)
    names = img["things_path"].values if "things_path" in img.coords else None
    image_objs = []
    for i in range(pix.shape[0]):
        desc = f"THINGS image {names[i]}" if names is not None else f"stimulus {i}"
        if pix.shape[-1] == 1:
            image_objs.append(
                GrayscaleImage(name=f"stimulus{i:05d}", data=pix[i, ..., 0], description=desc)
            )
        else:
            image_objs.append(RGBImage(name=f"stimulus{i:05d}", data=pix[i], description=desc))
    images_container = Images(
        name="things_images",
        images=image_objs,
        description="THINGS stimulus images in stimulus-id order (training images, then test)",
        order_of_images=ImageReferences(name="order_of_images", data=image_objs),
    )
    nwb.add_stimulus_template(images_container)
    pres = stack_presentations(ds)
    n_pres = pres.sizes["presentation"]
    times = np.arange(n_pres, dtype=np.float64) * _PSEUDO_PERIOD
    pseudo = (
        "Pseudo-time: presentations are placed 1 s apart in presentation order; "
        "normMUA does not store presentation times."
    )
    index_series = IndexSeries(
        name="presentations",
        data=pres["stimulus_id"].values.astype(np.uint32),
        indexed_images=images_container,
        unit="N/A",
        starting_time=0.0,
        rate=1.0 / _PSEUDO_PERIOD,
        description="Index of the image shown at each presentation. " + pseudo,
    )
    nwb.add_stimulus(index_series)
    table = TimeIntervals(
        name="tvsd_presentations",
        description="TVSD presentations with their train/test split. " + pseudo,
    )
    table.add_column(name="image_index", description="index into stimulus_template/things_images")
    table.add_column(name="split", description="'train' (shown once) or 'test' (repeated)")
    for t, i, s in zip(times, pres["stimulus_id"].values, pres["split"].values, strict=True):
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
            rate=1.0 / _PSEUDO_PERIOD,
            description=(
                "Normalized MUA per presentation (window mean, z-scored per electrode and "
                "day by the TVSD authors; dimensionless, although ElectricalSeries "
                "declares volts). One sample per presentation. " + pseudo
            ),
            filtering="MUA envelope: band-pass, rectified, low-pass (see Papale et al. 2025)",
        )
    )
    write_nwb_atomic(nwb, output)
    return output
