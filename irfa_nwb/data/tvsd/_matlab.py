"""Reading MATLAB ``.mat`` files: v7.3 (HDF5, through h5py) and older (through scipy).

MATLAB v7.3 files are HDF5 files with a 512-byte user block. MATLAB stores arrays in column
(Fortran) order, so h5py, which reads in row (C) order, sees every array **transposed**: a
MATLAB ``[electrode x trial x time]`` array appears as ``(time, trial, electrode)``. Cell arrays
are datasets of object references into ``#refs#``; character arrays are uint16 codes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError, NWBLayoutError

__all__ = ["is_hdf5", "names", "open_v73", "read_variable", "strings"]


def is_hdf5(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an HDF5 (MATLAB v7.3) file."""
    import h5py

    try:
        return bool(h5py.is_hdf5(str(path)))
    except OSError:
        return False


def open_v73(path: str | os.PathLike, what: str) -> Any:
    """Open a MATLAB v7.3 file read-only with h5py, with an actionable error otherwise.

    Parameters
    ----------
    path : path-like
    what : str
        What the file should be (``"TVSD's THINGS_MUA_trials.mat"``), for messages.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} not found")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise InputError(
            f"{str(path)!r} is not a MATLAB v7.3 (HDF5) file: {err}. {what} is v7.3; re-save "
            "older .mat files with save(..., '-v7.3')"
        ) from err


def names(f: Any) -> list[str]:
    """The variables of an open v7.3 file (without MATLAB's ``#refs#`` / ``#subsystem#``)."""
    return sorted(k for k in f if not k.startswith("#"))


def read_variable(path: str | os.PathLike, name: str) -> np.ndarray:
    """One numeric variable of a ``.mat`` file of any version, in MATLAB's orientation.

    v7.3 files are read with h5py and transposed back (so a MATLAB ``1 x 1024`` row vector
    has shape ``(1, 1024)`` here, as ``scipy.io.loadmat`` gives it for older files).

    Raises
    ------
    NWBLayoutError
        The file has no variable ``name`` (the message lists those it has).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} not found")
    if is_hdf5(path):
        import h5py

        with h5py.File(path, "r") as f:
            if name not in f:
                raise NWBLayoutError(f"{path.name} has no variable {name!r} (it has {names(f)})")
            return np.asarray(f[name][()]).T
    from scipy.io import loadmat

    try:
        content = loadmat(str(path), variable_names=[name])
    except (ValueError, OSError, NotImplementedError) as err:
        raise InputError(f"{str(path)!r} is not a readable MATLAB .mat file: {err}") from err
    if name not in content:
        found = sorted(k for k in loadmat(str(path)) if not k.startswith("__"))
        raise NWBLayoutError(f"{path.name} has no variable {name!r} (it has {found})")
    return np.asarray(content[name])


def _string(f: Any, obj: Any) -> str:
    arr = np.asarray(obj[()])
    if arr.dtype == object:  # a cell holding a reference
        return _string(f, f[arr.ravel()[0]])
    codes = arr.ravel(order="F").astype(np.uint32)
    return "".join(chr(c) for c in codes if c)


def strings(f: Any, obj: Any) -> list[str]:
    """A MATLAB v7.3 cell array of strings (dataset of references) as a list of str."""
    import h5py

    if isinstance(obj, h5py.Dataset) and obj.dtype == h5py.ref_dtype:
        return [_string(f, f[ref]) for ref in np.asarray(obj[()]).ravel(order="F")]
    if isinstance(obj, h5py.Dataset):
        return [_string(f, obj)]
    raise NWBLayoutError(f"{obj.name} is not a MATLAB string or cell array of strings")
