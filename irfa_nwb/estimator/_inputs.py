"""Validation and conversion of the estimator's inputs (NumPy or xarray, never NWB)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

UNIT_DIM = "unit"


def _is_dataarray(obj: Any) -> bool:
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a dependency
        return False
    return isinstance(obj, xr.DataArray)


@dataclass
class Responses:
    """Responses as a float32 matrix plus what is needed to label outputs."""

    values: np.ndarray  # (n_samples, n_units) float32
    sample_dim: str | None = None  # name of the sample dim when the input was an xarray
    sample_coords: dict[str, Any] = field(default_factory=dict)
    unit_ids: np.ndarray | None = None
    groups: np.ndarray | None = None  # electrode_group coord, when present


def as_responses(X: Any, *, name: str = "X") -> Responses:
    """Check and convert responses ``(n_samples, n_units)``.

    Accepts a NumPy array (or anything ``np.asarray`` takes) or an ``xarray.DataArray`` with a
    ``unit`` dim and one sample dim (``presentation``, ``stimulus``...).
    """
    if _is_dataarray(X):
        if UNIT_DIM not in X.dims:
            raise InputError(
                f"{name} is a DataArray with dims {X.dims}; it needs a {UNIT_DIM!r} dim "
                f"(responses are (sample, unit)). Rename yours with X.rename({{...: 'unit'}})."
            )
        if X.ndim != 2:
            raise InputError(
                f"{name} has dims {X.dims}; IRFA takes (sample, unit) responses. Average or "
                "select time bins first (e.g. X.mean('time_bin'))."
            )
        sample_dim = next(d for d in X.dims if d != UNIT_DIM)
        X = X.transpose(sample_dim, UNIT_DIM)
        coords = {
            k: v for k, v in X.coords.items() if set(v.dims) <= {sample_dim} and k != UNIT_DIM
        }
        unit_ids = None
        for key in ("unit_id", UNIT_DIM):
            if key in X.coords and X.coords[key].dims == (UNIT_DIM,):
                unit_ids = np.asarray(X.coords[key].values)
                break
        groups = (
            np.asarray(X.coords["electrode_group"].values).astype(str)
            if "electrode_group" in X.coords
            else None
        )
        values = np.asarray(X.values)
        out = Responses(values, sample_dim, coords, unit_ids, groups)
    else:
        try:
            values = np.asarray(X)
        except Exception as err:
            raise InputError(f"{name} could not be read as an array: {err}") from err
        out = Responses(values)
    if out.values.ndim != 2:
        raise InputError(
            f"{name} must be 2-D (n_samples, n_units); got shape {out.values.shape}"
        )
    if not np.issubdtype(out.values.dtype, np.number) or np.issubdtype(
        out.values.dtype, np.complexfloating
    ):
        raise InputError(f"{name} must hold real numbers; got dtype {out.values.dtype}")
    if out.values.shape[0] == 0 or out.values.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {out.values.shape})")
    values = out.values.astype(np.float32, copy=False)
    bad = ~np.isfinite(values)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise InputError(
            f"{name} contains {bad.sum()} NaN/inf values (first at sample {rows[0]}, unit "
            f"{cols[0]}); drop or impute them, e.g. with irfa_nwb.select_units or np.nan_to_num"
        )
    out.values = values
    return out


def as_images(y: Any, *, name: str = "y") -> tuple[np.ndarray, bool]:
    """Check and convert images to float32 ``(n, H, W, 3)`` in [0, 1].

    Accepts ``(n, H, W, 3)``, ``(n, H, W, 1)`` or ``(n, H, W)`` (grey), uint8 (0–255) or
    float in [0, 1], NumPy or xarray (dims ``(sample, y, x[, channel])``).
    Returns the array and whether the input was an xarray.
    """
    was_xr = _is_dataarray(y)
    if was_xr:
        dims = list(y.dims)
        if "channel" in dims and dims[-1] != "channel":
            y = y.transpose(*[d for d in dims if d != "channel"], "channel")
        values = np.asarray(y.values)
    else:
        values = np.asarray(y)
    if values.ndim == 3:
        values = values[..., None]
    if values.ndim != 4 or values.shape[-1] not in (1, 3):
        raise InputError(
            f"{name} must be images of shape (n, H, W, 3) or (n, H, W) (grey); got "
            f"{values.shape}. Channel-first arrays need np.moveaxis(y, 1, -1)."
        )
    if values.shape[0] == 0:
        raise InputError(f"{name} holds no images")
    if values.dtype == np.uint8:
        values = values.astype(np.float32) / 255.0
    elif np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float32, copy=False)
        if not np.isfinite(values).all():
            raise InputError(f"{name} contains NaN/inf pixel values")
        lo, hi = float(values.min()), float(values.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise InputError(
                f"{name} float pixel values must lie in [0, 1]; found [{lo:.3g}, {hi:.3g}]. "
                "Pass uint8 images (0-255) or divide by 255."
            )
        values = np.clip(values, 0.0, 1.0)
    else:
        raise InputError(
            f"{name} must be uint8 (0-255) or float in [0, 1]; got dtype {values.dtype}"
        )
    if values.shape[-1] == 1:
        values = np.repeat(values, 3, axis=-1)
    return values, was_xr


def head_layout(
    groups: Any, n_units: int, *, name: str = "groups"
) -> tuple[list[str], list[np.ndarray]]:
    """Heads (unique group labels, in order of first appearance) and their unit indices."""
    labels = np.asarray(groups)
    if labels.ndim != 1 or labels.shape[0] != n_units:
        raise InputError(
            f"{name} must give one label per unit ({n_units} units); got shape {labels.shape}"
        )
    labels = labels.astype(str)
    _, first = np.unique(labels, return_index=True)
    heads = [str(labels[i]) for i in sorted(first)]
    index = [np.flatnonzero(labels == h) for h in heads]
    return heads, index
