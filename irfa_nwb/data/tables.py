"""Column-wise access to NWB / HDMF ``DynamicTable`` objects.

Reading one column at a time (instead of ``to_dataframe()``) keeps streamed reads cheap: each
column is one read, and columns of object references or time series are never resolved unless
asked for (DESIGN.md §4, pitfalls).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import NWBLayoutError, NWBReadError


def colnames(table: Any) -> tuple[str, ...]:
    """Names of the columns of ``table`` (empty when it is ``None``)."""
    if table is None:
        return ()
    return tuple(str(c) for c in table.colnames)


def _decode(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "S":
        return np.char.decode(arr, "utf-8").astype(object).astype(str)
    if arr.dtype.kind == "O" and arr.size and isinstance(arr.flat[0], bytes):
        return np.array([v.decode("utf-8") for v in arr.ravel()]).reshape(arr.shape)
    if arr.dtype.kind == "O" and arr.size and isinstance(arr.flat[0], str):
        return arr.astype(str)
    return arr


def read_column(table: Any, name: str) -> np.ndarray:
    """Read a whole (not ragged) column of ``table`` in one go.

    Columns of references to containers (e.g. ``electrodes.group``) give the containers' names;
    a ``DynamicTableRegion`` gives row indices into its target table.
    """
    from hdmf.common import DynamicTableRegion, VectorIndex

    if name not in colnames(table):
        raise NWBLayoutError(
            f"table {table.name!r} has no column {name!r}; its columns are {list(colnames(table))}"
        )
    col = table[name]
    if isinstance(col, VectorIndex):
        raise NWBLayoutError(
            f"column {name!r} of table {table.name!r} is ragged (one list per row); "
            "it cannot be read as one value per row"
        )
    if isinstance(col, DynamicTableRegion):
        return np.asarray(col.data[:], dtype=np.int64)
    data = col.data
    values = data[:] if not isinstance(data, list | tuple) else list(data)
    if len(values) and hasattr(values[0], "name") and hasattr(values[0], "object_id"):
        return np.array([v.name for v in values])
    return _decode(values)


def read_ragged(table: Any, name: str) -> tuple[Any, np.ndarray]:
    """Return ``(values_dataset, ends)`` of a ragged column without reading the values.

    ``ends[i]`` is the end offset of row ``i`` in ``values_dataset`` (the NWB ``_index``
    convention), so row ``i`` holds ``values_dataset[ends[i-1]:ends[i]]``.
    """
    from hdmf.common import VectorIndex

    if name not in colnames(table):
        raise NWBLayoutError(
            f"table {table.name!r} has no column {name!r}; its columns are {list(colnames(table))}"
        )
    col = table[name]
    if not isinstance(col, VectorIndex):
        raise NWBLayoutError(f"column {name!r} of table {table.name!r} is not ragged")
    ends = np.asarray(col.data[:], dtype=np.int64)
    target = col.target
    n_values = len(target.data)
    if ends.size and (ends[0] < 0 or ends[-1] > n_values or np.any(np.diff(ends) < 0)):
        raise NWBReadError(
            f"the index of the ragged column {name!r} of table {table.name!r} does not fit its "
            f"{n_values} values (offsets must rise from 0 to at most {n_values}; they run from "
            f"{ends.min()} to {ends.max()}{', not in order' if np.any(np.diff(ends) < 0) else ''})",
            h5path=getattr(col.data, "name", None),
        )
    return target.data, ends


def row_ids(table: Any) -> np.ndarray:
    """The ``id`` column of ``table`` as int64."""
    return np.asarray(table.id.data[:], dtype=np.int64)


def first_of_ragged(table: Any, name: str) -> np.ndarray:
    """For a ragged integer column, the first value of each row (-1 for empty rows).

    A column that is not ragged (one value per row) is returned as is.
    """
    from hdmf.common import VectorIndex

    if not isinstance(table[name], VectorIndex):
        return read_column(table, name).astype(np.int64)
    data, ends = read_ragged(table, name)
    values = np.asarray(data[:], dtype=np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    out = np.full(len(ends), -1, dtype=np.int64)
    nonempty = ends > starts
    out[nonempty] = values[starts[nonempty]]
    return out
