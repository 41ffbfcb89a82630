"""Store an evaluation (:func:`irfa_nwb.analysis.evaluate`) in an NWB file: I/O only.

:func:`write_results` maps the results Dataset onto NWB containers in the file's ``analysis``
section and :func:`~irfa_nwb.results.read_results` maps them back, giving an identical Dataset.
Nothing here predicts or measures. Layout (all names start with ``irfa_``):

``irfa_reconstructions``, ``irfa_stimuli`` (``Images``)
    One ``RGBImage`` per stimulus, **named after its stimulus id** (``stimulus_<id>``), in
    stimulus order (``order_of_images``); every image variable with dims
    ``(stimulus_id, y, x, channel)`` becomes such a container (``irfa_<name>s`` for
    ``reconstruction``, ``irfa_stimuli`` for ``stimulus_image``).
``irfa_spatial_irfs`` (``Images``)
    The spatial IRF of each head (mean over stimuli), one ``GrayscaleImage`` named after the
    head.
``irfa_per_<dim>`` (``DynamicTable``)
    One table per leading dimension of length > 1 (dims of length 1 are left out of stored
    arrays, so no table has a single row; values left without a dim are in ``irfa_summary``):
    ``irfa_per_stimulus_id`` (one row per stimulus: its id,
    ``stimulus_role`` — ``train`` / ``held_out`` / ``unknown`` —, metrics, feature IRFs, cluster
    labels...), ``irfa_per_head``, ``irfa_per_layer``, ``irfa_per_epoch`` (training history),
    ``irfa_per_model_unit`` (the units the model was fitted on and their head)... Each row
    starts with the dimension's coordinate; multi-dimensional variables are array columns.
``irfa_variables`` (``DynamicTable``)
    One row per variable and coordinate (column ``variable``): its name, dims (space
    separated), where it is stored and its dtype, so that :func:`read_results` rebuilds the
    Dataset exactly.
``irfa_summary``, ``irfa_model``, ``irfa_model_config``, ``irfa_source`` (``DynamicTable``)
    ``field`` / ``value`` / ``value_type`` rows: summary numbers; what made the results (model
    class, file and SHA-256, recipe, epochs, whether the fit was interrupted, the responses it
    was fitted on); the estimator parameters; and the provenance of the source data (absolute
    path or DANDI address, NWB identifier and object id, SHA-256 of a local source file).
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._atomic import atomic_path
from .._version import __version__
from ..data.nwbfile import (
    copy_subject,
    images_container,
    new_nwbfile,
    safe_name,
    table,
    write_nwbfile,
)
from ..errors import InputError, NWBLayoutError
from ..outputs import check_output_path, sha256_of

#: largest source file that ``write_results(checksum="auto")`` hashes (bytes)
AUTO_CHECKSUM_LIMIT = 4 * 1024**3

PAPER_DOI = "https://doi.org/10.48550/arXiv.2501.03051"
_KEYWORDS = ("image reconstruction", "inverse receptive fields", "IRFA")
IMAGE_DIMS = ("stimulus_id", "y", "x", "channel")
#: Images container of each image variable (others: irfa_<name>)
IMAGE_CONTAINERS = {"reconstruction": "irfa_reconstructions", "stimulus_image": "irfa_stimuli"}
#: attrs stored as name / value tables
DICT_ATTRS = {"model": "irfa_model", "model_params": "irfa_model_config",
              "source": "irfa_source"}


# ----------------------------------------------------------------------------- values
def value_row(value: Any) -> tuple[str, str]:
    """``(text, value_type)`` of a scalar or a flat sequence (typed back by the reader)."""
    if value is None:
        return "", "none"
    if isinstance(value, bool | np.bool_):
        return str(bool(value)), "bool"
    if isinstance(value, int | np.integer):
        return str(int(value)), "int"
    if isinstance(value, float | np.floating):
        return repr(float(value)), "float"
    if isinstance(value, str):
        return value, "str"
    if isinstance(value, list | tuple | np.ndarray):
        return ", ".join(str(v) for v in np.ravel(value).tolist()), "sequence"
    return str(value), "str"


def _kv_table(name: str, description: str, record: Mapping[str, Any]):
    rows = [(str(k), *value_row(v)) for k, v in record.items()]
    return table(name, description, {
        "field": ([r[0] for r in rows], "field name"),
        "value": ([r[1] for r in rows], "value as text"),
        "value_type": ([r[2] for r in rows],
                       "int, float, bool, str, none or sequence (comma separated)"),
    })


def _column(values: np.ndarray) -> Any:
    if values.dtype.kind in "OUS":
        return [str(v) for v in values.tolist()]
    if values.dtype.kind == "b":
        return values.astype(np.uint8)
    return values


def _image_name(stimulus_id: Any) -> str:
    return safe_name(f"stimulus_{stimulus_id}")


# ----------------------------------------------------------------------------- containers
def results_containers(results: xr.Dataset) -> list[Any]:
    """The NWB containers that store ``results`` (see the module docstring)."""
    if "stimulus_id" not in results.dims:
        raise InputError("results need a 'stimulus_id' dimension; make them with evaluate()")
    containers: list[Any] = []
    # name, dims, kind, container, dtype, stored dims (without the dims of length 1)
    registry: list[tuple[str, str, str, str, str, str]] = []
    ids = np.asarray(results["stimulus_id"].values)
    names = [_image_name(s) for s in ids.tolist()]
    if len(set(names)) != len(names):
        raise InputError("stimulus ids must stay distinct as NWB names (after '/' and ':' -> '_')")
    stored: set[str] = set()
    for var in results.data_vars:
        da = results[var]
        if da.dims == IMAGE_DIMS:
            where = IMAGE_CONTAINERS.get(var, f"irfa_{var}")
            what = var.replace("_", " ")
            containers.append(images_container(
                where, np.asarray(da.values),
                names=names,
                descriptions=[f"{what} of stimulus_id {s} (values in [0, 1], rows are y)"
                              for s in ids.tolist()],
                description=(f"{what} of every stimulus, named stimulus_<stimulus_id>, in "
                             "stimulus order (irfa_per_stimulus_id)"),
            ))
            registry.append((var, " ".join(da.dims), "data", where, str(da.dtype),
                             " ".join(da.dims)))
            stored.add(var)
    if "spatial_irf" in results and results["spatial_irf"].dims == ("head", "y", "x"):
        heads = [str(h) for h in results["head"].values]
        areas = (list(results["head_area"].values) if "head_area" in results.coords
                 else ["unknown"] * len(heads))
        containers.append(images_container(
            "irfa_spatial_irfs", np.asarray(results["spatial_irf"].values, np.float32),
            names=heads,
            descriptions=[f"spatial inverse receptive field of head '{h}' (area {a}): "
                          "attention weights averaged over channels and stimuli; rows are y"
                          for h, a in zip(heads, areas, strict=True)],
            description=("Spatial inverse receptive fields per head (electrode group); at "
                         "each pixel the maps of all heads sum to 1. Order as irfa_per_head"),
        ))
        registry.append(("spatial_irf", "head y x", "data", "irfa_spatial_irfs", "float32",
                         "head y x"))
        stored.add("spatial_irf")
    # tables, one per leading dim. A table never has a single row (NWB best practice): a
    # dim of length 1 is left out of the stored array (and restored by the reader), and what
    # is left without any dim goes to irfa_summary as a typed value.
    by_dim: dict[str, dict[str, tuple[Any, str]]] = {}
    summary: dict[str, Any] = {}
    for name in [*results.coords, *results.data_vars]:
        da = results[name]
        if name in stored or (name in results.dims and results.sizes[name] > 1):
            continue
        kind = "coord" if name in results.coords else "data"
        kept = [d for d in da.dims if results.sizes[d] > 1]
        values = np.asarray(da.squeeze([d for d in da.dims if d not in kept]).values)
        if not kept:
            summary[name] = values.item() if values.dtype.kind != "U" else str(values)
            registry.append((name, " ".join(da.dims), kind, "irfa_summary", str(da.dtype), ""))
            continue
        dim = kept[0]
        where = f"irfa_per_{dim}"
        column = by_dim.setdefault(dim, {})
        column[name] = (_column(values), da.attrs.get("description", name))
        registry.append((name, " ".join(da.dims), kind, where, str(da.dtype), " ".join(kept)))
    for dim in results.dims:
        if dim in results.coords and results.sizes[dim] > 1 and dim not in by_dim:
            by_dim[dim] = {}
    for dim, columns in by_dim.items():
        first: dict[str, tuple[Any, str]] = {}
        if dim in results.coords:
            values = np.asarray(results[dim].values)
            first[dim] = (_column(values), f"{dim} (row key)")
            registry.append((dim, dim, "coord", f"irfa_per_{dim}", str(values.dtype), dim))
        containers.append(table(
            f"irfa_per_{dim}", f"IRFA results with one row per {dim}", {**first, **columns}
        ))
    clash = sorted(set(summary) & set(results.attrs))
    if clash:
        raise InputError(f"results attrs and variables share the names {clash}")
    summary.update({k: float(v) if isinstance(v, float | np.floating) else v
                    for k, v in results.attrs.items() if k not in DICT_ATTRS and not
                    isinstance(v, dict)})
    if summary:
        containers.append(_kv_table("irfa_summary", "Summary numbers of the results, and "
                                    "variables along dims of length 1", summary))
    for key, where in DICT_ATTRS.items():
        record = results.attrs.get(key)
        if record:
            containers.append(_kv_table(where, f"IRFA results: {key.replace('_', ' ')}", record))
    containers.append(table("irfa_variables", "Variables of the IRFA results and where they "
                            "are stored (read_results rebuilds the Dataset from this)", {
        "variable": ([r[0] for r in registry], "variable or coordinate name"),
        "dims": ([r[1] for r in registry], "its dims, space separated"),
        "kind": ([r[2] for r in registry], "data (variable) or coord (coordinate)"),
        "container": ([r[3] for r in registry], "analysis container holding it"),
        "dtype": ([r[4] for r in registry], "numpy dtype"),
        "stored_dims": ([r[5] for r in registry],
                        "dims of the stored array (those of length 1 are left out)"),
    }))
    return containers


# ----------------------------------------------------------------------------- source
def _is_nwbfile(obj: Any) -> bool:
    try:
        from pynwb import NWBFile
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, NWBFile)


def _local_path(candidate: Any) -> Path | None:
    if candidate is None or _is_nwbfile(candidate):
        return None
    text = str(candidate)
    if "://" in text or text.upper().startswith("DANDI:") or text.startswith("<"):
        return None
    path = Path(text).expanduser()
    return path.absolute() if path.is_file() else None


def _source_metadata(source_file: Any) -> dict[str, Any]:
    """Session metadata worth carrying over from the source NWBFile."""
    meta: dict[str, Any] = {"session_start_time": source_file.session_start_time,
                            "identifier": source_file.identifier}
    if source_file.subject is not None:
        meta["subject"] = copy_subject(source_file.subject)
    for key in ("experimenter", "institution", "lab", "keywords", "session_id",
                "experiment_description"):
        value = getattr(source_file, key, None)
        if value is not None and len(value):
            meta[key] = list(value) if key in ("experimenter", "keywords") else value
    return meta


def _read_source_metadata(source: Any, local: Path | None, record: dict) -> dict[str, Any]:
    if _is_nwbfile(source):
        record.setdefault("nwb_identifier", str(source.identifier))
        record.setdefault("nwb_object_id", str(source.object_id))
        return _source_metadata(source)
    from ..data import open_nwb

    candidate = local if local is not None else source
    if candidate is None or (local is None and "://" not in str(candidate)):
        return {}
    try:
        with open_nwb(candidate) as src:
            return _source_metadata(src)
    except Exception as err:  # trouble reading the source must not lose the results
        warnings.warn(
            f"could not read session metadata (subject, start time) from {candidate}: {err}; "
            "the results file is written without them. Pass source=<open NWBFile> or "
            "source_metadata=False to silence this",
            stacklevel=3,
        )
        return {}


# ----------------------------------------------------------------------------- public
def write_results(
    path: str | os.PathLike,
    results: xr.Dataset,
    *,
    source: Any = None,
    overwrite: bool = False,
    append: bool = False,
    source_metadata: bool = True,
    checksum: bool | str = "auto",
) -> Path:
    """Write an evaluation to NWB: a **new** file by default, written atomically.

    Parameters
    ----------
    path : path-like
        The results file (``.nwb``). With ``append=True``, the source file to add to.
    results : xarray.Dataset
        From :func:`irfa_nwb.evaluate` (or :func:`read_results`).
    source : path-like, str or pynwb.NWBFile, optional
        The source recording; default ``results.attrs["source"]["source"]``. A local file
        is hashed (SHA-256, recorded in ``irfa_source``) and, like an open NWBFile or a
        reachable DANDI asset, lends its session start time, subject and experimenter
        metadata to the results file.
    overwrite : bool, default False
        Replace ``path`` if it exists.
    append : bool, default False
        Add the results to the source file itself. Allowed only when ``path`` is a local NWB
        file, is the results' source, its NWB schema version equals the installed pynwb's, and
        it holds no results yet; the file is updated through a temporary copy and replaced
        atomically.
    source_metadata : bool, default True
        Copy the source's session metadata (needed for a clean nwbinspector report).
    checksum : {"auto", True, False}, default "auto"
        Hash a local source file (SHA-256) so that the results can be tied to the exact bytes
        they came from. ``"auto"`` hashes files up to 4 GiB and skips larger ones (a 60 GB
        recording takes minutes to read); the source's size and modification time are
        recorded either way.

    Returns
    -------
    pathlib.Path
        The written file (absolute).
    """
    if not isinstance(results, xr.Dataset):
        raise InputError(
            "write_results(path, results) takes the Dataset of irfa_nwb.evaluate(model, data); "
            "evaluate the model first"
        )
    record = dict(results.attrs.get("source") or {})
    if source is None:
        source = record.get("source")
    local = _local_path(source)
    path = Path(path).expanduser().absolute()
    if append:
        _check_append(path, local)
    else:
        if local is not None and path.exists() and path.resolve() == local.resolve():
            raise InputError(
                f"{path} is the source recording; write results to a new file (another path) "
                "or pass append=True to add them to the source"
            )
        check_output_path(path, overwrite=overwrite, what="results file")
    if checksum not in ("auto", True, False):
        raise InputError(f"checksum must be 'auto', True or False, got {checksum!r}")
    if local is not None:
        record["source"] = str(local)
        stat = local.stat()
        record["source_size"] = int(stat.st_size)
        record["source_mtime"] = datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat()
        if checksum is True or (checksum == "auto" and stat.st_size <= AUTO_CHECKSUM_LIMIT):
            record["source_sha256"] = sha256_of(local)
    elif _is_nwbfile(source):
        record.setdefault("source", str(getattr(source, "container_source", None)
                                         or f"<in-memory NWBFile {source.identifier}>"))
    meta = (_read_source_metadata(source, local, record)
            if source_metadata and not append else {})
    record["results_written_by"] = f"irfa-nwb {__version__}"
    record["results_written"] = datetime.now(timezone.utc).isoformat()
    results = results.copy()
    results.attrs["source"] = record
    containers = results_containers(results)
    if append:
        from pynwb import NWBHDF5IO

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
    start = meta.pop("session_start_time", None) or datetime.now(timezone.utc)
    src_id = meta.pop("identifier", None) or record.get("nwb_identifier", "unknown")
    nwbfile = new_nwbfile(
        session_description=(
            f"IRFA image reconstructions and inverse receptive fields computed from the "
            f"recording '{src_id}' ({record.get('source', 'source not recorded')})"
        ),
        session_start_time=start,
        related_publications=[PAPER_DOI],
        keywords=[*(meta.pop("keywords", None) or []), *_KEYWORDS],
        subject=meta.pop("subject", None),
        experimenter=meta.pop("experimenter", None),
        institution=meta.pop("institution", None),
        lab=meta.pop("lab", None),
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
    return write_nwbfile(nwbfile, path, overwrite=overwrite)


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


def _check_append(path: Path, local_source: Path | None) -> None:
    if not path.is_file():
        raise InputError(
            f"cannot append to {path}: it is not a local file. Results can only be added to a "
            "local copy of the source; call write_results without append=True to write a new "
            "results file instead"
        )
    if local_source is None:
        raise InputError(
            f"cannot append to {path}: the results do not come from a local file; write a new "
            "results file instead (append=False)"
        )
    if local_source.resolve() != path.resolve():
        raise InputError(
            f"cannot append to {path}: the results come from {local_source}; results are only "
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


__all__ = ["IMAGE_CONTAINERS", "results_containers", "value_row", "write_results"]
