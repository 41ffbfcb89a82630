"""Read results written by :func:`irfa_nwb.results.write_results` back into the same Dataset."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError, NWBLayoutError
from .writer import DICT_ATTRS


def typed_value(text: str, kind: str) -> Any:
    """The value of a ``(value, value_type)`` row of a name / value table."""
    if kind == "none":
        return None
    if kind == "bool":
        return text == "True"
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "sequence":
        out: list[Any] = []
        for item in [v.strip() for v in text.split(",")] if text else []:
            for cast in (int, float):
                try:
                    out.append(cast(item))
                    break
                except ValueError:
                    continue
            else:
                out.append(item)
        return out
    return text


def _text(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _column(table: Any, name: str) -> np.ndarray:
    return np.asarray(table[name].data[:])


def _kv(table: Any) -> dict[str, Any]:
    return {
        key: typed_value(value, kind)
        for key, value, kind in zip(
            _text(_column(table, "field")), _text(_column(table, "value")),
            _text(_column(table, "value_type")), strict=True,
        )
    }


def _ordered_images(images: Any) -> np.ndarray:
    order = images.order_of_images
    items = list(order.data[:]) if order is not None else [
        images.images[k] for k in sorted(images.images)
    ]
    return np.stack([np.asarray(img.data[:]) for img in items])


def _typed_array(values: np.ndarray, dtype: str) -> np.ndarray:
    if dtype.startswith(("<U", "|S", "object")) or dtype == "object":
        return np.asarray(_text(values.ravel()), dtype=str).reshape(values.shape)
    if dtype == "bool":
        return values.astype(bool)
    return values.astype(np.dtype(dtype))


def read_results(path: str | os.PathLike) -> xr.Dataset:
    """Read an IRFA results file into the :class:`xarray.Dataset` that was written.

    Parameters
    ----------
    path : path-like
        NWB file written by :func:`~irfa_nwb.results.write_results` (a new results file, or a
        source file the results were appended to).

    Returns
    -------
    xarray.Dataset
        The Dataset of :func:`irfa_nwb.evaluate` (same variables, coordinates, dims and
        attrs), with ``attrs["results_file"]`` and ``attrs["identifier"]`` naming the file.

    Raises
    ------
    NWBLayoutError
        If the file holds no IRFA results.
    """
    from pynwb import NWBHDF5IO

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{path} does not exist; pass the file written by write_results")
    with NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
        nwbfile = io.read()
        analysis = nwbfile.analysis
        if "irfa_variables" not in analysis:
            raise NWBLayoutError(
                f"{path} holds no IRFA results of this irfa-nwb version (no "
                "analysis/irfa_variables); write them with irfa_nwb.write_results"
            )
        registry = analysis["irfa_variables"]
        rows = list(zip(
            _text(_column(registry, "variable")), _text(_column(registry, "dims")),
            _text(_column(registry, "kind")), _text(_column(registry, "container")),
            _text(_column(registry, "dtype")), _text(_column(registry, "stored_dims")),
            strict=True,
        ))
        summary = _kv(analysis["irfa_summary"]) if "irfa_summary" in analysis else {}
        coords: dict[str, Any] = {}
        data: dict[str, Any] = {}
        for name, dims, kind, where, dtype, stored in rows:
            if where == "irfa_summary":
                values = np.asarray(summary.pop(name))
            elif hasattr(analysis[where], "order_of_images"):
                values = _ordered_images(analysis[where])
            else:
                values = _column(analysis[where], name)
            full, kept = tuple(dims.split()), stored.split()
            axes = iter(values.shape)
            shape = tuple(next(axes) if d in kept else 1 for d in full)
            values = _typed_array(np.asarray(values).reshape(shape), dtype)
            (coords if kind == "coord" else data)[name] = (full, values)
        attrs: dict[str, Any] = dict(summary)
        for key, where in DICT_ATTRS.items():
            if where in analysis:
                attrs[key] = _kv(analysis[where])
        attrs["results_file"] = str(path.absolute())
        attrs["identifier"] = str(nwbfile.identifier)
    return xr.Dataset(data, coords=coords, attrs=attrs)


__all__ = ["read_results", "typed_value"]
