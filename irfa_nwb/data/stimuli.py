"""Find stimulus presentations in an NWB file: which image was shown when.

Sources, in the order :func:`find_presentations` prefers them when not told which to use:

0. an ``IndexSeries`` in ``stimulus`` over ``Images`` in ``stimulus_template`` (best practice);
1. an ``ImageSeries`` / ``OpticalSeries`` in ``stimulus`` with embedded frames (one
   presentation per frame);
2. interval tables with an image column: ``image_index`` / ``image_name`` (Allen Visual
   Behavior, DANDI:000713), ``frame`` (Allen Visual Coding, DANDI:000021, ``-1`` = blank), or a
   column named by the user; ``natural_scenes`` tables before others;
3. interval tables of movie frames (``natural_movie_*`` with a ``frame`` column).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, NWBLayoutError
from .images import ImageSet, images_from_nwb_container
from .tables import colnames, read_column

__all__ = ["Presentations", "find_presentations", "list_stimulus_tables", "stimulus_candidates"]

KNOWN_IMAGE_COLUMNS = ("image_index", "frame", "image_name")


@dataclass
class Presentations:
    """Which image (``keys``) was shown at which time (``start_time``)."""

    start_time: np.ndarray
    keys: np.ndarray
    source: str
    object_id: str
    image_column: str | None = None
    image_container: Any = None
    split: np.ndarray | None = None
    n_dropped: int = 0


@dataclass
class _Candidate:
    name: str
    path: str
    kind: str
    n: int
    image_column: str | None
    images_in_file: str | None
    usable: bool
    rank: int
    note: str
    obj: Any


def _template_for(nwbfile: Any, table_name: str) -> Any:
    templates = dict(nwbfile.stimulus_template.items())
    stem = table_name[: -len("_presentations")] if table_name.endswith("_presentations") else None
    if stem and stem in templates:
        return templates[stem]
    if len(templates) == 1:
        return next(iter(templates.values()))
    return None


def _external_files(series: Any) -> list[str] | None:
    ext = getattr(series, "external_file", None)
    data = getattr(series, "data", None)
    if ext is None:
        return None
    embedded = (
        getattr(series, "format", None) != "external"
        and data is not None
        and len(getattr(data, "shape", ())) >= 3
        and data.shape[0] > 0
    )
    if embedded:
        return None
    return [f.decode() if isinstance(f, bytes) else str(f) for f in ext[:]]


def stimulus_candidates(nwbfile: Any) -> list[_Candidate]:
    """Everything in the file that could serve as presentations, usable or not, with notes."""
    from pynwb.image import ImageSeries, IndexSeries

    out: list[_Candidate] = []
    for name, obj in nwbfile.stimulus.items():
        n = int(obj.data.shape[0]) if getattr(obj, "data", None) is not None else 0
        if isinstance(obj, IndexSeries):
            target = (
                obj.indexed_images if obj.indexed_images is not None else obj.indexed_timeseries
            )
            ok = target is not None
            note = f"indexes {type(target).__name__} {target.name!r}" if ok else "indexes nothing"
            out.append(
                _Candidate(
                    name,
                    f"stimulus/{name}",
                    "IndexSeries",
                    n,
                    None,
                    target.name if ok else None,
                    ok,
                    0,
                    note,
                    obj,
                )
            )
        elif isinstance(obj, ImageSeries):
            ext = _external_files(obj)
            if ext is not None:
                note = (
                    f"frames are in {len(ext)} external file(s) ({', '.join(ext[:3])}"
                    f"{', ...' if len(ext) > 3 else ''}), not in the NWB file"
                )
                out.append(
                    _Candidate(
                        name,
                        f"stimulus/{name}",
                        type(obj).__name__,
                        len(ext),
                        None,
                        None,
                        False,
                        1,
                        note,
                        obj,
                    )
                )
            else:
                out.append(
                    _Candidate(
                        name,
                        f"stimulus/{name}",
                        type(obj).__name__,
                        n,
                        None,
                        name,
                        True,
                        1,
                        "one presentation per embedded frame",
                        obj,
                    )
                )
        else:
            out.append(
                _Candidate(
                    name,
                    f"stimulus/{name}",
                    type(obj).__name__,
                    n,
                    None,
                    None,
                    False,
                    9,
                    "not an image or index series",
                    obj,
                )
            )
    for name, table in nwbfile.intervals.items():
        cols = colnames(table)
        image_col = next((c for c in KNOWN_IMAGE_COLUMNS if c in cols), None)
        template = _template_for(nwbfile, name)
        in_file = template.name if template is not None else None
        if image_col is None:
            note = f"no image column (columns: {', '.join(c for c in cols if c != 'timeseries')})"
            rank, usable = 9, False
        elif "movie" in name.lower() and image_col == "frame":
            note, rank, usable = "movie frames", 3, True
        else:
            note, usable = f"image column {image_col!r}", True
            rank = 2 if ("natural_scenes" in name or image_col != "frame") else 3
        if usable and in_file is None:
            note += "; images not in the file (pass images=)"
        out.append(
            _Candidate(
                name,
                f"intervals/{name}",
                "TimeIntervals",
                len(table),
                image_col,
                in_file,
                usable,
                rank,
                note,
                table,
            )
        )
    return out


def list_stimulus_tables(source: Any, **open_kwargs: Any) -> pd.DataFrame:
    """List the interval tables and stimulus series that could serve as presentations.

    Parameters
    ----------
    source : path, URL, DANDI address or pynwb.NWBFile
        Anything :func:`irfa_nwb.open_nwb` accepts.
    **open_kwargs
        Passed to :func:`irfa_nwb.open_nwb` (``cache_dir``, ``backend``...).

    Returns
    -------
    pandas.DataFrame
        One row per candidate: ``name``, ``path``, ``kind``, ``n_presentations``,
        ``image_column``, ``images_in_file`` (name of the container, or None), ``usable`` and a
        ``note`` saying why not / what is missing. Rows are sorted best first.
    """
    from .sources import open_nwb

    with open_nwb(source, **open_kwargs) as nwb:
        cands = sorted(stimulus_candidates(nwb), key=lambda c: (c.rank, c.name))
    return pd.DataFrame(
        {
            "name": [c.name for c in cands],
            "path": [c.path for c in cands],
            "kind": [c.kind for c in cands],
            "n_presentations": [c.n for c in cands],
            "image_column": [c.image_column for c in cands],
            "images_in_file": [c.images_in_file for c in cands],
            "usable": [c.usable for c in cands],
            "note": [c.note for c in cands],
        }
    )


def _describe(cands: list[_Candidate]) -> str:
    if not cands:
        return "the file has no stimulus series and no interval tables"
    return "; ".join(f"{c.path} ({c.kind}, {c.n} rows): {c.note}" for c in cands)


def _series_times(series: Any) -> np.ndarray:
    if series.timestamps is not None:
        return np.asarray(series.timestamps[:], dtype=np.float64)
    n = int(series.data.shape[0])
    return float(series.starting_time or 0.0) + np.arange(n) / float(series.rate)


def _table_keys(values: np.ndarray, column: str, keep_blank: bool) -> tuple[np.ndarray, np.ndarray]:
    """Keys of an image column and a keep-mask (blank / omitted rows dropped)."""
    values = np.asarray(values)
    if values.dtype.kind in "OUS":
        keys = values.astype(str)
        keep = np.ones(len(keys), dtype=bool)
        if not keep_blank:
            keep &= ~np.isin(np.char.lower(keys), ["omitted", "blank", "", "nan", "none"])
        return keys, keep
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not np.all(np.mod(values[finite], 1) == 0):
            raise NWBLayoutError(
                f"image column {column!r} holds non-integer numbers; it cannot index images"
            )
        keep = finite & ((values >= 0) | keep_blank)
        keys = np.where(finite, values, -1).astype(np.int64)
        return keys, keep
    if values.dtype.kind in "uib":
        keys = values.astype(np.int64)
        return keys, (keys >= 0) | keep_blank
    raise NWBLayoutError(f"image column {column!r} has unsupported dtype {values.dtype}")


def find_presentations(
    nwbfile: Any,
    presentations: str | None = None,
    *,
    image_column: str | None = None,
    keep_blank: bool = False,
) -> Presentations:
    """Resolve the presentations to use.

    Parameters
    ----------
    nwbfile : pynwb.NWBFile
    presentations : str, optional
        Name (or ``stimulus/<name>``, ``intervals/<name>`` path) of a stimulus series or an
        interval table. Default: the best candidate (see module docstring); an error lists the
        candidates when several tie or none is usable.
    image_column : str, optional
        Column of an interval table that says which image was shown (default the first of
        ``image_index``, ``frame``, ``image_name`` present).
    keep_blank : bool
        Keep rows with a negative index (``frame == -1``: blank screen) or an ``omitted`` /
        ``blank`` name. Default: drop them.

    Returns
    -------
    Presentations
    """
    from pynwb.image import IndexSeries

    cands = stimulus_candidates(nwbfile)
    if presentations is not None:
        wanted = presentations.strip("/")
        hits = [c for c in cands if c.name == wanted or c.path == wanted]
        if not hits:
            raise NWBLayoutError(
                f"no stimulus series or interval table named {presentations!r} in "
                f"{nwbfile.identifier!r}. Found: {_describe(cands)}"
            )
        if len(hits) > 1:
            raise NWBLayoutError(
                f"{presentations!r} names both {[c.path for c in hits]}; pass the full path"
            )
        chosen = hits[0]
        if not chosen.usable and not (chosen.kind == "TimeIntervals" and image_column):
            raise NWBLayoutError(
                f"{chosen.path} cannot serve as presentations: {chosen.note}."
                + (
                    " Name its image column with image_column=."
                    if chosen.kind == "TimeIntervals"
                    else " Use an interval table with an image column and pass images=."
                )
            )
    else:
        usable = [c for c in cands if c.usable]
        if not usable:
            raise NWBLayoutError(
                f"no usable stimulus presentations in NWB file {nwbfile.identifier!r}: "
                f"{_describe(cands)}. irfa-nwb needs an IndexSeries over Images in "
                "stimulus_template, an ImageSeries with embedded frames, or an interval table "
                "with an image column (pass presentations=<table>, image_column=<column> and "
                "images=<folder/array> when the images are not in the file)"
            )
        best = min(c.rank for c in usable)
        top = [c for c in usable if c.rank == best]
        if len(top) > 1:
            raise NWBLayoutError(
                "several stimulus sources could serve as presentations: "
                f"{[c.path for c in top]}; choose one with presentations=<name>"
            )
        chosen = top[0]

    obj = chosen.obj
    if chosen.kind == "IndexSeries":
        assert isinstance(obj, IndexSeries)
        keys = np.asarray(obj.data[:], dtype=np.int64)
        target = obj.indexed_images if obj.indexed_images is not None else obj.indexed_timeseries
        times = _series_times(obj)
        keep = (keys >= 0) | keep_blank
        split = _matching_split(nwbfile, times)
        return Presentations(
            times[keep],
            keys[keep],
            chosen.path,
            str(obj.object_id),
            None,
            target,
            None if split is None else split[keep],
            int((~keep).sum()),
        )
    if chosen.kind in ("ImageSeries", "OpticalSeries") or chosen.path.startswith("stimulus/"):
        times = _series_times(obj)
        keys = np.arange(len(times), dtype=np.int64)
        return Presentations(times, keys, chosen.path, str(obj.object_id), None, obj)
    # interval table
    table = obj
    column = image_column or chosen.image_column
    if column is None:  # pragma: no cover - guarded above
        raise NWBLayoutError(f"{chosen.path}: no image column")
    if column not in colnames(table):
        raise NWBLayoutError(
            f"interval table {chosen.name!r} has no column {column!r}; its columns are "
            f"{[c for c in colnames(table) if c != 'timeseries']}"
        )
    keys, keep = _table_keys(read_column(table, column), column, keep_blank)
    if "omitted" in colnames(table) and not keep_blank:
        keep &= ~read_column(table, "omitted").astype(bool)
    starts = read_column(table, "start_time").astype(np.float64)
    split = read_column(table, "split").astype(str) if "split" in colnames(table) else None
    return Presentations(
        starts[keep],
        keys[keep],
        chosen.path,
        str(table.object_id),
        column,
        _template_for(nwbfile, chosen.name),
        None if split is None else split[keep],
        int((~keep).sum()),
    )


def _matching_split(nwbfile: Any, times: np.ndarray) -> np.ndarray | None:
    """A ``split`` column of an interval table whose start times equal ``times`` exactly."""
    for table in nwbfile.intervals.values():
        if "split" in colnames(table) and len(table) == len(times):
            starts = read_column(table, "start_time").astype(np.float64)
            if np.array_equal(starts, times):
                return read_column(table, "split").astype(str)
    return None


def file_images(pres: Presentations, image_size: tuple[int, int] | None) -> ImageSet | None:
    """The images the presentations point at inside the file (``None`` when not in it)."""
    if pres.image_container is None:
        return None
    return images_from_nwb_container(pres.image_container, image_size=image_size)


def match_images(pres: Presentations, images: ImageSet, where: str) -> np.ndarray:
    """Check that every presentation key refers to an image; return the stimulus ids.

    Integer keys index images by position (ids are those positions). String keys are matched
    against image names (ids are the names). Integer keys with named images also index by
    position.
    """
    keys = pres.keys
    n = len(images)
    if keys.dtype.kind in "iu":
        if keys.size and keys.min() < 0:
            raise InputError(
                f"{int((keys < 0).sum())} presentations in {pres.source} are blanks (index < 0) "
                "and have no image; load with keep_blank=False, or images=False"
            )
        if keys.size and keys.max() >= n:
            bad = np.unique(keys[(keys >= n) | (keys < 0)])
            raise InputError(
                f"presentations in {pres.source} refer to image index {bad[:5].tolist()} but "
                f"{where} has only {n} images (0..{n - 1}); the image count and the presentations "
                "disagree: pass the full image set (in presentation index order)"
            )
        return keys.astype(np.int64)
    if images.names is None:
        raise InputError(
            f"presentations in {pres.source} name their images (column {pres.image_column!r}, "
            f"e.g. {keys[:3].tolist()}) but {where} are unnamed; pass a folder / list of files "
            "whose stems are those names, or a mapping name -> image"
        )
    names = set(images.names.tolist())
    missing = sorted(set(keys.tolist()) - names)
    if missing:
        raise InputError(
            f"{len(missing)} image names used by {pres.source} are not among the "
            f"{n} images of {where}: {missing[:5]}"
        )
    return keys.astype(str)


def is_path_like(x: Any) -> bool:
    return isinstance(x, str | os.PathLike)
