"""``evaluate``: everything the paper measures about a fitted model, as one xarray Dataset.

Works on any fitted estimator with ``predict`` (IRFA and :class:`RidgeReconstruction` alike);
the inverse-receptive-field analyses run when the estimator has ``spatial_irfs`` /
``feature_irfs``. The result is the input of :func:`irfa_nwb.write_results` (which only stores
it) and of the report figures.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import xarray as xr

from .._version import __version__
from ..data import average_repeats
from ..errors import InputError
from ..imaging import resize_images, to_float_images

logger = logging.getLogger("irfa_nwb.analysis")

__all__ = ["STIMULUS_ROLES", "evaluate"]

#: ``stimulus_role`` values: trained on, held out, or unknown (the model did not record it)
STIMULUS_ROLES = ("train", "held_out", "unknown")


def _responses(data: xr.Dataset | xr.DataArray) -> tuple[xr.DataArray, xr.DataArray | None]:
    if isinstance(data, xr.Dataset):
        if "responses" not in data:
            raise InputError(
                "the Dataset has no 'responses' variable; pass irfa_nwb.load_dataset's"
            )
        data = average_repeats(data)
        resp, images = data["responses"], data.get("images")
    elif isinstance(data, xr.DataArray):
        resp, images = average_repeats(data), None
    else:
        raise InputError(
            f"evaluate takes the Dataset of irfa_nwb.load_dataset (or its responses), not "
            f"{type(data).__name__}"
        )
    if "time_bin" in resp.dims:
        raise InputError(
            "responses have time bins; average them first (ds['responses'].mean('time_bin'))"
        )
    if "stimulus_id" not in resp.dims:
        raise InputError(
            f"responses need a 'stimulus_id' dimension (they have {resp.dims}); evaluate "
            "reconstructs one image per stimulus"
        )
    return resp, images


def _roles(estimator: Any, ids: np.ndarray) -> np.ndarray:
    trained = getattr(estimator, "training_stimulus_ids_", None)
    if trained is None:
        return np.full(len(ids), "unknown")
    return np.where(np.isin(ids, np.asarray(trained)), "train", "held_out")


def _plain_params(estimator: Any) -> dict[str, Any]:
    out = {}
    for key, value in estimator.get_params(deep=False).items():
        if value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        elif isinstance(value, tuple | list) and all(
            isinstance(v, bool | int | float | str) for v in value
        ):
            out[key] = list(value)
        else:  # callables, arrays: their name / type only
            out[key] = str(getattr(value, "__qualname__", None) or type(value).__name__)
    return out


def _model_record(estimator: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "irfa_nwb_version": __version__,
    }
    for key in ("n_iter_", "interrupted_", "device_", "image_size_", "alpha_"):
        if hasattr(estimator, key):
            value = getattr(estimator, key)
            record[key.rstrip("_")] = value if isinstance(value, bool | int | float | str) \
                else str(value)
    for key, value in (getattr(estimator, "recipe_", None) or {}).items():
        record[f"recipe.{key}"] = value if isinstance(value, bool | int | float | str) \
            else str(value)
    for key, value in (getattr(estimator, "model_file_", None) or {}).items():
        record[f"file.{key}"] = str(value)
    for key, value in (getattr(estimator, "response_attrs_", None) or {}).items():
        record[f"fitted_responses.{key}"] = value if isinstance(value, bool | int | float | str) \
            else ", ".join(str(v) for v in np.ravel(value))
    for key, value in (getattr(estimator, "training_data_", None) or {}).items():
        if key in ("source", "dandiset_id", "dandiset_version", "asset_path", "asset_id",
                   "nwb_identifier", "nwb_object_id", "url"):
            record[f"training_data.{key}"] = str(value)
    return record


def _history(estimator: Any) -> dict[str, tuple]:
    history = list(getattr(estimator, "history_", None) or [])
    if not history:
        return {}
    keys = [k for k in history[0] if k != "epoch"]
    out = {}
    epochs = np.array([int(h.get("epoch", i + 1)) for i, h in enumerate(history)], np.int64)
    for key in keys:
        values = [h.get(key) for h in history]
        if all(v is None or isinstance(v, int | float | np.number) for v in values):
            column = np.array([np.nan if v is None else float(v) for v in values])
            if np.isfinite(column).any():  # a quantity never measured (no D, no validation)
                out[f"history_{key}"] = ("epoch", column)
    return {"coords": epochs, **out} if out else {}


def evaluate(
    estimator: Any,
    data: xr.Dataset | xr.DataArray,
    *,
    metrics: bool = True,
    alexnet: bool = False,
    alexnet_per_area: bool = False,
    standard_metrics: bool | tuple[str, ...] = False,
    clustering: bool = True,
    spatial_per_stimulus: bool = False,
    device: str | None = None,
    check_responses: bool = True,
) -> xr.Dataset:
    """Reconstruct every stimulus of ``data`` and measure the result.

    Parameters
    ----------
    estimator : fitted estimator
        Anything with ``predict`` (IRFA, RidgeReconstruction); IRF analyses need
        ``spatial_irfs`` and ``feature_irfs``.
    data : xarray.Dataset or DataArray
        Loaded data (:func:`irfa_nwb.load_dataset`, :func:`irfa_nwb.split_stimuli`...):
        repeats are averaged, every stimulus in it is reconstructed (pass the held-out side
        of a split to score held-out stimuli; the ``stimulus_role`` coordinate says which
        stimuli the model was trained on).
    metrics : bool, default True
        Pixel r, SSIM and identification rank per stimulus (needs ``images``).
    alexnet : bool, default False
        The paper's AlexNet layer correlations (needs pretrained AlexNet weights).
    alexnet_per_area : bool, default False
        Also per area, reconstructing with the units of one area only (the others held at
        their mean over stimuli): an approximation of the paper's per-area models (which
        are separate models trained on each area).
    standard_metrics : bool or sequence of str, default False
        The eight-metric table of NSD reconstruction work (:mod:`irfa_nwb.analysis.nsd_metrics`);
        a metric whose network weights are missing is reported with status ``missing`` and
        the reason (coords ``metric_status``, ``metric_reason``).
    clustering : bool, default True
        Cluster stimuli by feature IRFs within each area (IRFA with areas known and at least
        6 stimuli).
    spatial_per_stimulus : bool, default False
        Keep every stimulus' spatial IRFs (``stimulus × head × y × x`` numbers).
    device : str, optional
        Device of the AlexNet metric (default: the estimator's).
    check_responses : bool, default True
        Passed to the estimator's ``predict``: refuse responses of another kind, window or
        unit than those it was fitted on.

    Returns
    -------
    xarray.Dataset
        Dims ``stimulus_id`` (with coords ``stimulus_role`` and, when known, ``split`` and
        ``image_name``), ``y``, ``x``, ``channel``, ``head`` (coords ``head_area``,
        ``n_units``), ``irf_channel``, ``layer``, ``epoch``, ``model_unit``. Variables:

        - ``reconstruction``, ``stimulus_image`` (stimulus_id, y, x, channel);
        - ``pixel_r``, ``ssim``, ``identification_rank`` (stimulus_id);
        - ``spatial_irf`` (head, y, x), ``feature_irf`` (head, irf_channel), their
          per-stimulus versions, ``spatial_consistency`` / ``feature_consistency`` /
          ``feature_variability`` (head);
        - ``cluster`` (cluster_area, stimulus_id: cluster number 1..k within each area);
        - ``alexnet_r`` / ``alexnet_distance`` (layer), ``alexnet_r_by_area``
          (alexnet_area, layer); ``standard_metric`` (metric);
        - ``history_<key>`` (epoch); ``model_unit_id`` / ``model_unit_head`` (model_unit).

        Attrs: ``model`` (what made it: class, file and checksum, recipe, epochs, whether
        interrupted, the kind of responses it was fitted on), ``model_params``, ``source``
        (provenance of ``data``), summary means.
    """
    if not hasattr(estimator, "predict"):
        raise InputError(f"{type(estimator).__name__} has no predict method")
    resp, images = _responses(data)
    ids = np.asarray(resp["stimulus_id"].values)
    kwargs = {} if check_responses else {"check_responses": False}
    recon = estimator.predict(resp, **kwargs)
    recon = np.asarray(getattr(recon, "values", recon), dtype=np.float32)
    if recon.ndim != 4 or recon.shape[0] != len(ids):
        raise InputError(f"predict returned shape {recon.shape}; expected ({len(ids)}, y, x, 3)")
    size = recon.shape[1:3]
    coords: dict[str, Any] = {
        "stimulus_id": ("stimulus_id", ids),
        "stimulus_role": ("stimulus_id", _roles(estimator, ids)),
        "channel": ("channel", ["R", "G", "B"]),
    }
    for name in ("split", "image_name", "n_repeats"):
        if name in resp.coords and resp[name].dims == ("stimulus_id",):
            coords[name] = ("stimulus_id", np.asarray(resp[name].values))
    out = xr.Dataset(coords=coords)
    out["reconstruction"] = (("stimulus_id", "y", "x", "channel"), recon)
    attrs: dict[str, Any] = {}
    targets = None
    if images is not None:
        pix = images.sel(stimulus_id=ids).transpose("stimulus_id", "y", "x", "channel")
        targets = resize_images(to_float_images(pix.values, name="images"), size)
        out["stimulus_image"] = (("stimulus_id", "y", "x", "channel"), targets)
    if metrics and targets is not None:
        from .metrics import reconstruction_metrics

        met = reconstruction_metrics(targets, recon)
        for name in ("pixel_r", "ssim", "identification_rank"):
            out[name] = ("stimulus_id", np.asarray(met[name].values))
        attrs.update({k: float(v) for k, v in met.attrs.items()})
    if hasattr(estimator, "spatial_irfs") and hasattr(estimator, "feature_irfs"):
        _irf_analyses(estimator, resp, out, spatial_per_stimulus, clustering, kwargs)
    if alexnet:
        if targets is None:
            raise InputError("the AlexNet metric needs the stimulus images in data")
        _alexnet(estimator, resp, out, targets, recon, alexnet_per_area, device, kwargs)
    if standard_metrics:
        if targets is None:
            raise InputError("the standard metrics need the stimulus images in data")
        _standard(out, targets, recon, standard_metrics, device)
    history = _history(estimator)
    if history:
        out = out.assign_coords(epoch=("epoch", history.pop("coords")))
        for name, value in history.items():
            out[name] = value
    unit_ids = getattr(estimator, "unit_ids_", None)
    if unit_ids is not None:
        heads = np.empty(len(unit_ids), dtype=object)
        for head, cols in zip(getattr(estimator, "heads_", []),
                              getattr(estimator, "head_units_", []), strict=False):
            heads[cols] = head
        out["model_unit_id"] = ("model_unit", np.asarray(unit_ids))
        if hasattr(estimator, "heads_"):
            out["model_unit_head"] = ("model_unit", heads.astype(str))
    attrs["model"] = _model_record(estimator)
    attrs["model_params"] = _plain_params(estimator)
    attrs["source"] = {
        str(k): (v if isinstance(v, str | int | float) else ", ".join(map(str, np.ravel(v))))
        for k, v in (getattr(data, "attrs", {}) or {}).items()
        if isinstance(v, str | int | float | list | tuple | np.ndarray)
    }
    roles = out["stimulus_role"].values
    attrs["n_train_stimuli"] = int((roles == "train").sum())
    attrs["n_held_out_stimuli"] = int((roles == "held_out").sum())
    if attrs["n_train_stimuli"]:
        logger.warning(
            "%d of the %d evaluated stimuli were used to train the model: their metrics are "
            "inflated (score held-out stimuli, e.g. the test side of irfa_nwb.split_stimuli)",
            attrs["n_train_stimuli"], len(roles),
        )
    out.attrs.update(attrs)
    return out


def _irf_analyses(estimator, resp, out: xr.Dataset, per_stimulus: bool, clustering: bool,
                  kwargs: dict):
    from . import fields as fld

    spatial = estimator.spatial_irfs(resp, **kwargs)
    feature = estimator.feature_irfs(resp, **kwargs)
    sp = np.asarray(spatial.values if hasattr(spatial, "values") else spatial, np.float32)
    ft = np.asarray(feature.values if hasattr(feature, "values") else feature, np.float64)
    heads = [str(h) for h in estimator.heads_]
    areas = getattr(estimator, "head_areas_", None)
    n_units = [len(i) for i in estimator.head_units_]
    out.coords["head"] = ("head", heads)
    if areas is not None:
        out.coords["head_area"] = ("head", list(areas))
    out.coords["n_units"] = ("head", np.asarray(n_units, dtype=np.int64))
    out["spatial_irf"] = (("head", "y", "x"), sp.mean(axis=0))
    out["feature_irf"] = (("head", "irf_channel"), ft.mean(axis=0))
    out["feature_irf_per_stimulus"] = (("stimulus_id", "head", "irf_channel"), ft)
    if per_stimulus:
        out["spatial_irf_per_stimulus"] = (("stimulus_id", "head", "y", "x"), sp)
    out["spatial_consistency"] = ("head", fld.spatial_consistency(sp).values)
    out["feature_consistency"] = ("head", fld.feature_consistency(ft).values)
    out["feature_variability"] = ("head", fld.feature_variability(ft).values)
    if clustering and areas is not None and len(out["stimulus_id"]) >= 6:
        from .clustering import cluster_stimuli

        found = cluster_stimuli(ft, list(areas), heads=heads,
                                stimulus_ids=out["stimulus_id"].values)
        names = list(found)
        out.coords["cluster_area"] = ("cluster_area", names)
        # cluster numbers 1..k (0-based labels read as yes / no flags in NWB tools)
        out["cluster"] = (("cluster_area", "stimulus_id"),
                          np.stack([found[a].labels for a in names]).astype(np.int64) + 1)
        out["n_clusters"] = ("cluster_area", np.array([found[a].k for a in names], np.int64))


def _alexnet(estimator, resp, out, targets, recon, per_area: bool, device, kwargs: dict):
    from .alexnet import alexnet_features, alexnet_layer_correlations, load_alexnet

    model = load_alexnet()
    dev = device or str(getattr(estimator, "device_", "cpu") or "cpu")
    target_features = alexnet_features(targets, model=model, device=dev)
    corr = alexnet_layer_correlations(targets, recon, model=model, device=dev,
                                      stimulus_features=target_features)
    out.coords["layer"] = ("layer", [str(v) for v in corr.layer.values])
    out["alexnet_r"] = ("layer", np.asarray(corr["overall"].values, np.float64))
    out["alexnet_distance"] = ("layer", np.asarray(corr["mean_squared_difference"].values,
                                                   np.float64))
    if per_area and "area" in resp.coords:
        area = np.asarray(resp["area"].values).astype(str)
        mean = resp.mean("stimulus_id")
        rows, names = [], []
        for name in dict.fromkeys(area.tolist()):
            keep = area == name
            if keep.all():
                continue
            ablated = resp.where(xr.DataArray(keep, dims="unit"), mean).astype(resp.dtype)
            pred = np.asarray(estimator.predict(ablated.transpose(*resp.dims), **kwargs),
                              np.float32)
            rows.append(np.asarray(alexnet_layer_correlations(
                targets, pred, model=model, device=dev, stimulus_features=target_features,
            )["overall"].values))
            names.append(name)
        if rows:
            out.coords["alexnet_area"] = ("alexnet_area", names)
            out["alexnet_r_by_area"] = (("alexnet_area", "layer"), np.stack(rows))


def _standard(out, targets, recon, which, device) -> None:
    from .nsd_metrics import STANDARD_METRICS, standard_metrics

    names = STANDARD_METRICS if which is True else tuple(which)
    table = standard_metrics(targets, recon, metrics=names, device=device)
    out.coords["metric"] = ("metric", [str(m) for m in table.index])
    out["standard_metric"] = ("metric", table["value"].to_numpy(dtype=np.float64))
    for column in ("better", "status", "reason"):
        out.coords[f"metric_{column}"] = ("metric", table[column].astype(str).to_numpy())
