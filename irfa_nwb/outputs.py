"""Check an output path before a long computation, so a finished run is never lost at the end.

:func:`check_output_path` is called by ``IRFA.save``, ``write_results`` and the command line
*before* training or evaluating: the folder must exist and be writable, an existing file is
only replaced when asked, and there must be room for the expected size where the disk says.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .errors import InputError

__all__ = ["check_output_path", "sha256_of"]


def check_output_path(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    expected_bytes: int | None = None,
    what: str = "output file",
) -> Path:
    """Raise a clear :class:`~irfa_nwb.errors.InputError` now if ``path`` cannot be written.

    Parameters
    ----------
    path : path-like
        The file that will be written.
    overwrite : bool, default False
        Whether an existing file may be replaced.
    expected_bytes : int, optional
        Approximate size of the file; checked against the free space of its folder.
    what : str
        What the file is, for the message ("model file", "results file"...).

    Returns
    -------
    pathlib.Path
        ``path`` made absolute.
    """
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; give a file name inside it")
    if path.exists() and not overwrite:
        raise InputError(
            f"{what} {path} already exists; choose another name or pass overwrite=True "
            "(--overwrite on the command line) to replace it"
        )
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"cannot write {what} {path}: folder {folder} does not exist; create it")
    try:  # the only reliable test of writability (ACLs, read-only mounts, quotas)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".irfa-nwb-probe-", delete=True):
            pass
    except OSError as err:
        raise InputError(
            f"cannot write {what} {path}: folder {folder} is not writable ({err.strerror}); "
            "choose another folder"
        ) from None
    if expected_bytes:
        free = shutil.disk_usage(folder).free
        if free < expected_bytes:
            raise InputError(
                f"cannot write {what} {path}: about {expected_bytes / 2**20:.0f} MiB are needed "
                f"but {folder} has {free / 2**20:.0f} MiB free"
            )
    return path


def sha256_of(path: str | os.PathLike, *, block: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()
