"""Validation and pairing of the estimators' inputs (NumPy or xarray, never NWB).

Responses ``X`` are NumPy ``(n_samples, n_units)`` or an ``xarray.DataArray`` with a ``unit``
dim and one or more sample dims: ``("stimulus_id", "unit")`` (repeats averaged),
``("stimulus_id", "repeat", "unit")`` (every presentation; NaN rows are presentations that did
not happen and are skipped), or any other sample dim. Images ``y`` are NumPy ``(n, H, W[, 3])``
row-aligned with ``X``, or a DataArray with a ``stimulus_id`` index: then each sample of ``X``
gets the image of its ``stimulus_id``, so ``fit(ds["responses"], ds["images"])`` works on a
loaded Dataset, averaged or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..imaging import resize_images, to_float_images

UNIT_DIM = "unit"
STIMULUS_KEY = "stimulus_id"


def _is_dataarray(obj: Any) -> bool:
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a dependency
        return False
    return isinstance(obj, xr.DataArray)


@dataclass
class Responses:
    """Responses as a float32 matrix, plus what is needed to pair them and label outputs.

    ``values`` holds the rows that are present (``present`` marks them among all
    ``n_rows`` samples; missing repeats are absent). Outputs are made for the present rows and
    put back into the sample shape with NaN elsewhere.
    """

    values: np.ndarray  # (n_present, n_units) float32
    present: np.ndarray  # (n_rows,) bool
    sample_dims: tuple[str, ...] = ()  # () for NumPy input
    sample_shape: tuple[int, ...] = ()
    sample_coords: dict[str, Any] = field(default_factory=dict)
    stimulus_ids: np.ndarray | None = None  # (n_rows,), when known
    unit_ids: np.ndarray | None = None
    groups: np.ndarray | None = None  # electrode_group coord, when present
    areas: np.ndarray | None = None  # area coord, when present

    @property
    def labelled(self) -> bool:
        return bool(self.sample_dims)

    @property
    def present_stimulus_ids(self) -> np.ndarray | None:
        return None if self.stimulus_ids is None else self.stimulus_ids[self.present]


def _stimulus_ids_of(da: Any, sample_dims: tuple[str, ...]) -> np.ndarray | None:
    """One stimulus id per (flattened) sample, from a ``stimulus_id`` dim or coordinate."""
    if STIMULUS_KEY not in da.coords:
        return None
    coord = da.coords[STIMULUS_KEY]
    if not set(coord.dims) <= set(sample_dims):
        return None
    full = coord.broadcast_like(da.isel({UNIT_DIM: 0}, drop=True)).transpose(*sample_dims)
    return np.asarray(full.values).reshape(-1)


def _check_values(values: Any, name: str) -> np.ndarray:
    """A float32 2-D array, checked the scikit-learn way (its messages for sparse, complex,
    object, empty input); NaN / inf are checked afterwards with our own rules."""
    from sklearn.utils.validation import check_array

    try:
        return check_array(values, dtype=np.float32, ensure_all_finite=False,
                           input_name=name, estimator=None)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name}: {err}") from None


def as_responses(X: Any, *, name: str = "X") -> Responses:
    """Check and convert responses (see the module docstring).

    Rows whose values are all NaN are treated as absent (missing repeats); a row with only
    some NaN values is an error.
    """
    if _is_dataarray(X):
        if UNIT_DIM not in X.dims:
            raise InputError(
                f"{name} is a DataArray with dims {X.dims}; it needs a {UNIT_DIM!r} dim "
                f"(responses are (sample, unit)). Rename yours with X.rename({{...: 'unit'}})."
            )
        if "time_bin" in X.dims:
            raise InputError(
                f"{name} has time bins (dims {X.dims}); average or select them first, e.g. "
                "X.mean('time_bin'), or load without bins="
            )
        sample_dims = tuple(d for d in X.dims if d != UNIT_DIM)
        if not sample_dims:
            raise InputError(f"{name} has only a 'unit' dim; it needs a sample dim too")
        X = X.transpose(*sample_dims, UNIT_DIM)
        coords = {
            k: v for k, v in X.coords.items()
            if UNIT_DIM not in v.dims and set(v.dims) <= set(sample_dims)
        }
        unit_ids = None
        for key in ("unit_id", UNIT_DIM):
            if key in X.coords and X.coords[key].dims == (UNIT_DIM,):
                unit_ids = np.asarray(X.coords[key].values)
                break
        groups = (
            np.asarray(X.coords["electrode_group"].values)
            if "electrode_group" in X.coords else None
        )
        areas = np.asarray(X.coords["area"].values).astype(str) if "area" in X.coords else None
        shape = tuple(X.sizes[d] for d in sample_dims)
        values = np.asarray(X.values).reshape(-1, X.sizes[UNIT_DIM])
        values = _check_values(values, name) if values.size else values.astype(np.float32)
        out = Responses(
            values, np.ones(len(values), dtype=bool), sample_dims, shape, coords,
            _stimulus_ids_of(X, sample_dims), unit_ids, groups, areas,
        )
    else:
        if X is None:
            raise InputError(f"{name} is None; pass the responses (n_samples, n_units)")
        values = _check_values(X, name)  # 2-D (n_samples, n_units), scikit-learn's messages
        out = Responses(values, np.ones(len(values), dtype=bool))
    if out.values.shape[0] == 0 or out.values.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {out.values.shape})")
    finite = np.isfinite(out.values)
    if not finite.all():
        missing_rows = ~finite.any(axis=1)
        partial = ~finite.all(axis=1) & ~missing_rows
        if partial.any() or not out.labelled:
            bad = np.flatnonzero(partial if partial.any() else missing_rows)
            cols = np.flatnonzero(~finite[bad[0]])
            raise InputError(
                f"{name} contains NaN/inf values (sample {bad[0]}, unit {cols[0]}; "
                f"{int((~finite).sum())} in all); drop or impute them, e.g. with "
                "irfa_nwb.select_units or np.nan_to_num"
            )
        out.present = ~missing_rows
        out.values = out.values[out.present]
        if not len(out.values):
            raise InputError(f"{name} holds no responses (every value is NaN)")
    return out


def _image_values(y: Any, name: str) -> np.ndarray:
    values = np.asarray(y.values) if _is_dataarray(y) else y
    if isinstance(values, list | tuple):
        shapes = {np.shape(v) for v in values}
        if len(shapes) > 1:
            raise InputError(
                f"{name} holds images of different shapes {sorted(shapes)[:4]}; resize them to "
                "one size first (e.g. irfa_nwb.imaging.resize_images, or load_dataset(..., "
                "image_size=(64, 64)))"
            )
    try:
        return np.asarray(values)
    except ValueError as err:
        raise InputError(f"{name} could not be read as an image array: {err}") from err


#: bytes of float32 images converted (and resized) at a time: bounds the temporary copies
_IMAGE_BLOCK_BYTES = 16 * 2**20


def _raw_images(y: Any, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The image array as given (channel last) and its stimulus ids (DataArray input)."""
    ids = None
    if _is_dataarray(y):
        dims = list(y.dims)
        if "channel" in dims and dims[-1] != "channel":
            y = y.transpose(*[d for d in dims if d != "channel"], "channel")
        first = y.dims[0]
        if STIMULUS_KEY in y.coords and y.coords[STIMULUS_KEY].dims == (first,):
            ids = np.asarray(y.coords[STIMULUS_KEY].values)
    return _image_values(y, name), ids


def _float_images(
    raw: np.ndarray,
    name: str,
    *,
    rows: np.ndarray | None = None,
    size: int | None = None,
    channels_first: bool = False,
) -> np.ndarray:
    """float32 images of ``raw[rows]``, resized to ``size``, converted a block at a time.

    Memory: the result plus one block, however large the source images are. With
    ``channels_first`` the result is ``(n, 3, H, W)`` (the layout the networks train on),
    written block by block, so no second full-size copy is made to change the layout.
    """
    if raw.ndim == 0 or raw.shape[0] == 0:
        return to_float_images(raw, name=name)  # its clear error
    rows = np.arange(raw.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    per_image = 4 * int(np.prod(raw.shape[1:3])) * 3
    step = max(1, _IMAGE_BLOCK_BYTES // per_image)
    out = None
    for start in range(0, max(len(rows), 1), step):
        block = to_float_images(raw[rows[start : start + step]], name=name)
        if size is not None:
            block = resize_images(block, size)
        if channels_first:
            block = block.transpose(0, 3, 1, 2)
        if out is None:
            if len(block) == len(rows):
                return np.ascontiguousarray(block)
            out = np.empty((len(rows), *block.shape[1:]), dtype=np.float32)
        out[start : start + len(block)] = block
    return out


def as_images(y: Any, *, name: str = "y") -> tuple[np.ndarray, np.ndarray | None]:
    """Images as float32 ``(n, H, W, 3)`` in [0, 1] and their stimulus ids (DataArray input).

    Accepts ``(n, H, W, 3)``, ``(n, H, W, 1)`` or ``(n, H, W)`` (grey), uint8 (0–255) or float
    in [0, 1], NumPy or xarray (dims ``(stimulus_id | <sample dim>, y, x[, channel])``).
    """
    raw, ids = _raw_images(y, name)
    return _float_images(raw, name), ids


def image_pairing(
    resp: Responses,
    y: Any,
    *,
    name: str = "y",
    size: int | None = None,
    channels_first: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The images and, for every present row of ``resp``, the index of its image.

    Rows are paired with images by ``stimulus_id`` when both sides carry it, else row by row.
    Only the images some row uses are converted, each once however many presentations share
    it, a block at a time and resized to ``size`` on the way (so a stack of large source
    images never exists in float32 at full size); ``channels_first`` gives ``(n, 3, H, W)``.
    """
    raw, ids = _raw_images(y, name)
    if raw.ndim == 0 or raw.shape[0] == 0:
        _float_images(raw, name)  # raises the clear error for an empty / scalar input
    if ids is not None and resp.stimulus_ids is not None:
        position = {v: i for i, v in enumerate(ids.tolist())}
        wanted = resp.present_stimulus_ids.tolist()
        missing = sorted({v for v in wanted if v not in position}, key=str)
        if missing:
            raise InputError(
                f"{len(missing)} stimuli of X have no image in {name} (stimulus_id "
                f"{missing[:5]}{'...' if len(missing) > 5 else ''}); pass the images of the "
                "same data set"
            )
        used, index = np.unique([position[v] for v in wanted], return_inverse=True)
        return (_float_images(raw, name, rows=used, size=size, channels_first=channels_first),
                index.astype(np.int64))
    n_rows = len(resp.present)
    if raw.shape[0] != n_rows:
        hint = (
            f"; pass {name} as a DataArray with a 'stimulus_id' dim to pair images with "
            "samples by stimulus" if resp.stimulus_ids is not None else ""
        )
        raise InputError(
            f"X has {n_rows} samples but {name} has {raw.shape[0]} images; they must match "
            f"(one image per row of responses){hint}"
        )
    present = np.flatnonzero(resp.present).astype(np.int64)
    return (_float_images(raw, name, rows=present, size=size, channels_first=channels_first),
            np.arange(len(present)))


def paired_images(resp: Responses, y: Any, *, name: str = "y") -> np.ndarray:
    """The image of every present row of ``resp`` (see :func:`image_pairing`)."""
    images, index = image_pairing(resp, y, name=name)
    return images[index]


def head_labels(labels: Any, n_units: int, *, name: str) -> np.ndarray:
    """One clean str label per unit; NaN / None / empty labels refused."""
    arr = np.asarray(labels, dtype=object)
    if arr.ndim != 1 or arr.shape[0] != n_units:
        raise InputError(
            f"{name} must give one label per unit ({n_units} units); got shape {arr.shape}"
        )
    out = []
    for i, value in enumerate(arr.tolist()):
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            raise InputError(
                f"{name} has a missing label ({value!r}) for unit {i}; every unit needs the "
                "name of its electrode group (attention head)"
            )
        if isinstance(value, float | np.floating) and float(value).is_integer():
            value = int(value)
        text = value.decode() if isinstance(value, bytes) else str(value)
        if not text.strip():
            raise InputError(f"{name} has an empty label for unit {i}")
        out.append(text)
    return np.asarray(out, dtype=object)


def head_layout(labels: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """Heads (unique labels, in order of first appearance) and their unit indices."""
    _, first = np.unique(labels.astype(str), return_index=True)
    heads = [str(labels[i]) for i in sorted(first)]
    index = [np.flatnonzero(labels.astype(str) == h) for h in heads]
    return heads, index


def label_output(
    rows: np.ndarray, resp: Responses, dims: tuple[str, ...], coords: dict | None = None
) -> Any:
    """Put per-row outputs back into the samples' shape and labels (NumPy in, NumPy out)."""
    if not resp.labelled:
        return rows
    import xarray as xr

    full = rows
    if not resp.present.all():
        full = np.full((len(resp.present), *rows.shape[1:]), np.nan, dtype=rows.dtype)
        full[resp.present] = rows
    full = full.reshape(*resp.sample_shape, *rows.shape[1:])
    all_coords = dict(resp.sample_coords)
    all_coords.update(coords or {})
    return xr.DataArray(full, dims=(*resp.sample_dims, *dims), coords=all_coords)
