"""Turn low-level HDF5 / NWB read failures into one clear :class:`~irfa_nwb.errors.NWBReadError`.

h5py reports a damaged file as ``OSError``, ``KeyError`` or ``RuntimeError`` with the HDF5
library's message ("Unable to synchronously open object (bad object header version number)"),
and hdmf / pynwb report damaged metadata as construction errors that print the whole builder.
Neither names the file, and none says what to do. :func:`as_read_error` decides whether an
exception comes from reading the file (as opposed to a bug or a wrong argument) and builds the
error users see: the file, the HDF5 object when known, a short reason, and the next step.
"""

from __future__ import annotations

import types
from typing import Any

from ..errors import IRFAError, NWBReadError

__all__ = ["ADVICE", "as_read_error", "describe", "h5path_of", "named_read_error"]

ADVICE = (
    "The file may be damaged or incomplete (an interrupted download or copy): download it again "
    "(for DANDI: `dandi download <url>`) and compare its size and checksum with the archive's; "
    "irfa_nwb.data.verify_nwb(<file>) reads every dataset and lists what is unreadable. "
    "The file itself was not modified."
)

# HDF5 library messages -> what they mean for a user (first match wins)
_REASONS = (
    ("permission denied", "no permission to read the file"),
    ("file signature not found", "not an HDF5 file (no HDF5 signature; is it an NWB file?)"),
    ("truncated file", "the file is shorter than its HDF5 header says (truncated)"),
    ("can't decompress", "compressed data are damaged"),
    ("filter returned failure", "compressed data are damaged"),
    ("inflate() failed", "compressed data are damaged"),
    ("checksum", "a checksum does not match (damaged bytes)"),
    ("bad", "damaged HDF5 structure"),
    ("wrong", "damaged HDF5 structure"),
    ("corrupt", "damaged HDF5 structure"),
    ("unable to", "damaged HDF5 structure"),
    ("can't", "damaged HDF5 structure"),
)
_MAX_DETAIL = 300


def _frames(tb: types.TracebackType | None) -> list[types.FrameType]:
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def _in_package(frame: types.FrameType, package: str) -> bool:
    name = str(frame.f_globals.get("__name__", ""))
    filename = frame.f_code.co_filename.replace("\\", "/")
    return (
        name == package
        or name.startswith(package + ".")
        or filename.startswith(package + "/")
        or f"/{package}/" in filename
    )


def _raised_by_hdf5(err: BaseException) -> bool:
    """True when the innermost frame is h5py's compiled layer (an HDF5 library error)."""
    frames = _frames(err.__traceback__)
    if not frames:
        return False
    inner = frames[-1]
    return _in_package(inner, "h5py") and inner.f_code.co_filename.endswith(".pyx")


def _raised_in(err: BaseException, package: str) -> bool:
    return any(_in_package(f, package) for f in _frames(err.__traceback__))


def _name_of(obj: Any) -> str | None:
    """The HDF5 path of an h5py object (``None`` if it is not one or its name is unreadable)."""
    try:
        import h5py
    except ImportError:  # pragma: no cover
        return None
    try:
        if isinstance(obj, h5py.Dataset | h5py.Group):
            return str(obj.name)
        if isinstance(obj, h5py.AttributeManager):
            parent = h5py.h5i.get_name(obj._id)  # noqa: SLF001 - h5py keeps the owner here
            return parent.decode("utf-8", "replace") if parent else None
        if isinstance(obj, h5py.h5d.DatasetID | h5py.h5g.GroupID):
            raw = h5py.h5i.get_name(obj)
            return raw.decode("utf-8", "replace") if raw else None
    except Exception:  # noqa: BLE001 - a damaged object may not even have a readable name
        return None
    return None


def h5path_of(err: BaseException) -> str | None:
    """Best guess of the HDF5 object being read when ``err`` was raised.

    Looks through the traceback, innermost frame first, for an h5py object (the dataset or group
    whose method failed, or hdmf's ``h5obj`` being read) and, for a failed group lookup, the
    name asked for.
    """
    if isinstance(err, NWBReadError) and err.h5path:
        return err.h5path
    for frame in reversed(_frames(err.__traceback__)):
        local = frame.f_locals
        for key in ("self", "dset", "dataset", "h5obj", "obj", "group", "parent"):
            path = _name_of(local.get(key))
            if path is None:
                continue
            child = local.get("name", local.get("k"))
            if isinstance(child, bytes):
                child = child.decode("utf-8", "replace")
            if isinstance(child, str) and child and not child.startswith("/") and (
                frame.f_code.co_name in ("__getitem__", "_get", "get", "__read_group")
            ):
                return path.rstrip("/") + "/" + child
            return path
    builder = getattr(err, "builder", None)  # hdmf ConstructError carries the builder
    if builder is not None:
        path = getattr(builder, "path", None)
        if isinstance(path, str):
            return "/" + path.removeprefix("root").lstrip("/")
    return None


def describe(err: BaseException) -> str:
    """A short, single-line description of a read failure (no builder dumps)."""
    if isinstance(err, NWBReadError):
        return str(err)
    text = str(err)
    if type(err).__name__ == "ConstructError":
        # "(root/units GroupBuilder {...huge dict...}, 'Could not construct Units object due to:
        # ...')": keep the reason only
        reason = text.rsplit("due to:", 1)[-1] if "due to:" in text else text
        text = "could not build the NWB object: " + reason.strip(" )\"'")
    text = " ".join(text.split())
    if isinstance(err, KeyError) and text.startswith(("'", '"')):
        text = text.strip("'\"")
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 3] + "..."
    lowered = text.lower()
    reason = next((meaning for key, meaning in _REASONS if key in lowered), None)
    detail = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return f"{reason} ({detail})" if reason else detail


def named_read_error(
    source: str, err: BaseException, *, during: str = "reading", h5path: str | None = None
) -> NWBReadError:
    """Build the :class:`NWBReadError` for ``err`` raised while ``during`` ``source``."""
    path = h5path or h5path_of(err)
    where = f", HDF5 object {path!r}" if path else ""
    detail = describe(err)
    advice = (
        "Check the file's permissions (and those of its folder)."
        if "permission denied" in detail.lower()
        else ADVICE
    )
    return NWBReadError(
        f"cannot read {source}{where}: {during} failed: {detail}. {advice}",
        source=source,
        h5path=path,
    )


def as_read_error(
    err: BaseException, source: str, *, opening: bool, during: str | None = None
) -> NWBReadError | None:
    """Return the :class:`NWBReadError` that should replace ``err``, or ``None`` to keep it.

    Parameters
    ----------
    err : BaseException
        What was raised.
    source : str
        The file (absolute path) or URL being read.
    opening : bool
        ``err`` was raised while opening the file and building the NWB tree (only the libraries
        were running, so any failure is a failure to read the file); otherwise while reading data
        from an open file (only errors raised by the HDF5 library or by NWB object construction
        are read errors; a ``KeyError`` for a name that does not exist stays as it is).
    during : str, optional
        What was being done ("opening the file", "reading data"), for the message.
    """
    if not isinstance(err, Exception) or isinstance(err, IRFAError) and not (
        isinstance(err, NWBReadError) and err.source is None
    ):
        return None
    during = during or ("opening the file" if opening else "reading data")
    if isinstance(err, NWBReadError):  # raised by our own consistency checks: add the file
        return named_read_error(source, err, during=during)
    if opening:
        return named_read_error(source, err, during=during)
    if type(err).__name__ in ("ConstructError", "BuildError") and _raised_in(err, "hdmf"):
        return named_read_error(source, err, during=during)
    if _raised_by_hdf5(err):
        if isinstance(err, KeyError) and "exist" in str(err):
            return None  # a lookup of a name that is not in the file: not a read failure
        return named_read_error(source, err, during=during)
    return None


def read_nwb_tree(io: Any, h5: Any, source: str) -> Any:
    """``io.read()``, but an object that hdmf skips because it cannot open it is an error.

    hdmf reads past a member it cannot open with only a ``BrokenLinkWarning`` ("Path to Group
    altered/broken at /units") and builds the file without it, so a damaged object header would
    surface later as a misleading "this file has no units table". A soft or external link whose
    target is missing stays a warning (a legitimate, if unusual, file); a hard link that cannot be
    opened is damage and raises :class:`NWBReadError` naming the object.
    """
    import posixpath
    import warnings

    import h5py

    try:
        from hdmf.backends.warnings import BrokenLinkWarning
    except ImportError:  # pragma: no cover - older hdmf
        from hdmf.backends.hdf5.h5tools import BrokenLinkWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BrokenLinkWarning)
        nwbfile = io.read()
    prefix = "Path to Group altered/broken at "
    for warning in caught:
        text = str(warning.message)
        if issubclass(warning.category, BrokenLinkWarning) and text.startswith(prefix):
            path = text[len(prefix) :]
            parent, name = posixpath.split(path)
            try:
                link = h5[parent or "/"].get(name, getlink=True)
            except Exception as err:  # noqa: BLE001 - the parent itself is unreadable
                raise named_read_error(
                    source, err, during="opening the file", h5path=path
                ) from err
            if isinstance(link, h5py.HardLink):
                try:
                    h5[path]
                except Exception as err:  # noqa: BLE001 - the reason the object was skipped
                    raise named_read_error(
                        source, err, during="opening the file", h5path=path
                    ) from err
        warnings.warn_explicit(
            warning.message, warning.category, warning.filename, warning.lineno,
            source=warning.source,
        )
    return nwbfile
