"""Write IRFA results (reconstructions, IRFs, metrics, configuration) into NWB.

Layout of the ``analysis`` section (all names start with ``irfa_``; see :data:`RESULT_NAMES`):

``irfa_spatial_irfs`` (``Images``)
    One ``GrayscaleImage`` per head (named after the head, ``/`` and ``:`` replaced by ``_``):
    the spatial IRF averaged over channels and stimuli, shape ``(y, x)`` (row = y), in head
    order (``order_of_images``); the description names the head and its area.
``irfa_heads`` (``DynamicTable``, one row per head)
    ``head``, ``area``, ``n_units``, ``feature_irf`` (``(head, irf_channel)``: feature IRF
    averaged over stimuli), ``spatial_consistency``, ``feature_consistency``,
    ``feature_variability`` (see :mod:`irfa_nwb.analysis.fields`).
``irfa_feature_irfs`` (``DynamicTable``, one row per stimulus)
    ``stimulus_id`` and ``feature_irf`` (``(stimulus, head, irf_channel)``).
``irfa_spatial_irfs_per_stimulus`` (``DynamicTable``, optional, one row per stimulus)
    ``stimulus_id`` and ``spatial_irf`` (``(stimulus, head, y, x)``).
``irfa_reconstructions`` / ``irfa_stimuli`` (``Images``)
    ``RGBImage`` per stimulus (``(y, x, 3)`` float32 in [0, 1]), in stimulus order
    (``order_of_images``), named ``stimulus_00000``...; the description holds the stimulus id.
    ``irfa_stimuli`` holds the presented images resized to the reconstruction size (the
    targets the metrics compare with).
``irfa_metrics`` (``DynamicTable``, one row per stimulus, same order)
    ``stimulus_id``, ``pixel_r``, ``ssim``, ``identification_rank`` (1 = identified among all
    stimuli of the file), and ``alexnet_<layer>`` when layer correlations were computed.
``irfa_layer_correlations`` (``DynamicTable``, optional; one row per area and layer)
    ``area`` (``all`` = every unit; otherwise that area alone, the other units held at their
    mean over stimuli), ``layer`` (AlexNet layer) and ``r`` (Pearson r of the layer's
    activations, stimuli vs reconstructions, flattened over all stimuli).
``irfa_model_config`` (``DynamicTable``, one row per estimator parameter)
    ``parameter``, ``value`` (text), ``value_type`` (``int``, ``float``, ``bool``, ``str``,
    ``none``, ``sequence``, ``object``) so values come back typed.
``irfa_training_history`` (``DynamicTable``, one row per epoch and quantity)
    ``epoch``, ``quantity`` (history key, e.g. ``loss_generator``, ``val_loss``, ``time``) and
    ``value`` (float; NaN kept). Long format, so one epoch or a NaN-only quantity stays valid.
``irfa_source`` (``DynamicTable``, one row per field)
    ``field`` and ``value``: where the data came from (path or DANDI id / version / asset
    path), the source ``identifier``, the object ids of the units and stimulus tables used, and
    the software that wrote the results.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._atomic import atomic_path, write_nwb_atomic
from .._version import __version__
from ..errors import InputError, NWBLayoutError

#: names of the containers written to ``nwbfile.analysis``
RESULT_NAMES: tuple[str, ...] = (
    "irfa_spatial_irfs",
    "irfa_heads",
    "irfa_feature_irfs",
    "irfa_spatial_irfs_per_stimulus",
    "irfa_reconstructions",
    "irfa_stimuli",
    "irfa_metrics",
    "irfa_layer_correlations",
    "irfa_model_config",
    "irfa_training_history",
    "irfa_source",
)

PAPER_DOI = "https://doi.org/10.48550/arXiv.2501.03051"
_KEYWORDS = ("image reconstruction", "inverse receptive fields", "IRFA")

# ----------------------------------------------------------------------------- inputs


def _check_estimator(estimator: Any) -> None:
    needed = ["predict", "spatial_fields", "feature_fields", "heads_", "image_size_"]
    missing = [name for name in needed if not hasattr(estimator, name)]
    if missing:
        raise InputError(
            f"estimator lacks {missing}; pass a fitted irfa_nwb.IRFA (call fit first, or load "
            "one with irfa_nwb.load_model)"
        )


def _default_X(dataset: xr.Dataset) -> tuple[xr.DataArray, str]:
    """Repeat-averaged responses, dims ("stimulus", "unit"), and how they were selected.

    Stimuli marked ``split == "test"`` are used alone when the responses carry a train / test
    split; otherwise every stimulus of the dataset.
    """
    from ..data import average_repeats

    if "responses" not in dataset:
        raise InputError(
            "dataset has no 'responses' variable; pass the output of irfa_nwb.load_dataset or "
            "give X explicitly"
        )
    resp = dataset["responses"]
    if "stimulus" in resp.dims:
        X = resp
    elif "presentation" in resp.dims and "stimulus_id" in resp.coords:
        X = average_repeats(resp)
    else:
        raise InputError(
            "responses need a 'presentation' dimension with a 'stimulus_id' coordinate; pass "
            "X (dims ('stimulus', 'unit')) explicitly"
        )
    if "time_bin" in X.dims:
        raise InputError(
            "responses have time bins; pass X averaged over them "
            "(dataset['responses'].mean('time_bin')) or reload without bins="
        )
    if "split" in X.coords:
        split = np.asarray(X["split"].values).astype(str)
        if (split == "test").any() and (split != "test").any():
            return X.isel(stimulus=np.flatnonzero(split == "test")), "test split"
    return X, "all stimuli in the dataset"


def _stimulus_ids(X: Any, n: int) -> np.ndarray:
    if isinstance(X, xr.DataArray) and "stimulus_id" in X.coords:
        return np.asarray(X["stimulus_id"].values)
    return np.arange(n)


def _to_float_images(images: np.ndarray) -> np.ndarray:
    arr = np.asarray(images)
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float64) / float(np.iinfo(arr.dtype).max)
    arr = arr.astype(np.float64)
    if arr.ndim == 3:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4):
        raise InputError(f"images must have shape (stimulus, y, x[, channel]), got {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.clip(arr[..., :3], 0.0, 1.0)


def _image_ids(images: xr.DataArray) -> np.ndarray | None:
    """Stimulus ids of an images DataArray (``stimulus_id`` coord or ``stimulus`` index)."""
    for name in ("stimulus_id", "stimulus"):
        if name in images.coords and images[name].dims == ("stimulus",):
            return np.asarray(images[name].values)
    return None


def _target_images(dataset: xr.Dataset, stimulus_ids: np.ndarray, size: int) -> np.ndarray | None:
    """Presented images for ``stimulus_ids``, resized to ``size`` pixels, float32 in [0, 1]."""
    if "images" not in dataset:
        return None
    images = dataset["images"]
    ids = _image_ids(images)
    if ids is None:
        return None
    pos = {s: i for i, s in enumerate(ids)}
    missing = [s for s in stimulus_ids if s not in pos]
    if missing:
        raise InputError(
            f"{len(missing)} stimuli of X (e.g. {missing[:3]}) have no image in the dataset; "
            "pass the dataset that X was made from"
        )
    arr = _to_float_images(images.values[[pos[s] for s in stimulus_ids]])
    if arr.shape[1:3] != (size, size):
        arr = _resize(arr.astype(np.float32), size)
    return arr.astype(np.float32)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resize like the estimator does for its targets (antialiased bilinear)."""
    try:
        from ..estimator.irfa import resize_images
    except ImportError:  # estimator (torch) unavailable: scikit-image, nearly the same
        from skimage.transform import resize

        return np.stack([resize(img, (size, size), order=1, anti_aliasing=True)
                         for img in images])
    return np.asarray(resize_images(np.ascontiguousarray(images), size))


def _head_info(
    estimator: Any, dataset: xr.Dataset, X: Any
) -> tuple[list[str], list[str], list[int]]:
    """Head names, their area and unit counts (from the unit coordinates)."""
    heads = [str(h) for h in estimator.heads_]
    units = None
    for source in (X, dataset.get("responses")):
        if isinstance(source, xr.DataArray) and "electrode_group" in source.coords:
            units = source
            break
    areas, counts = [], []
    for head in heads:
        if units is None:
            areas.append("unknown")
            counts.append(-1)
            continue
        mask = np.asarray(units["electrode_group"].values).astype(str) == head
        counts.append(int(mask.sum()))
        if "area" in units.coords and mask.any():
            values, n = np.unique(np.asarray(units["area"].values)[mask].astype(str),
                                  return_counts=True)
            areas.append(str(values[np.argmax(n)]))
        else:
            areas.append("unknown")
    return heads, areas, counts


def _attr_text(value: Any) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in np.asarray(value).ravel().tolist())
    return str(value)


def _source_record(dataset: xr.Dataset, source: Any) -> dict[str, str]:
    """Provenance fields: the dataset attrs (all of them, as text) and the given source."""
    record: dict[str, str] = {}
    for key, value in dataset.attrs.items():
        if value is None or isinstance(value, (dict, Mapping)):
            continue
        text = _attr_text(value)
        if text != "":
            record[str(key)] = text
    if "identifier" not in record and "nwb_identifier" in record:
        record["identifier"] = record["nwb_identifier"]
    if source is not None and not _is_nwbfile(source):
        record["source"] = str(source)
    return record


def _is_nwbfile(obj: Any) -> bool:
    try:
        from pynwb import NWBFile
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, NWBFile)


def _local_source_path(dataset: xr.Dataset, source: Any) -> Path | None:
    candidate = source if source is not None else dataset.attrs.get("source")
    if candidate is None or _is_nwbfile(candidate):
        return None
    text = str(candidate)
    if "://" in text or text.upper().startswith("DANDI:"):
        return None
    path = Path(text).expanduser()
    return path if path.is_file() else None


def _param_rows(params: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for name in sorted(params):
        value = params[name]
        if value is None:
            rows.append((name, "", "none"))
        elif isinstance(value, (bool, np.bool_)):
            rows.append((name, str(bool(value)), "bool"))
        elif isinstance(value, (int, np.integer)):
            rows.append((name, str(int(value)), "int"))
        elif isinstance(value, (float, np.floating)):
            rows.append((name, repr(float(value)), "float"))
        elif isinstance(value, str):
            rows.append((name, value, "str"))
        elif isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float, str, bool, np.number)) for v in value
        ):
            rows.append((name, ", ".join(str(v) for v in value), "sequence"))
        else:
            label = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
            rows.append((name, str(label or type(value).__name__), "object"))
    return rows


def _history_rows(history: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[str], list[float]]:
    """Long-format (epoch, quantity, value) rows of the numeric entries of a history."""
    epochs: list[int] = []
    names: list[str] = []
    values: list[float] = []
    for i, entry in enumerate(history):
        epoch = entry.get("epoch", i)
        epoch = int(epoch) if isinstance(epoch, (int, float, np.number)) else i
        for key, value in entry.items():
            if key == "epoch" or isinstance(value, (bool, np.bool_)):
                continue
            if value is None or isinstance(value, (int, float, np.number)):
                epochs.append(epoch)
                names.append(str(key))
                values.append(np.nan if value is None else float(value))
    return epochs, names, values


def _safe_name(name: str) -> str:
    return str(name).replace("/", "_").replace(":", "_")


def _id_column(values: np.ndarray) -> list[Any] | np.ndarray:
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64)
    return [str(v) for v in values]


# ----------------------------------------------------------------------------- compute


def compute_results(
    estimator: Any,
    dataset: xr.Dataset,
    *,
    X: Any = None,
    metrics: bool = True,
    layer_correlations: bool = False,
    spatial_per_stimulus: bool = False,
) -> dict[str, Any]:
    """Run the estimator and the analyses; return everything :func:`write_results` stores.

    Parameters
    ----------
    estimator : irfa_nwb.IRFA
        Fitted estimator.
    dataset : xarray.Dataset
        Loaded dataset (``irfa_nwb.load_dataset``).
    X : xarray.DataArray, optional
        Repeat-averaged responses (dims ``("stimulus", "unit")``); default as in
        :func:`write_results`.
    metrics : bool
        Compute per-stimulus metrics (needs the images in ``dataset``).
    layer_correlations : bool
        Also compute the AlexNet layer correlations overall and per area (needs pretrained
        AlexNet weights; raises :class:`~irfa_nwb.errors.MissingWeightsError` otherwise).
    spatial_per_stimulus : bool
        Keep the spatial IRFs of every stimulus (``n × heads × size²`` numbers).

    Returns
    -------
    dict
        Plain arrays and lists keyed by result name.
    """
    from ..analysis import fields as fld
    from ..analysis import metrics as met

    _check_estimator(estimator)
    selection = "X given by the caller"
    if X is None:
        X, selection = _default_X(dataset)
    if not (isinstance(X, xr.DataArray) and "stimulus_id" in X.coords) and "images" in dataset:
        raise InputError(
            "X has no 'stimulus_id' coordinate, so its rows cannot be matched to the dataset's "
            "images; pass X as an xarray.DataArray with a stimulus_id coordinate (as made by "
            "irfa_nwb.average_repeats or irfa_nwb.data.to_training_pair)"
        )
    recon = np.asarray(estimator.predict(X), dtype=np.float32)
    spatial = np.asarray(estimator.spatial_fields(X), dtype=np.float64)
    feature = np.asarray(estimator.feature_fields(X), dtype=np.float64)
    n = recon.shape[0]
    size = int(estimator.image_size_)
    if recon.shape != (n, size, size, 3):
        raise InputError(f"estimator.predict returned shape {recon.shape}, "
                         f"expected ({n}, {size}, {size}, 3)")
    heads, areas, counts = _head_info(estimator, dataset, X)
    if spatial.shape != (n, len(heads), size, size) or feature.ndim != 3 or \
            feature.shape[:2] != (n, len(heads)):
        raise InputError(
            f"estimator fields have shapes {spatial.shape} and {feature.shape}; expected "
            f"({n}, {len(heads)}, {size}, {size}) and ({n}, {len(heads)}, channels)"
        )
    sids = _stimulus_ids(X, n)
    out: dict[str, Any] = {
        "stimulus_selection": selection,
        "stimulus_id": sids,
        "reconstruction": recon,
        "spatial_irf": spatial.mean(axis=0).astype(np.float32),
        "feature_irf": feature.mean(axis=0),
        "feature_irf_per_stimulus": feature,
        "spatial_irf_per_stimulus": spatial.astype(np.float32) if spatial_per_stimulus else None,
        "heads": heads,
        "areas": areas,
        "n_units": counts,
        "spatial_consistency": fld.spatial_consistency(spatial).values,
        "feature_consistency": fld.feature_consistency(feature).values,
        "feature_variability": fld.feature_variability(feature).values,
    }
    targets = _target_images(dataset, sids, size)
    out["stimulus_image"] = targets
    if metrics and targets is not None:
        m = met.reconstruction_metrics(targets, recon)
        out["pixel_r"] = m["pixel_r"].values
        out["ssim"] = m["ssim"].values
        out["identification_rank"] = m["identification_rank"].values
    if layer_correlations:
        if targets is None:
            raise InputError("layer correlations need the stimulus images in the dataset")
        from ..analysis import alexnet as anet

        model = anet.load_alexnet()
        fit_device = str(getattr(estimator, "device_", "cpu") or "cpu")
        if fit_device.startswith("cuda"):
            model.to(fit_device)  # features on the estimator's GPU
        target_features = anet.alexnet_features(targets, model=model)
        corr = anet.alexnet_layer_correlations(targets, recon, model=model,
                                               stimulus_features=target_features)
        rows = {"all": corr["overall"].values}
        for layer in corr.layer.values:
            out[f"alexnet_{layer}"] = corr["per_image"].sel(layer=layer).values
        if isinstance(X, xr.DataArray) and "area" in X.coords and "unit" in X.dims:
            x_area = np.asarray(X["area"].values).astype(str)
            unit_mean = X.mean(dim=X.dims[0])
            for area in dict.fromkeys(areas):
                keep = x_area == area
                if not keep.any() or keep.all():
                    continue
                # hold units outside the area at their mean over stimuli
                ablated = X.where(xr.DataArray(keep, dims="unit"), unit_mean)
                ablated = ablated.transpose(*X.dims).astype(X.dtype)
                pred = np.asarray(estimator.predict(ablated), dtype=np.float32)
                rows[area] = anet.alexnet_layer_correlations(
                    targets, pred, model=model, stimulus_features=target_features
                )["overall"].values
        out["layer_correlations"] = (list(corr.layer.values), rows)
    return out


# ----------------------------------------------------------------------------- NWB objects


def _build_containers(
    results: Mapping[str, Any],
    config: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    source_record: Mapping[str, str],
) -> list[Any]:
    from hdmf.common import DynamicTable, VectorData
    from pynwb.base import ImageReferences, Images
    from pynwb.image import GrayscaleImage, RGBImage

    def packed(data: Any) -> Any:
        # gzip large numeric arrays (per-stimulus IRFs); small ones stay plain
        if isinstance(data, np.ndarray) and data.dtype.kind == "f" and data.nbytes > 2**20:
            from hdmf.backends.hdf5 import H5DataIO

            return H5DataIO(data, compression="gzip", compression_opts=4, shuffle=True)
        return data

    def table(name: str, description: str, columns: Mapping[str, tuple[Any, str]]):
        cols = [VectorData(name=key, description=desc, data=packed(data))
                for key, (data, desc) in columns.items()]
        return DynamicTable(name=name, description=description, columns=cols)

    heads, areas = results["heads"], results["areas"]
    sids = np.asarray(results["stimulus_id"])
    n = len(sids)
    containers: list[Any] = []

    # spatial IRFs, one grayscale image per head
    spatial = [
        GrayscaleImage(
            name=_safe_name(head),
            data=np.asarray(results["spatial_irf"][i], dtype=np.float32),
            description=(
                f"Spatial inverse receptive field of head '{head}' (area {areas[i]}): IRFA "
                f"attention weights averaged over channels and over {n} stimuli; rows are y"
            ),
        )
        for i, head in enumerate(heads)
    ]
    containers.append(
        Images(
            name="irfa_spatial_irfs",
            images=spatial,
            description=(
                "Spatial inverse receptive fields per head (electrode group), mean over stimuli; "
                "at each pixel the maps of all heads sum to 1. Head order as in irfa_heads."
            ),
            order_of_images=ImageReferences(name="order_of_images", data=spatial),
        )
    )
    containers.append(
        table(
            "irfa_heads",
            "IRFA heads (electrode groups) in model order, with their area and IRF summaries",
            {
                "head": (list(heads), "head name (electrode group label)"),
                "area": (list(areas), "brain area of the head's units"),
                "n_units": (np.asarray(results["n_units"], dtype=np.int64),
                            "number of units in the head (-1 when unknown)"),
                "feature_irf": (np.asarray(results["feature_irf"], dtype=np.float64),
                                "feature IRF (attention weights summed over pixels) per channel, "
                                "mean over stimuli"),
                "spatial_consistency": (np.asarray(results["spatial_consistency"]),
                                        "mean pairwise Pearson r of spatial IRFs across stimuli"),
                "feature_consistency": (np.asarray(results["feature_consistency"]),
                                        "mean pairwise Pearson r of feature IRFs across stimuli"),
                "feature_variability": (np.asarray(results["feature_variability"]),
                                        "coefficient of variation of feature IRFs across "
                                        "stimuli"),
            },
        )
    )
    containers.append(
        table(
            "irfa_feature_irfs",
            "Feature inverse receptive fields per stimulus (rows in stimulus order), "
            "array dims (stimulus, head, channel)",
            {
                "stimulus_id": (_id_column(sids), "stimulus identifier"),
                "feature_irf": (np.asarray(results["feature_irf_per_stimulus"]),
                                "attention weights summed over pixels, per head and channel"),
            },
        )
    )

    if results.get("spatial_irf_per_stimulus") is not None:
        containers.append(
            table(
                "irfa_spatial_irfs_per_stimulus",
                "Spatial inverse receptive fields per stimulus (rows in stimulus order), "
                "array dims (stimulus, head, y, x)",
                {
                    "stimulus_id": (_id_column(sids), "stimulus identifier"),
                    "spatial_irf": (np.asarray(results["spatial_irf_per_stimulus"]),
                                    "attention weights averaged over channels, per head"),
                },
            )
        )

    def rgb_images(name: str, stack: np.ndarray, what: str, description: str):
        imgs = [
            RGBImage(
                name=f"stimulus_{i:05d}",
                data=np.asarray(stack[i], dtype=np.float32),
                description=f"{what} of stimulus_id {sids[i]} (values in [0, 1], rows are y)",
            )
            for i in range(n)
        ]
        return Images(
            name=name,
            images=imgs,
            description=description,
            order_of_images=ImageReferences(name="order_of_images", data=imgs),
        )

    containers.append(
        rgb_images(
            "irfa_reconstructions",
            results["reconstruction"],
            "IRFA reconstruction",
            "Images reconstructed by IRFA from the neural responses, in stimulus order "
            "(stimulus ids in irfa_metrics / irfa_feature_irfs)",
        )
    )
    if results.get("stimulus_image") is not None:
        containers.append(
            rgb_images(
                "irfa_stimuli",
                results["stimulus_image"],
                "Presented image",
                "Presented images resized to the reconstruction size, in stimulus order: the "
                "targets the metrics compare reconstructions with",
            )
        )
    if "pixel_r" in results:
        cols: dict[str, tuple[Any, str]] = {
            "stimulus_id": (_id_column(sids), "stimulus identifier"),
            "pixel_r": (np.asarray(results["pixel_r"], dtype=np.float64),
                        "Pearson r between stimulus and reconstruction pixels"),
            "ssim": (np.asarray(results["ssim"], dtype=np.float64),
                     "structural similarity (scikit-image, 7 px window)"),
            "identification_rank": (np.asarray(results["identification_rank"], dtype=np.int64),
                                    "rank of the true stimulus among all stimuli by pixel "
                                    "correlation with the reconstruction (1 = identified)"),
        }
        for key in sorted(k for k in results if k.startswith("alexnet_")):
            cols[key] = (np.asarray(results[key], dtype=np.float64),
                         f"Pearson r of AlexNet {key[8:]} activations, stimulus vs reconstruction")
        containers.append(
            table("irfa_metrics", "Reconstruction quality per stimulus, in stimulus order", cols)
        )
    if "layer_correlations" in results:
        layers, rows = results["layer_correlations"]
        pairs = [(str(area), str(layer), float(rows[area][j]))
                 for area in rows for j, layer in enumerate(layers)]
        containers.append(
            table(
                "irfa_layer_correlations",
                "AlexNet layer feature correlations between stimuli and reconstructions",
                {
                    "area": ([p[0] for p in pairs],
                             "units used: 'all', or one area with the others held at their "
                             "mean over stimuli"),
                    "layer": ([p[1] for p in pairs], "AlexNet layer"),
                    "r": (np.array([p[2] for p in pairs], dtype=np.float64),
                          "Pearson r of the layer activations over all stimuli"),
                },
            )
        )
    param_rows = _param_rows(config)
    if param_rows:
        containers.append(
            table(
                "irfa_model_config",
                "IRFA estimator parameters (get_params), one row per parameter",
                {
                    "parameter": ([r[0] for r in param_rows], "parameter name"),
                    "value": ([r[1] for r in param_rows], "value as text"),
                    "value_type": ([r[2] for r in param_rows],
                                   "int, float, bool, str, none, sequence (comma separated) or "
                                   "object (name only)"),
                },
            )
        )
    epochs, quantities, values = _history_rows(history)
    if epochs:
        containers.append(
            table(
                "irfa_training_history",
                "Training history, one row per epoch and quantity (losses, validation loss, "
                "time in s)",
                {
                    "epoch": (np.asarray(epochs, dtype=np.int64), "epoch number"),
                    "quantity": (quantities, "history key"),
                    "value": (np.asarray(values, dtype=np.float64), "value at that epoch"),
                },
            )
        )
    containers.append(
        table(
            "irfa_source",
            "Provenance of these results: source data and software, one row per field",
            {
                "field": (list(source_record), "provenance field"),
                "value": ([str(v) for v in source_record.values()], "value"),
            },
        )
    )
    return containers


def _copy_subject(subject: Any) -> Any:
    from pynwb.file import Subject

    keys = ("age", "age__reference", "description", "genotype", "sex", "species", "subject_id",
            "weight", "date_of_birth", "strain")
    kwargs = {k: getattr(subject, k, None) for k in keys}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if kwargs.get("age__reference") not in ("birth", "gestational"):
        kwargs.pop("age__reference", None)
    return Subject(**kwargs)


def _source_metadata(source_file: Any) -> dict[str, Any]:
    """Session metadata worth carrying over from the source NWBFile."""
    meta: dict[str, Any] = {"session_start_time": source_file.session_start_time,
                            "identifier": source_file.identifier}
    if source_file.subject is not None:
        meta["subject"] = _copy_subject(source_file.subject)
    for key in ("experimenter", "institution", "lab", "keywords", "session_id",
                "experiment_description"):
        value = getattr(source_file, key, None)
        if value is not None and len(value):
            meta[key] = list(value) if key in ("experimenter", "keywords") else value
    return meta


def _nwb_schema_version() -> str:
    from pynwb import get_type_map

    return str(get_type_map().namespace_catalog.get_namespace("core").version)


def _file_schema_version(path: Path) -> str | None:
    import h5py
    from pynwb import get_nwbfile_version

    try:
        with h5py.File(path, "r") as f:
            text, _ = get_nwbfile_version(f)
    except OSError:
        return None
    return text


# ----------------------------------------------------------------------------- public


def write_results(
    path: str | os.PathLike,
    estimator: Any,
    dataset: xr.Dataset,
    *,
    source: Any = None,
    overwrite: bool = False,
    append: bool = False,
    X: Any = None,
    metrics: bool = True,
    layer_correlations: bool = False,
    spatial_per_stimulus: bool = False,
    source_metadata: bool = True,
) -> Path:
    """Write a fitted estimator's reconstructions, IRFs and metrics to NWB.

    By default a **new** file is written atomically (to a temporary file in the same folder,
    then renamed); the source recording is only read. Its ``analysis`` section is described in
    :mod:`irfa_nwb.results.writer`.

    Parameters
    ----------
    path : path-like
        The results file to write (``.nwb``). With ``append=True``, the source file to add to.
    estimator : irfa_nwb.IRFA
        Fitted estimator.
    dataset : xarray.Dataset
        The dataset the responses come from (``irfa_nwb.load_dataset``); its ``attrs`` give the
        provenance and its ``images`` the targets for the metrics.
    source : path-like, str or pynwb.NWBFile, optional
        The source recording (local path, DANDI address, or an open NWBFile); default
        ``dataset.attrs["source"]``. A readable local file (or NWBFile) also lends its
        session start time, subject and experimenter metadata to the results file.
    overwrite : bool, default False
        Replace ``path`` if it exists.
    append : bool, default False
        Add the results to the source file itself instead. Allowed only when ``path`` is a local
        NWB file, is the dataset's source (when that is recorded), its NWB schema version
        equals the installed pynwb's, and it holds no results yet; the file is updated through
        a temporary copy and replaced atomically.
    X : xarray.DataArray, optional
        Repeat-averaged responses to reconstruct (dims ``("stimulus", "unit")``, coordinate
        ``stimulus_id``). Default: ``irfa_nwb.data.average_repeats(dataset)``, restricted to
        the stimuli marked ``split == "test"`` when the responses carry a train / test split
        (so pass the test side of ``train_test_split`` or the full dataset). The choice is
        recorded as ``stimulus_selection`` in ``irfa_source``.
    metrics : bool, default True
        Write the per-stimulus metrics table.
    layer_correlations : bool, default False
        Also compute and write AlexNet layer correlations (needs pretrained AlexNet weights).
    spatial_per_stimulus : bool, default False
        Also store the spatial IRFs of every stimulus (table ``irfa_spatial_irfs_per_stimulus``),
        so their consistency can be re-analysed from the file.
    source_metadata : bool, default True
        Copy the session start time, subject and experimenter metadata of the source recording
        into the results file (needed for a clean nwbinspector report). A local source is
        read, a remote one (DANDI / URL) streamed briefly with :func:`irfa_nwb.data.open_nwb`;
        when that fails, a warning is issued and the file is written without them.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    InputError
        If ``path`` exists (without ``overwrite``), would replace the source, or an append is
        unsafe; or the estimator / dataset do not fit together.
    """
    from pynwb import NWBHDF5IO, NWBFile

    path = Path(path).expanduser()
    local_source = _local_source_path(dataset, source)
    if append:
        _check_append(path, dataset, local_source)
    else:
        if local_source is not None and path.exists() and path.resolve() == local_source.resolve():
            raise InputError(
                f"{path} is the source recording; write results to a new file (another path) "
                "or pass append=True to add them to the source"
            )
        if path.exists() and not overwrite:
            raise InputError(f"{path} already exists; pass overwrite=True to replace it")
        if path.is_dir():
            raise InputError(f"{path} is a folder; give a file name such as results.nwb")
        if not path.parent.is_dir():
            raise InputError(f"folder {path.parent} does not exist; create it first")

    record = _source_record(dataset, source)
    meta: dict[str, Any] = {}
    if not append:
        meta = _read_source_metadata(source, dataset, local_source, source_metadata, record)
    results = compute_results(
        estimator, dataset, X=X, metrics=metrics, layer_correlations=layer_correlations,
        spatial_per_stimulus=spatial_per_stimulus,
    )
    record["stimulus_selection"] = results["stimulus_selection"]
    record["irfa_nwb_version"] = __version__
    record["created"] = datetime.now(timezone.utc).isoformat()
    device = getattr(estimator, "device_", None)
    if device is not None:
        record["fit_device"] = str(device)
    config = estimator.get_params() if hasattr(estimator, "get_params") else {}
    history = list(getattr(estimator, "history_", None) or [])
    containers = _build_containers(results, config, history, record)

    if append:
        with atomic_path(path, ".tmp.nwb") as tmp:
            shutil.copy2(path, tmp)
            with NWBHDF5IO(str(tmp), "a") as io:
                nwbfile = io.read()
                clash = [c.name for c in containers if c.name in nwbfile.analysis]
                if clash:
                    raise InputError(
                        f"{path} already holds results {clash}; write to a new file instead"
                    )
                for container in containers:
                    nwbfile.add_analysis(container)
                io.write(nwbfile)
        return path
    start = meta.pop("session_start_time", None) or _parse_time(
        dataset.attrs.get("session_start_time")
    ) or datetime.now(timezone.utc)
    src_id = record.get("identifier", "unknown")
    nwbfile = NWBFile(
        session_description=(
            f"IRFA image reconstructions and inverse receptive fields computed from the "
            f"recording '{src_id}' ({record.get('source', 'source not recorded')})"
        ),
        identifier=str(uuid.uuid4()),
        session_start_time=start,
        related_publications=[PAPER_DOI],
        was_generated_by=[["irfa-nwb", __version__]],
        subject=meta.pop("subject", None),
        experimenter=meta.pop("experimenter", None),
        institution=meta.pop("institution", None),
        lab=meta.pop("lab", None),
        keywords=list(dict.fromkeys([*(meta.pop("keywords", None) or []), *_KEYWORDS])),
        session_id=meta.pop("session_id", None),
        experiment_description=meta.pop("experiment_description", None) or (
            "Natural images reconstructed from visual-cortex responses with the inverse "
            "receptive field attention (IRFA) model"
        ),
        data_collection=(
            "Analysis results only; the recorded data stay in the source file named in "
            "analysis/irfa_source."
        ),
    )
    for container in containers:
        nwbfile.add_analysis(container)
    write_nwb_atomic(nwbfile, path)
    return path


def _read_source_metadata(
    source: Any,
    dataset: xr.Dataset,
    local_source: Path | None,
    enabled: bool,
    record: dict[str, str],
) -> dict[str, Any]:
    """Session metadata of the source recording (local, open NWBFile, or streamed)."""
    if _is_nwbfile(source):
        record.setdefault("identifier", str(source.identifier))
        path = getattr(source, "container_source", None)
        if path:
            record.setdefault("source", str(path))
        if source.units is not None:
            record.setdefault("units_object_id", str(source.units.object_id))
        return _source_metadata(source)
    if not enabled:
        return {}
    from ..data import open_nwb

    if local_source is not None:
        with open_nwb(local_source) as src:
            meta = _source_metadata(src)
        record.setdefault("identifier", str(meta["identifier"]))
        record["source_nwb_schema_version"] = str(_file_schema_version(local_source))
        return meta
    candidate = source if source is not None else dataset.attrs.get("source")
    if candidate is None or "://" not in str(candidate):
        return {}
    try:
        with open_nwb(str(candidate)) as src:
            meta = _source_metadata(src)
    except Exception as err:  # network trouble must not lose the computed results
        warnings.warn(
            f"could not read session metadata (subject, start time) from {candidate}: {err}; "
            "the results file is written without them. Pass source=<open NWBFile> or "
            "source_metadata=False to silence this",
            stacklevel=3,
        )
        return {}
    record.setdefault("identifier", str(meta["identifier"]))
    return meta


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _check_append(path: Path, dataset: xr.Dataset, local_source: Path | None) -> None:
    if "://" in str(path) or not path.is_file():
        raise InputError(
            f"cannot append to {path}: it is not a local file. Results can only be added to a "
            "local copy of the source; call write_results without append=True to write a new "
            "results file instead"
        )
    recorded = dataset.attrs.get("source")
    if local_source is None and recorded is not None:
        raise InputError(
            f"cannot append to {path}: the dataset was read from {recorded}, not a local file; "
            "write a new results file instead (append=False)"
        )
    if local_source is not None and local_source.resolve() != path.resolve():
        raise InputError(
            f"cannot append to {path}: the dataset comes from {local_source}; results are only "
            "appended to the file they were computed from"
        )
    found = _file_schema_version(path)
    installed = _nwb_schema_version()
    if found is None:
        raise NWBLayoutError(f"{path} is not an NWB file (no nwb_version attribute)")
    if found.replace("NWB-", "") != installed:
        raise InputError(
            f"cannot append to {path}: it was written with NWB schema {found}, the installed "
            f"pynwb writes {installed}, and appending would silently upgrade the file and can "
            "break validation. Write a new results file instead (append=False)"
        )
