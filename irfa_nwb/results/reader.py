"""Read IRFA results written by :func:`irfa_nwb.results.write_results` back as xarray."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError, NWBLayoutError


def _typed(value: str, kind: str) -> Any:
    if kind == "none":
        return None
    if kind == "bool":
        return value == "True"
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "sequence":
        items = [v.strip() for v in value.split(",")] if value else []
        out: list[Any] = []
        for item in items:
            for cast in (int, float):
                try:
                    out.append(cast(item))
                    break
                except ValueError:
                    continue
            else:
                out.append(item)
        return out
    return value


def _column(table: Any, name: str) -> np.ndarray:
    return np.asarray(table[name].data[:])


def _text(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _ids(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in ("S", "O", "U"):
        return np.asarray(_text(values), dtype=object)
    return values


def _pivot(rows: list[Any], cols: list[str], values: np.ndarray) -> tuple[np.ndarray, list, list]:
    """Long (row, column, value) records to a matrix (NaN where a pair is absent)."""
    row_keys = list(dict.fromkeys(rows))
    col_keys = list(dict.fromkeys(cols))
    out = np.full((len(row_keys), len(col_keys)), np.nan)
    ri = {k: i for i, k in enumerate(row_keys)}
    ci = {k: j for j, k in enumerate(col_keys)}
    for r, c, v in zip(rows, cols, np.asarray(values, dtype=np.float64), strict=True):
        out[ri[r], ci[c]] = v
    return out, row_keys, col_keys


def _ordered_images(images: Any) -> np.ndarray:
    order = images.order_of_images
    items = list(order.data[:]) if order is not None else [
        images.images[k] for k in sorted(images.images)
    ]
    return np.stack([np.asarray(img.data[:]) for img in items])


def read_results(path: str | os.PathLike) -> xr.Dataset:
    """Read an IRFA results file into one :class:`xarray.Dataset`.

    Parameters
    ----------
    path : path-like
        NWB file written by :func:`~irfa_nwb.results.write_results` (a new results file, or a
        source file the results were appended to).

    Returns
    -------
    xarray.Dataset
        Coordinates: ``head`` (head names) with ``area`` along it, ``stimulus_id`` along
        ``stimulus``, ``epoch`` (when a history was stored), ``layer`` and ``layer_area``
        (when layer correlations were stored). Variables:

        - ``spatial_irf`` (head, y, x): spatial IRFs averaged over stimuli, and
          ``spatial_irf_per_stimulus`` (stimulus, head, y, x) when stored;
        - ``feature_irf`` (head, irf_channel) and ``feature_irf_per_stimulus``
          (stimulus, head, irf_channel);
        - ``n_units``, ``spatial_consistency``, ``feature_consistency``,
          ``feature_variability`` (head);
        - ``reconstruction`` and ``stimulus_image`` (stimulus, y, x, channel), float32 in [0, 1];
        - ``pixel_r``, ``ssim``, ``identification_rank`` and ``alexnet_<layer>`` (stimulus);
        - ``layer_correlation`` (layer_area, layer);
        - ``history_<key>`` (epoch): the training history.

        ``attrs["model_config"]`` is a dict of the estimator parameters (typed as written),
        ``attrs["source"]`` a dict of the provenance fields, and ``attrs["results_file"]``,
        ``attrs["identifier"]`` name the results file.

    Raises
    ------
    NWBLayoutError
        If the file holds no IRFA results.
    """
    from pynwb import NWBHDF5IO

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{path} does not exist; pass the file written by write_results")
    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        analysis = nwbfile.analysis
        if "irfa_heads" not in analysis or "irfa_reconstructions" not in analysis:
            raise NWBLayoutError(
                f"{path} holds no IRFA results (no analysis/irfa_heads); write them with "
                "irfa_nwb.write_results"
            )
        heads_t = analysis["irfa_heads"]
        heads = _text(_column(heads_t, "head"))
        coords: dict[str, Any] = {
            "head": ("head", heads),
            "area": ("head", _text(_column(heads_t, "area"))),
        }
        data: dict[str, Any] = {}
        spatial = analysis["irfa_spatial_irfs"]
        data["spatial_irf"] = (("head", "y", "x"), _ordered_images(spatial))
        data["feature_irf"] = (("head", "irf_channel"), _column(heads_t, "feature_irf"))
        for name in ("n_units", "spatial_consistency", "feature_consistency",
                     "feature_variability"):
            data[name] = (("head",), _column(heads_t, name))

        feat_t = analysis["irfa_feature_irfs"]
        coords["stimulus_id"] = ("stimulus", _ids(_column(feat_t, "stimulus_id")))
        data["feature_irf_per_stimulus"] = (
            ("stimulus", "head", "irf_channel"), _column(feat_t, "feature_irf")
        )
        if "irfa_spatial_irfs_per_stimulus" in analysis:
            data["spatial_irf_per_stimulus"] = (
                ("stimulus", "head", "y", "x"),
                _column(analysis["irfa_spatial_irfs_per_stimulus"], "spatial_irf"),
            )
        data["reconstruction"] = (
            ("stimulus", "y", "x", "channel"), _ordered_images(analysis["irfa_reconstructions"])
        )
        if "irfa_stimuli" in analysis:
            data["stimulus_image"] = (
                ("stimulus", "y", "x", "channel"), _ordered_images(analysis["irfa_stimuli"])
            )
        if "irfa_metrics" in analysis:
            met = analysis["irfa_metrics"]
            for name in met.colnames:
                if name != "stimulus_id":
                    data[name] = (("stimulus",), _column(met, name))
        if "irfa_layer_correlations" in analysis:
            lc = analysis["irfa_layer_correlations"]
            data["layer_correlation"], coords["layer_area"], coords["layer"] = _pivot(
                _text(_column(lc, "area")), _text(_column(lc, "layer")), _column(lc, "r")
            )
            data["layer_correlation"] = (("layer_area", "layer"), data["layer_correlation"])
            coords["layer_area"] = ("layer_area", coords["layer_area"])
            coords["layer"] = ("layer", coords["layer"])
        if "irfa_training_history" in analysis:
            hist = analysis["irfa_training_history"]
            table, epochs, names = _pivot(
                _column(hist, "epoch").tolist(), _text(_column(hist, "quantity")),
                _column(hist, "value"),
            )
            coords["epoch"] = ("epoch", np.asarray(epochs, dtype=np.int64))
            for j, name in enumerate(names):
                data[f"history_{name}"] = (("epoch",), table[:, j])
        config: dict[str, Any] = {}
        if "irfa_model_config" in analysis:
            cfg = analysis["irfa_model_config"]
            for key, value, kind in zip(
                _text(_column(cfg, "parameter")),
                _text(_column(cfg, "value")),
                _text(_column(cfg, "value_type")),
                strict=True,
            ):
                config[key] = _typed(value, kind)
        source: dict[str, str] = {}
        if "irfa_source" in analysis:
            src = analysis["irfa_source"]
            source = dict(
                zip(_text(_column(src, "field")), _text(_column(src, "value")), strict=True)
            )
        attrs = {
            "model_config": config,
            "source": source,
            "results_file": str(path),
            "identifier": str(nwbfile.identifier),
        }
    return xr.Dataset(data, coords=coords, attrs=attrs)
