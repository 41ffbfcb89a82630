"""Building and writing NWB files: the one place where irfa-nwb makes NWB containers.

Used by the TVSD converter, the simulator and the results writer, so every file irfa-nwb
writes follows the same conventions: metadata that passes nwbinspector, images in ``Images``
containers with ``order_of_images``, tables of plain columns (large numeric columns gzipped,
no JSON strings in cells), electrodes grouped by array, the output path checked before any
work, and an atomic write (temporary file in the same folder, then rename).

pynwb / hdmf are imported inside the functions.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import write_nwb_atomic
from .._version import __version__
from ..errors import InputError
from ..outputs import check_output_path

__all__ = [
    "add_electrodes",
    "copy_subject",
    "images_container",
    "new_nwbfile",
    "safe_name",
    "table",
    "write_nwbfile",
]

#: numeric columns larger than this are written gzip-compressed
_COMPRESS_BYTES = 1 << 20


def new_nwbfile(
    *,
    session_description: str,
    session_start_time: datetime | None = None,
    identifier: str | None = None,
    subject: Any = None,
    keywords: Sequence[str] = (),
    **metadata: Any,
) -> Any:
    """A ``pynwb.NWBFile`` with irfa-nwb's provenance filled in.

    Parameters
    ----------
    session_description : str
    session_start_time : datetime, optional
        Default: now (UTC). A naive datetime is taken as UTC.
    identifier : str, optional
        Default: a fresh UUID.
    subject : pynwb.file.Subject or mapping, optional
        A mapping is passed to ``Subject(**subject)``.
    keywords : sequence of str
    **metadata
        Any other ``NWBFile`` argument (``experimenter``, ``lab``, ``institution``,
        ``related_publications``, ``experiment_description``...). None values are dropped.
    """
    from pynwb import NWBFile
    from pynwb.file import Subject

    start = session_start_time or datetime.now(timezone.utc)
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    if isinstance(subject, Mapping):
        subject = Subject(**{k: v for k, v in subject.items() if v is not None})
    kwargs = {k: v for k, v in metadata.items() if v is not None}
    kwargs.setdefault("was_generated_by", [["irfa-nwb", __version__]])
    return NWBFile(
        session_description=session_description,
        identifier=identifier or str(uuid.uuid4()),
        session_start_time=start,
        subject=subject,
        keywords=list(dict.fromkeys(keywords)) or None,
        **kwargs,
    )


def copy_subject(subject: Any) -> Any:
    """A new ``Subject`` with the fields of ``subject`` (to describe the same animal)."""
    from pynwb.file import Subject

    keys = ("age", "age__reference", "description", "genotype", "sex", "species", "subject_id",
            "weight", "date_of_birth", "strain")
    kwargs = {k: getattr(subject, k, None) for k in keys}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if kwargs.get("age__reference") not in ("birth", "gestational"):
        kwargs.pop("age__reference", None)
    return Subject(**kwargs)


def safe_name(name: Any) -> str:
    """An NWB object name from any label (``/`` and ``:`` are not allowed in names)."""
    return str(name).replace("/", "_").replace(":", "_")


def _packed(data: Any) -> Any:
    if isinstance(data, np.ndarray) and data.dtype.kind in "fiu" and data.nbytes > _COMPRESS_BYTES:
        from hdmf.backends.hdf5 import H5DataIO

        return H5DataIO(data, compression="gzip", compression_opts=4, shuffle=True)
    return data


def table(name: str, description: str, columns: Mapping[str, tuple[Any, str]]) -> Any:
    """A ``DynamicTable`` from ``{column: (values, description)}`` (values: array or list)."""
    from hdmf.common import DynamicTable, VectorData

    cols = [
        VectorData(name=key, description=desc, data=_packed(data))
        for key, (data, desc) in columns.items()
    ]
    return DynamicTable(name=name, description=description, columns=cols)


def images_container(
    name: str,
    pixels: np.ndarray,
    *,
    names: Sequence[str],
    descriptions: Sequence[str],
    description: str,
) -> Any:
    """An ``Images`` container, one image per item of ``pixels`` (in that order).

    Parameters
    ----------
    pixels : array ``(n, y, x)``, ``(n, y, x, 1)`` or ``(n, y, x, 3)``
        uint8 or float32 in [0, 1]; grey images become ``GrayscaleImage``, colour ones
        ``RGBImage`` (rows are y).
    names, descriptions : sequences of str, one per image
    description : str
        Of the container.
    """
    from pynwb.base import ImageReferences, Images
    from pynwb.image import GrayscaleImage, RGBImage

    pixels = np.asarray(pixels)
    if len(names) != len(pixels) or len(descriptions) != len(pixels):
        raise InputError("images_container needs one name and one description per image")
    if len(set(names)) != len(names):
        raise InputError(f"image names must be unique in {name}")
    grey = pixels.ndim == 3 or pixels.shape[-1] == 1
    items = []
    for i in range(len(pixels)):
        data = pixels[i]
        if grey:
            items.append(GrayscaleImage(name=safe_name(names[i]), data=data.reshape(data.shape[:2]),
                                        description=descriptions[i]))
        else:
            items.append(RGBImage(name=safe_name(names[i]), data=data,
                                  description=descriptions[i]))
    return Images(
        name=name,
        images=items,
        description=description,
        order_of_images=ImageReferences(name="order_of_images", data=items),
    )


def add_electrodes(
    nwbfile: Any,
    *,
    ids: np.ndarray,
    groups: np.ndarray,
    areas: np.ndarray,
    device_name: str,
    device_description: str,
    group_descriptions: Mapping[str, str] | None = None,
    columns: Mapping[str, tuple[np.ndarray, str]] | None = None,
) -> dict[str, Any]:
    """Add one electrode per id, grouped by array, with their area as ``location``.

    Parameters
    ----------
    ids, groups, areas : arrays, one value per electrode
        Electrode id, electrode group (array) name, brain area.
    device_name, device_description :
        The recording device (one for all arrays; say who made it in the description, the
        ``manufacturer`` field is deprecated in NWB 2.9).
    group_descriptions : mapping group -> str, optional
        Default: "<area> array <group>".
    columns : mapping name -> (values, description), optional
        Extra electrode columns (e.g. ``rf_x``, ``reliability``).

    Returns
    -------
    dict
        ``ElectrodeGroup`` by group name.
    """
    device = nwbfile.create_device(name=device_name, description=device_description)
    groups = np.asarray(groups).astype(str)
    areas = np.asarray(areas).astype(str)
    made: dict[str, Any] = {}
    for g in dict.fromkeys(groups.tolist()):
        area = areas[groups == g][0] or "unknown"
        made[g] = nwbfile.create_electrode_group(
            name=safe_name(g),
            description=(group_descriptions or {}).get(g, f"{area} array {g}"),
            location=area,
            device=device,
        )
    extra = dict(columns or {})
    for col, (_, desc) in extra.items():
        nwbfile.add_electrode_column(name=col, description=desc)
    for k, electrode_id in enumerate(np.asarray(ids).tolist()):
        values = {col: _scalar(vals[k]) for col, (vals, _) in extra.items()}
        nwbfile.add_electrode(
            id=int(electrode_id), group=made[groups[k]], location=areas[k] or "unknown",
            **values,
        )
    return made


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def write_nwbfile(nwbfile: Any, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``nwbfile`` to ``path`` atomically, after checking the path can be written.

    Raises
    ------
    InputError
        ``path`` exists (without ``overwrite``), is a folder, or its folder is missing or
        read-only.
    """
    path = check_output_path(path, overwrite=overwrite, what="NWB file")
    write_nwb_atomic(nwbfile, path)
    return path
