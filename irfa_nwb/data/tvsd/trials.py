"""TVSD the published way: the IRFA preprocessing of ``THINGS_MUA_trials.mat``, streamed.

``THINGS_MUA_trials.mat`` (MATLAB v7.3, tens of GB per monkey) holds the MUA of every correct
trial, not yet normalised. As MATLAB writes it and as h5py sees it (transposed):

==========  ===============================  ==================================  ============
name        MATLAB                           h5py                                meaning
==========  ===============================  ==================================  ============
``ALLMUA``  electrode x trial x time         ``(n_time, n_trials, n_electrodes)``  MUA
``ALLMAT``  trial x 6 (or 7) columns         ``(6, n_trials)``                   trial info
``tb``      1 x time (or time x 1)           ``(n_time, 1)``                     ms from onset
==========  ===============================  ==================================  ============

``ALLMAT`` columns: ``[trial_idx train_idx test_idx rep count day]`` (``norm_MUA.m``; the
README lists ``correct`` before ``day``, accepted too). ``train_idx`` (1-based, 0 for a test
trial) and ``test_idx`` (1-based, 0 for a training trial) index ``train_imgs`` / ``test_imgs``
of ``_logs/things_imgs.mat``; ``day`` is the recording day. The electrodes of ``ALLMUA`` are
in the order of the recording system (headstages), not of the arrays: the authors' mapping
``_logs/1024chns_mapping_20220105.mat`` (variable ``mapping``, 1-based) puts them in array
order, ``physical = recorded(mapping)``.

:func:`load_tvsd_trials` reproduces the preprocessing of the IRFA paper (as published in the
authors' MonkeySee code, ``SpatialBased/data_prep_spatial.py``):

1. remap the electrodes to array order; area per array (monkey N: V1, V4, IT);
2. average each trial's MUA in the window of the electrode's area (V1 0-133, V4 33-166,
   IT 66-199 ms after onset; the samples with ``start <= tb < stop``);
3. z-score every electrode per recording day, training and test trials separately (mean and
   standard deviation, ``ddof=1``, of that day's training, resp. test, trials);
4. average the test repeats;
5. keep the electrodes whose reliability exceeds 0.4 and whose receptive-field centre is known.

``ALLMUA`` is read in blocks of trials (and, for very long trials, of electrodes) through h5py
hyperslabs covering only the samples the windows need, so memory stays bounded whatever the
file size: one block (``max_block_bytes``, 64 MiB by default) plus the per-trial window means
(8 bytes per trial and electrode: ~210 MB for TVSD's 25,248 trials x 1,024 electrodes).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..._version import __version__
from ...errors import InputError, NWBLayoutError
from ..loader import build_dataset
from . import _matlab, layout
from .layout import CHANNELS_PER_ARRAY, IRFA_WINDOWS, RF_VARIABLES
from .normmua import read_reliability
from .stimuli import read_things_paths, things_path_coord, tvsd_images

__all__ = ["load_tvsd_trials", "repeat_reliability"]

logger = logging.getLogger(__name__)

#: default bound on the bytes of one block of ``ALLMUA`` read at a time
DEFAULT_BLOCK_BYTES = 64 * 2**20


def _windows_ms(windows: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float]]:
    """Windows in seconds -> ms, rounded to the nanosecond (so 0.133 s is exactly 133 ms)."""
    out = {}
    for area, w in windows.items():
        try:
            a, b = (float(v) for v in w)
        except (TypeError, ValueError) as err:
            raise InputError(
                f"windows[{area!r}] must be a pair (start, stop) in seconds, got {w!r}"
            ) from err
        if not b > a:
            raise InputError(f"windows[{area!r}] must have stop > start, got {w!r}")
        out[str(area)] = (round(a * 1000.0, 6), round(b * 1000.0, 6))
    return out


def _read_layout(f: Any, path: Path) -> tuple[Any, np.ndarray, np.ndarray, tuple[str, ...]]:
    """ALLMUA (dataset), ALLMAT (n_trials x n_cols, MATLAB orientation), tb (ms), columns."""
    missing = [n for n in ("ALLMUA", "ALLMAT", "tb") if n not in f]
    if missing:
        raise NWBLayoutError(
            f"{path.name} has no {missing} (it has {_matlab.names(f)}); expected TVSD's "
            "THINGS_MUA_trials.mat with ALLMUA, ALLMAT and tb (for THINGS_normMUA.mat use "
            "irfa_nwb.data.tvsd.load_tvsd)"
        )
    mua = f["ALLMUA"]
    tb = np.asarray(f["tb"][()], dtype=np.float64).ravel()
    if mua.ndim != 3:
        raise NWBLayoutError(
            f"{path.name}: ALLMUA has shape {mua.shape} (h5py); expected MATLAB's "
            "[electrode x trial x time], i.e. (time, trial, electrode) as h5py sees it"
        )
    n_time, n_trials, _ = mua.shape
    if tb.size != n_time:
        raise NWBLayoutError(
            f"{path.name}: tb has {tb.size} samples but ALLMUA has shape {mua.shape} (h5py: "
            "time, trial, electrode); expected MATLAB's [electrode x trial x time]"
        )
    if tb.size > 1 and not np.all(np.diff(tb) > 0):
        raise NWBLayoutError(f"{path.name}: tb (ms) is not increasing")
    allmat = np.asarray(f["ALLMAT"][()], dtype=np.float64)
    n_cols = layout.ALLMAT_COLUMNS
    if allmat.ndim == 2 and allmat.shape[1] == n_trials and allmat.shape[0] in n_cols:
        allmat = allmat.T  # back to MATLAB's orientation: one row per trial
    elif not (allmat.ndim == 2 and allmat.shape[0] == n_trials):
        raise NWBLayoutError(
            f"{path.name}: ALLMAT has shape {allmat.shape} (h5py) for {n_trials} trials; "
            "expected MATLAB's [trial x 6] (or x 7), i.e. (6, n_trials) as h5py sees it"
        )
    columns = layout.ALLMAT_COLUMNS.get(allmat.shape[1])
    if columns is None:
        raise NWBLayoutError(
            f"{path.name}: ALLMAT has {allmat.shape[1]} columns; expected 6 ([trial_idx "
            "train_idx test_idx rep count day]) or 7 (with correct before day)"
        )
    return mua, allmat, tb, columns


def _resolve_mapping(
    channel_mapping: Any, path: Path, n_electrodes: int
) -> tuple[np.ndarray, str]:
    if channel_mapping is False:
        warnings.warn(
            "channel_mapping=False: the electrodes are kept in the order of THINGS_MUA_trials"
            ".mat, which is the recording system's, not the arrays' (TVSD README); arrays and "
            "areas are then wrong for TVSD's own files",
            UserWarning,
            stacklevel=3,
        )
        return np.arange(n_electrodes), "none: file order kept (channel_mapping=False)"
    if channel_mapping is None:
        found = layout.find_channel_mapping(path)
        if found is None:
            raise InputError(
                f"THINGS_MUA_trials.mat stores the electrodes in the recording system's order; "
                f"the TVSD authors' mapping to array order (_logs/1024chns_mapping_20220105.mat"
                f" on G-Node GIN, variable 'mapping') was not found next to {path.name} (looked "
                f"in {path.parent / '_logs'} and {path.parent}). Pass channel_mapping=<that "
                "file> or a 0-based permutation, or channel_mapping=False to keep the file "
                "order (arrays and areas would then be wrong)"
            )
        channel_mapping = found
    return layout.read_channel_mapping(channel_mapping, n_electrodes)


def _block_shape(
    n_samples: int, n_trials: int, n_electrodes: int, itemsize: int, block_size: int | None,
    max_block_bytes: int,
) -> tuple[int, int]:
    """(trials, electrodes) per block: all electrodes unless one trial exceeds the budget."""
    if max_block_bytes < 1:
        raise InputError(f"max_block_bytes must be positive, got {max_block_bytes}")
    per_trial = n_samples * n_electrodes * itemsize
    if per_trial <= max_block_bytes:
        n_el = n_electrodes
    else:
        n_el = max(1, max_block_bytes // (n_samples * itemsize))
    if block_size is not None:
        if int(block_size) < 1:
            raise InputError(f"block_size must be a positive number of trials, got {block_size}")
        n_tr = int(block_size)
    else:
        n_tr = max(1, max_block_bytes // (n_samples * n_el * itemsize))
    return min(n_tr, max(n_trials, 1)), min(n_el, n_electrodes)


def _window_means(
    mua: Any,
    lo: int,
    hi: int,
    spans: list[tuple[int, int]],
    window_of: np.ndarray,
    block: tuple[int, int],
    progress: bool,
) -> tuple[np.ndarray, int]:
    """Per-trial window means, recording order: ``(n_trials, n_electrodes)`` float64.

    ``window_of[e]`` is the index into ``spans`` of recorded electrode ``e`` (-1: not needed,
    left NaN); ``spans`` are sample ranges ``[i0, i1)`` inside ``[lo, hi)``.
    """
    _, n_trials, n_elec = mua.shape
    n_tr, n_el = block
    dtype = mua.dtype if mua.dtype.kind == "f" else np.dtype(np.float64)
    buf = np.empty((hi - lo, n_tr, n_el), dtype=dtype)
    out = np.full((n_trials, n_elec), np.nan)
    starts = [(t, e) for t in range(0, n_trials, n_tr) for e in range(0, n_elec, n_el)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(starts), desc="THINGS_MUA_trials", unit="block")
    try:
        for t0, e0 in starts:
            t1, e1 = min(t0 + n_tr, n_trials), min(e0 + n_el, n_elec)
            wanted = window_of[e0:e1]
            if np.all(wanted < 0):
                if bar is not None:
                    bar.update(1)
                continue
            mua.read_direct(
                buf,
                source_sel=np.s_[lo:hi, t0:t1, e0:e1],
                dest_sel=np.s_[:, : t1 - t0, : e1 - e0],
            )
            view = buf[:, : t1 - t0, : e1 - e0]
            has_nan = bool(np.isnan(view).any())
            for w, (i0, i1) in enumerate(spans):
                cols = np.flatnonzero(wanted == w)
                if cols.size == 0:
                    continue
                seg = view[i0 - lo : i1 - lo]
                if has_nan:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
                        means = np.nanmean(seg, axis=0, dtype=np.float64)
                else:
                    means = np.add.reduce(seg, axis=0, dtype=np.float64) / (i1 - i0)
                out[t0:t1, e0 + cols] = means[:, cols]
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out, len(starts)


def _zscore_by_day(
    values: np.ndarray, groups: np.ndarray, columns: np.ndarray
) -> int:
    """Z-score ``values[:, columns]`` in place within every group of rows (ddof=1, NaN ignored).

    Returns the number of (group, electrode) pairs left NaN (fewer than two trials, or no
    variance).
    """
    n_bad = 0
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        block = values[np.ix_(rows, columns)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(block, axis=0)
            std = np.nanstd(block, axis=0, ddof=1)
        bad = ~(std > 0)
        n_bad += int(bad.sum())
        std[bad] = np.nan
        values[np.ix_(rows, columns)] = (block - mean) / std
    return n_bad


def repeat_reliability(reps: np.ndarray, *, min_stimuli: int = 3) -> np.ndarray:
    """Mean Pearson r between repeats, across stimuli, per unit (TVSD's ``reliab``).

    Parameters
    ----------
    reps : array ``(n_repeats, n_stimuli, n_units)``
        Responses per repeat; NaN where a stimulus lacks that repeat.
    min_stimuli : int
        A pair of repeats counts only when both have at least this many stimuli in common.

    Returns
    -------
    float64 array ``(n_units,)``
        The average over all pairs of repeats ``(j, k)``, ``j < k``, of the correlation
        between repeat ``j`` and repeat ``k`` over the stimuli (as ``1 - pdist(...,
        'correlation')`` in the authors' ``norm_MUA.m``); NaN when no pair counts.
    """
    reps = np.asarray(reps, dtype=np.float64)
    n_rep, _, n_units = reps.shape
    total = np.zeros(n_units)
    count = np.zeros(n_units)
    for j in range(n_rep):
        for k in range(j + 1, n_rep):
            a, b = reps[j], reps[k]
            ok = np.isfinite(a) & np.isfinite(b)
            n = ok.sum(axis=0)
            a0 = np.where(ok, a, 0.0)
            b0 = np.where(ok, b, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                ma = a0.sum(axis=0) / n
                mb = b0.sum(axis=0) / n
                da = np.where(ok, a - ma, 0.0)
                db = np.where(ok, b - mb, 0.0)
                r = (da * db).sum(axis=0) / np.sqrt((da**2).sum(axis=0) * (db**2).sum(axis=0))
            use = (n >= min_stimuli) & np.isfinite(r)
            total[use] += r[use]
            count[use] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _test_repeats(
    values: np.ndarray, test_rows: np.ndarray, test_image: np.ndarray
) -> np.ndarray:
    """``(n_repeats, n_test_images, n_units)``: the k-th presentation (file order) of each."""
    uniq, inverse = np.unique(test_image, return_inverse=True)
    rep = np.zeros(len(test_rows), dtype=np.int64)
    seen: dict[int, int] = {}
    for i, k in enumerate(inverse.tolist()):
        rep[i] = seen.get(k, 0)
        seen[k] = rep[i] + 1
    out = np.full((int(rep.max()) + 1 if rep.size else 0, len(uniq), values.shape[1]), np.nan)
    out[rep, inverse] = values[test_rows]
    return out


@dataclass
class _Trials:
    """What each trial showed (``ALLMAT``), in file order; ``order`` sorts by ``trial_idx``."""

    stimulus_id: np.ndarray
    split: np.ndarray
    is_test: np.ndarray
    test_idx: np.ndarray
    day: np.ndarray
    order: np.ndarray
    n_train: int
    n_test: int
    things_paths: tuple[list[str], list[str]] | None


def _trial_info(
    allmat: np.ndarray, columns: tuple[str, ...], path: Path, images_file: Any
) -> _Trials:
    col = {name: k for k, name in enumerate(columns)}
    train_idx = allmat[:, col["train_idx"]]
    test_idx = allmat[:, col["test_idx"]]
    is_train, is_test = train_idx > 0, test_idx > 0
    if np.any(is_train == is_test):
        bad = int(np.flatnonzero(is_train == is_test)[0])
        raise NWBLayoutError(
            f"{path.name}: ALLMAT row {bad} has train_idx {train_idx[bad]:g} and test_idx "
            f"{test_idx[bad]:g}; every trial shows exactly one training or one test image"
        )
    things_paths = None
    if images_file is not None:
        things_paths = read_things_paths(images_file)
        n_train, n_test = len(things_paths[0]), len(things_paths[1])
        if train_idx.max(initial=0) > n_train or test_idx.max(initial=0) > n_test:
            raise InputError(
                f"ALLMAT refers to training image {int(train_idx.max())} / test image "
                f"{int(test_idx.max())} but things_imgs lists {n_train} / {n_test}"
            )
    else:
        n_train, n_test = int(train_idx.max(initial=0)), int(test_idx.max(initial=0))
    return _Trials(
        stimulus_id=np.where(is_train, train_idx - 1, n_train + test_idx - 1).astype(np.int64),
        split=np.where(is_train, "train", "test"),
        is_test=is_test,
        test_idx=test_idx,
        day=allmat[:, col["day"]],
        order=np.argsort(allmat[:, col["trial_idx"]], kind="stable"),
        n_train=n_train,
        n_test=n_test,
        things_paths=things_paths,
    )


def _spans(
    tb: np.ndarray, areas: np.ndarray, win_ms: Mapping[str, tuple[float, float]]
) -> tuple[list[str], list[tuple[int, int]], np.ndarray]:
    """Areas in use, their sample ranges ``[i0, i1)`` of ``tb``, window index per electrode."""
    present = sorted(set(areas[areas != ""].tolist()))
    unknown = [a for a in present if a not in win_ms]
    if unknown:
        raise InputError(
            f"no response window for areas {unknown}; give windows= for every area of "
            f"array_areas (windows are given for {sorted(win_ms)})"
        )
    spans = []
    for area in present:
        a, b = win_ms[area]
        i0, i1 = (int(i) for i in np.searchsorted(tb, [a, b], side="left"))
        if i1 <= i0:
            raise InputError(
                f"the {area} window [{a}, {b}) ms holds no sample of tb "
                f"({tb[0]:g} to {tb[-1]:g} ms)"
            )
        spans.append((i0, i1))
    window = np.full(areas.size, -1, dtype=np.int64)
    for w, area in enumerate(present):
        window[areas == area] = w
    return present, spans, window


def _selection(
    mapped: np.ndarray,
    reliability: np.ndarray,
    min_reliability: float | None,
    rf: Sequence[np.ndarray] | None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Electrodes kept (physical order) and how many pass each step."""
    keep = mapped.copy()
    counts = {"n_electrodes_file": int(mapped.size), "n_electrodes_mapped": int(mapped.sum())}
    if min_reliability is not None:
        keep &= reliability > float(min_reliability)
        counts["n_electrodes_reliable"] = int(keep.sum())
    if rf is not None:
        known = np.isfinite(rf[0]) & np.isfinite(rf[1])
        counts["n_electrodes_with_rf"] = int((mapped & known).sum())
        keep &= known
    counts["n_electrodes_selected"] = int(keep.sum())
    if not keep.any():
        raise InputError(
            f"no electrode passes the selection ({counts}); lower min_reliability or check "
            "array_areas / channel_mapping / rf_file"
        )
    return keep, counts


def load_tvsd_trials(
    trials_file: str | os.PathLike,
    *,
    channel_mapping: Any = None,
    array_areas: Mapping[int, str | None] | None = None,
    channels_per_array: int = CHANNELS_PER_ARRAY,
    windows: Mapping[str, Sequence[float]] | None = None,
    repeats: str = "average",
    min_reliability: float | None = 0.4,
    normmua_file: str | os.PathLike | None = None,
    rf_file: Any = None,
    rf_variables: Sequence[str] = RF_VARIABLES,
    images_file: str | os.PathLike | None = None,
    image_root: str | os.PathLike | None = None,
    images: Any = None,
    image_size: tuple[int, int] | None = None,
    block_size: int | None = None,
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
    progress: bool = False,
) -> xr.Dataset:
    """Read ``THINGS_MUA_trials.mat`` with the IRFA paper's preprocessing, in bounded memory.

    See the module docstring for the file and the steps. Choices that no public source fixes
    are marked *(unconfirmed)* and described in ``docs/user_guide.md`` (TVSD).

    Parameters
    ----------
    trials_file : path-like
        ``THINGS_MUA_trials.mat`` (MATLAB v7.3).
    channel_mapping : path-like, sequence of int or False, optional
        The recording-order -> array-order permutation: a ``.mat`` file with the authors'
        1-based ``mapping`` (``physical = recorded(mapping)``), or the permutation as 0-based
        integers (``physical[i] = recorded[order[i]]``). Default: the one file matching
        ``*1024chns_mapping*.mat`` in ``_logs/`` next to ``trials_file`` (or its folder);
        none found is an error. ``False`` keeps the file order, with a warning.
    array_areas : mapping int -> str or None, optional
        Area of each array (1-based, physical order); ``None`` leaves an array out. Default
        :data:`~irfa_nwb.data.tvsd.MONKEY_N_ARRAY_AREAS`; monkey F:
        :data:`~irfa_nwb.data.tvsd.MONKEY_F_ARRAY_AREAS`.
    channels_per_array : int
        Electrodes per array (64).
    windows : mapping area -> (start, stop), optional
        Response window per area in **seconds** after onset, ``[start, stop)``, compared with
        ``tb`` (ms) after conversion. Default :data:`~irfa_nwb.data.tvsd.IRFA_WINDOWS`
        (V1 0-0.133, V4 0.033-0.166, IT 0.066-0.199). Every area of a kept array needs one.
    repeats : {"average", "keep"}
        Average the test repeats (default, as the paper: dims ``(stimulus_id, unit)``, coord
        ``n_repeats``) or keep them (dims ``(stimulus_id, repeat, unit)``, NaN where a
        stimulus was shown fewer times: every training image has one presentation, so this
        is ~30 times larger).
    min_reliability : float or None
        Keep electrodes whose reliability is above this (0.4 in the paper); ``None`` keeps all.
    normmua_file : path-like, optional
        ``THINGS_normMUA.mat``: take the reliability from its ``reliab`` (averaged over repeat
        pairs), as the paper's code does. Without it the reliability is computed from the test
        repeats as preprocessed here (:func:`repeat_reliability`) *(unconfirmed: the authors'
        ``reliab`` comes from their own windows and normalisation, so values differ)*.
    rf_file : path-like, (rf_x, rf_y), None or False
        Receptive-field centres per electrode (physical order): a ``.mat`` file with
        ``rf_variables`` (``THINGS_RFs.mat`` of the MonkeySee code), or the two arrays.
        Electrodes without a finite centre are left out (the paper's selection) and the
        centres become the ``rf_x`` / ``rf_y`` coords (in the file's units). ``None``: not
        known; a warning says that this part of the selection is skipped. ``False``: skip it
        silently.
    rf_variables : (str, str)
        Names of the x and y centre variables in ``rf_file``.
    images_file, image_root, images, image_size
        As in :func:`~irfa_nwb.data.tvsd.load_tvsd`: ``_logs/things_imgs.mat`` and the THINGS
        folder, or the images directly (train images then test images), or ``False``.
    block_size : int, optional
        Trials per block read from ``ALLMUA``; default: as many as fit in
        ``max_block_bytes``.
    max_block_bytes : int
        Bound on one block (default 64 MiB). Peak memory is about twice this (the block, plus
        a NaN-free copy of a window when ``ALLMUA`` has NaNs) plus the results.
    progress : bool
        Show a progress bar (tqdm) over the blocks.

    Returns
    -------
    xarray.Dataset
        ``responses`` float32 z-scores, ``stimulus_id`` int64 (training images 0..n_train-1
        = ``train_idx`` - 1, then test images n_train + ``test_idx`` - 1, as
        :func:`~irfa_nwb.data.tvsd.load_tvsd` numbers them; ``n_train`` from ``images_file``
        when given, else the largest ``train_idx``), ``split`` per stimulus, ``start_time``
        NaN (the file has no presentation times; with ``repeats="keep"``), unit coords
        ``unit_id`` (electrode in array order, 0-based), ``electrode_group``
        ("array01"...), ``area``, ``reliability``, ``window_start`` / ``window_stop`` (s),
        ``recording_channel`` (0-based column of ``ALLMUA``), ``rf_x`` / ``rf_y`` when known;
        ``images`` (with ``things_path``) when asked. ``attrs``: source, windows and their
        convention, normalisation, channel mapping, reliability and RF sources, selection
        counts, blocks read.

    Raises
    ------
    InputError
        No channel mapping found, a window that holds no sample of ``tb``, an area without a
        window, no electrode left after the selection, bad arguments.
    NWBLayoutError
        The file does not have TVSD's trials layout (the message says what it has).
    """
    if repeats not in ("average", "keep"):
        raise InputError(f"repeats must be 'average' or 'keep'; got {repeats!r}")
    path = Path(trials_file)
    win_ms = _windows_ms(IRFA_WINDOWS if windows is None else windows)
    with _matlab.open_v73(path, "TVSD's THINGS_MUA_trials.mat") as f:
        mua, allmat, tb, columns = _read_layout(f, path)
        _, n_trials, n_elec = mua.shape
        # everything but ALLMUA is read and checked first: the long read comes last
        order, mapping_desc = _resolve_mapping(channel_mapping, path, n_elec)
        arrays, areas = layout.array_areas(n_elec, channels_per_array, array_areas)
        used, spans, window_phys = _spans(tb, areas, win_ms)
        trials = _trial_info(allmat, columns, path, images_file)
        reliability, reliability_source = None, ""
        if normmua_file is not None:
            reliability = read_reliability(normmua_file)
            if reliability.size != n_elec:
                raise InputError(
                    f"{Path(normmua_file).name} has reliab for {reliability.size} electrodes, "
                    f"the trials file has {n_elec}"
                )
            reliability_source = f"{Path(normmua_file).resolve()}: reliab averaged over pairs"
        rf = None
        if rf_file is None:
            rf_source = "none (RF filter skipped)"
        elif rf_file is False:
            rf_source = "none (RF filter skipped: rf_file=False)"
        else:
            *rf, rf_source = layout.read_rf_centres(rf_file, n_elec, rf_variables)
        image_set, paths = tvsd_images(
            n_train=trials.n_train,
            n_test=trials.n_test,
            images_file=images_file,
            image_root=image_root,
            images=images,
            image_size=image_size,
            things_paths=trials.things_paths,
        )

        window_rec = np.full(n_elec, -1, dtype=np.int64)
        window_rec[order] = window_phys  # recorded channel order[i] is physical channel i
        lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
        itemsize = mua.dtype.itemsize if mua.dtype.kind == "f" else 8
        block = _block_shape(hi - lo, n_trials, n_elec, itemsize, block_size, max_block_bytes)
        logger.info(
            "reading ALLMUA %s (h5py) in blocks of %d trials x %d electrodes, samples %d:%d",
            mua.shape, block[0], block[1], lo, hi,
        )
        values, n_blocks = _window_means(mua, lo, hi, spans, window_rec, block, progress)

    # z-score per electrode, per day, training and test trials separately
    _, groups = np.unique(np.stack([trials.day, trials.is_test.astype(np.float64)]), axis=1,
                          return_inverse=True)
    n_degenerate = _zscore_by_day(values, groups.ravel(), np.flatnonzero(window_rec >= 0))
    if n_degenerate:
        warnings.warn(
            f"{n_degenerate} (electrode, day, split) groups have fewer than two trials or no "
            "variance: their z-scores are NaN",
            UserWarning,
            stacklevel=2,
        )
    if reliability is None:
        test_rows = np.flatnonzero(trials.is_test)
        reps = _test_repeats(values, test_rows, trials.test_idx[test_rows])
        reliability = repeat_reliability(reps)[order]
        reliability_source = (
            "computed: mean over pairs of repeats of the Pearson r across test images of the "
            "window means z-scored here (repeat k = k-th presentation in the file)"
        )
    if rf is None and rf_file is None:
        warnings.warn(
            "no receptive-field centres (rf_file=): the paper also leaves out electrodes "
            "without a known RF centre; that part of the selection is skipped. Pass rf_file= "
            "(THINGS_RFs.mat: all_centrex, all_centrey) or rf_file=False to silence this",
            UserWarning,
            stacklevel=2,
        )
    keep, counts = _selection(areas != "", reliability, min_reliability, rf)
    phys = np.flatnonzero(keep)

    # the Dataset, presentations in trial order
    cols = order[phys]
    responses = np.empty((n_trials, cols.size), dtype=np.float32)
    for start in range(0, n_trials, 4096):  # no float64 copy of the whole selection
        rows = trials.order[start : start + 4096]
        responses[start : start + rows.size] = values[rows][:, cols]
    del values
    units = pd.DataFrame(
        {
            "unit_id": phys.astype(np.int64),
            "electrode_group": [f"array{a:02d}" for a in arrays[phys]],
            "area": areas[phys],
        }
    )
    if rf is not None:
        units["rf_x"], units["rf_y"] = rf[0][phys], rf[1][phys]
    extra_units = {
        "reliability": reliability[phys].astype(np.float64),
        "window_start": np.array([win_ms[a][0] / 1000.0 for a in areas[phys]]),
        "window_stop": np.array([win_ms[a][1] / 1000.0 for a in areas[phys]]),
        "recording_channel": cols.astype(np.int64),
    }
    attrs: dict[str, Any] = {
        "source": str(path.resolve()),
        "dataset": "TVSD (THINGS Ventral Stream Spiking Dataset, Papale et al. 2025)",
        "responses_source": "ALLMUA",
        "responses_kind": "zscored_window_mean",
        "value_units": "z-score of the MUA window mean (dimensionless)",
        "windows": [f"{a}: {win_ms[a][0] / 1000.0} {win_ms[a][1] / 1000.0}" for a in used],
        "window_convention": "samples with start <= tb < stop (tb in ms after onset)",
        "normalization": (
            "z-score per electrode and recording day (ALLMAT day), training and test trials "
            "separately (mean and standard deviation with ddof=1 of that day's trials)"
            + ("; test repeats averaged after z-scoring" if repeats == "average" else "")
        ),
        "channel_mapping": mapping_desc,
        "array_areas": layout.describe_areas(array_areas),
        "reliability_source": reliability_source,
        "min_reliability": "none" if min_reliability is None else float(min_reliability),
        "rf_source": rf_source,
        **counts,
        "n_trials": int(n_trials),
        "n_days": int(np.unique(trials.day).size),
        "n_train_images": int(trials.n_train),
        "n_test_images": int(trials.n_test),
        "block_trials": int(block[0]),
        "block_electrodes": int(block[1]),
        "n_blocks": int(n_blocks),
        "irfa_nwb_version": __version__,
    }
    if image_set is not None:
        attrs["images_source"] = image_set.origin
    return build_dataset(
        responses,
        units,
        trials.stimulus_id[trials.order],
        np.full(n_trials, np.nan),
        image_set,
        attrs,
        split=trials.split[trials.order],
        extra_unit_coords=extra_units,
        extra_image_coords=things_path_coord(paths, image_set),
        repeats="keep" if repeats == "keep" else "average",
    )
