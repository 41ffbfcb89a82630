"""Reader of TVSD's normalised MUA, ``THINGS_normMUA.mat`` (the authors' preprocessing).

As seen from h5py (MATLAB arrays appear transposed), ``THINGS_normMUA.mat`` holds:

==================  ==========================  ==========================================
name                shape (h5py)                meaning
==================  ==========================  ==========================================
``train_MUA``       (n_train, n_electrodes)     normalised MUA per training image (1 rep)
``test_MUA``        (n_test, n_electrodes)      test images, averaged over repeats
``test_MUA_reps``   (n_reps, n_test, n_elec.)   test images, every repeat
``reliab``          (n_pairs, n_electrodes)     correlation between two repeats, per pair
``SNR``, ``lats``   (n_days, n_electrodes)      signal-to-noise ratio, latency per day
``SNR_max``         (n_electrodes, 1)           best SNR
``oracle``          (n_electrodes, 1)           noise ceiling
``tb``              (n_time, 1)                 time base (ms)
==================  ==========================  ==========================================

The normalised MUA is already averaged in area-specific windows and z-scored per electrode and
day by the authors (``_code/norm_MUA.m``: windows (25, 125], (50, 150], (75, 175] ms for V1, V4,
IT; mean and standard deviation of the day's test trials), and its electrodes are in physical
(array) order. For the IRFA paper's own windows and normalisation read the trials with
:func:`irfa_nwb.data.tvsd.load_tvsd_trials`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ...errors import InputError, NWBLayoutError
from ..loader import build_dataset
from . import _matlab, layout
from .layout import CHANNELS_PER_ARRAY
from .stimuli import things_path_coord, tvsd_images

__all__ = ["load_tvsd", "read_reliability"]


def _per_electrode(f: Any, name: str, n: int) -> np.ndarray | None:
    """A per-electrode quantity; per-day / per-pair tables are averaged (NaN ignored)."""
    if name not in f:
        return None
    arr = np.asarray(f[name][()], dtype=np.float64)
    if arr.size == n:
        return arr.ravel()
    if arr.ndim == 2 and arr.shape[1] == n:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN electrodes stay NaN
            return np.nanmean(arr, axis=0)
    return None


def read_reliability(mua_file: str | os.PathLike) -> np.ndarray:
    """Per-electrode reliability of ``THINGS_normMUA.mat``: ``reliab`` averaged over pairs.

    This is the quantity the IRFA / MonkeySee preprocessing thresholds at 0.4 (there with a
    plain mean; here NaN pairs are ignored). Electrodes in physical (array) order.
    """
    path = Path(mua_file)
    with _matlab.open_v73(path, "TVSD's THINGS_normMUA.mat") as f:
        if "reliab" not in f:
            raise NWBLayoutError(
                f"{path.name} has no 'reliab' (it has {_matlab.names(f)}); expected TVSD's "
                "THINGS_normMUA.mat"
            )
        arr = np.asarray(f["reliab"][()], dtype=np.float64)
    arr = arr.reshape(-1, arr.shape[-1]) if arr.ndim > 1 else arr[None, :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(arr, axis=0)


def load_tvsd(
    mua_file: str | os.PathLike,
    *,
    images_file: str | os.PathLike | None = None,
    image_root: str | os.PathLike | None = None,
    images: Any = None,
    image_size: tuple[int, int] | None = None,
    array_areas: Mapping[int, str | None] | None = None,
    channels_per_array: int = CHANNELS_PER_ARRAY,
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
        :data:`~irfa_nwb.data.tvsd.MONKEY_N_ARRAY_AREAS` (monkey N in the IRFA paper); use
        :data:`~irfa_nwb.data.tvsd.MONKEY_F_ARRAY_AREAS` for monkey F.
    channels_per_array : int
        Electrodes per array (64).
    channel_order : sequence of int, optional
        Permutation applied to the electrode axis first (``data[:, channel_order]``), for data
        stored in another order (normMUA is already in array order).
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
    path = Path(mua_file)
    with _matlab.open_v73(path, "TVSD's THINGS_normMUA.mat") as f:
        for name in ("train_MUA", "test_MUA"):
            if name not in f:
                raise NWBLayoutError(
                    f"{path.name} has no {name!r} (it has {_matlab.names(f)})"
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
    arrays, areas = layout.array_areas(n_elec, channels_per_array, array_areas)
    keep = np.ones(n_elec, dtype=bool) if include_unmapped else areas != ""
    units = pd.DataFrame(
        {
            "unit_id": np.flatnonzero(keep).astype(np.int64),
            "electrode_group": [f"array{a:02d}" for a in arrays[keep]],
            "area": areas[keep],
        }
    )
    extra_units = {k: v[keep] for k, v in extra.items() if v is not None}

    image_set, paths = tvsd_images(
        n_train=n_train,
        n_test=n_test,
        images_file=images_file,
        image_root=image_root,
        images=images,
        image_size=image_size,
    )
    attrs: dict[str, Any] = {
        "source": str(path.resolve()),
        "dataset": "TVSD (THINGS Ventral Stream Spiking Dataset, Papale et al. 2025)",
        "responses_source": "test_MUA_reps" if use_reps else "test_MUA",
        "value_units": "normalized MUA (z-scored per electrode and day by the TVSD authors)",
        "window": "area-specific windows applied by the TVSD authors",
        "n_train_images": int(n_train),
        "n_test_images": int(n_test),
        "array_areas": layout.describe_areas(array_areas),
    }
    if image_set is not None:
        attrs["images_source"] = image_set.origin
    return build_dataset(
        responses[:, keep],
        units,
        ids,
        np.full(len(ids), np.nan),
        image_set,
        attrs,
        split=split,
        extra_unit_coords=extra_units,
        extra_image_coords=things_path_coord(paths, image_set),
    )
