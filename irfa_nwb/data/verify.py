"""Check that every byte of an NWB file that a reader may need can be read.

:func:`verify_nwb` walks the whole HDF5 tree, reads every attribute and every dataset (chunk by
chunk for chunked datasets, in bounded blocks otherwise, so memory stays bounded), resolves
object references, and then builds the NWB tree with pynwb. Damaged compressed chunks, broken
object headers or links and unreadable attributes are found and named; the report lists what is
readable and what failed. The file is opened read-only and never modified.

What no reader can find: HDF5 keeps no checksum of the raw bytes of uncompressed datasets (nor of
variable-length strings or of attributes in files written with the default, oldest file format),
so a flipped bit there changes a value without any error. Pass the file's published SHA-256
(DANDI lists it as the asset's ``sha256`` digest) as ``sha256=`` to rule that out.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import InputError, NWBReadError, RemoteReadError
from ._readerrors import describe, read_nwb_tree
from ._remote import RetryPolicy, open_remote_file

__all__ = ["ObjectCheck", "VerifyReport", "verify_nwb"]

_MAX_DEPTH = 64
_MAX_FAILED_CHUNKS_NAMED = 3


@dataclass
class ObjectCheck:
    """The outcome of reading one HDF5 object (or the file, or the NWB tree).

    Attributes
    ----------
    path : str
        HDF5 path (``"/units/spike_times"``); ``"<file>"`` for the file itself and
        ``"<nwb>"`` for the NWB tree.
    kind : str
        ``"file"``, ``"group"``, ``"dataset"``, ``"link"`` or ``"nwb"``.
    ok : bool
        Everything of it was read.
    error : str or None
        What could not be read, and why.
    shape : tuple of int or None
        Shape of a dataset.
    dtype : str or None
        Data type of a dataset.
    nbytes : int
        Bytes of data read (in memory, after decompression).
    n_chunks : int
        Chunks (or blocks, for unchunked datasets) read.
    n_failed : int
        Chunks or blocks that could not be read.
    """

    path: str
    kind: str
    ok: bool = True
    error: str | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    nbytes: int = 0
    n_chunks: int = 0
    n_failed: int = 0

    def fail(self, message: str) -> None:
        """Mark as failed, keeping the first few messages."""
        self.ok = False
        self.error = message if self.error is None else f"{self.error}; {message}"


@dataclass
class VerifyReport:
    """What :func:`verify_nwb` found: one :class:`ObjectCheck` per HDF5 object.

    ``str(report)`` is a short text report (a verdict, then one line per problem).
    """

    source: str
    checks: list[ObjectCheck] = field(default_factory=list)
    opened: bool = True
    nwb_identifier: str | None = None
    sha256: str | None = None
    expected_sha256: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """The file opened, every object was read, the NWB tree was built, checksums match."""
        digest_ok = self.expected_sha256 is None or self.sha256 == self.expected_sha256
        return self.opened and digest_ok and all(c.ok for c in self.checks)

    @property
    def problems(self) -> list[ObjectCheck]:
        """The checks that failed."""
        return [c for c in self.checks if not c.ok]

    @property
    def failed(self) -> list[str]:
        """Paths of the objects that could not be read (``"<nwb>"``: the NWB tree)."""
        return [c.path for c in self.problems]

    @property
    def readable(self) -> list[str]:
        """Paths of the datasets that were read completely."""
        return [c.path for c in self.checks if c.kind == "dataset" and c.ok]

    @property
    def datasets(self) -> list[ObjectCheck]:
        """The checks of datasets."""
        return [c for c in self.checks if c.kind == "dataset"]

    def __str__(self) -> str:
        n_data = len(self.datasets)
        bad = [c for c in self.datasets if not c.ok]
        nbytes = sum(c.nbytes for c in self.datasets)
        if self.ok:
            verdict = "OK"
        elif not self.opened:
            verdict = "UNREADABLE"
        else:
            verdict = "DAMAGED"
        lines = [f"{self.source}: {verdict}"]
        if self.opened:
            lines.append(
                f"  read {n_data - len(bad)} of {n_data} datasets completely "
                f"({_size(nbytes)} of data) in {self.seconds:.1f} s"
            )
        nwb = next((c for c in self.checks if c.kind == "nwb"), None)
        if nwb is not None and nwb.ok:
            lines.append(f"  NWB tree: built (identifier {self.nwb_identifier!r})")
        if self.expected_sha256 is not None:
            same = "matches" if self.sha256 == self.expected_sha256 else "DOES NOT match"
            lines.append(f"  SHA-256 {self.sha256} {same} the expected {self.expected_sha256}")
        if self.problems:
            lines.append(f"  problems ({len(self.problems)}):")
            lines += [f"    {c.path} ({c.kind}): {c.error}" for c in self.problems]
            lines.append(
                "  The file is damaged or incomplete: download it again and compare its checksum."
            )
        return "\n".join(lines)


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def _slice_text(selection: tuple[slice, ...]) -> str:
    return "[" + ", ".join(f"{s.start}:{s.stop}" for s in selection) + "]"


def _blocks(shape: tuple[int, ...], row_bytes: int, block_bytes: int) -> list[tuple[slice, ...]]:
    """Row blocks of an unchunked dataset, at most ``block_bytes`` each (one row at least)."""
    rows = max(1, block_bytes // max(1, row_bytes))
    rest = tuple(slice(0, n) for n in shape[1:])
    return [(slice(a, min(a + rows, shape[0])), *rest) for a in range(0, shape[0], rows)]


class _Walker:
    def __init__(self, h5: Any, block_bytes: int):
        self.h5 = h5
        self.block_bytes = block_bytes
        self.checks: list[ObjectCheck] = []
        self.seen: set[int] = set()

    def attributes(self, obj: Any, check: ObjectCheck) -> None:
        try:
            names = list(obj.attrs.keys())
        except RemoteReadError:
            raise
        except Exception as err:  # noqa: BLE001 - recorded
            check.fail(f"attributes unreadable: {describe(err)}")
            return
        for name in names:
            try:
                obj.attrs[name]
            except RemoteReadError:
                raise
            except Exception as err:  # noqa: BLE001 - recorded
                check.fail(f"attribute {name!r} unreadable: {describe(err)}")

    def group(self, group: Any, path: str, depth: int) -> None:
        check = ObjectCheck(path, "group")
        self.checks.append(check)
        self.attributes(group, check)
        if depth > _MAX_DEPTH:
            check.fail(f"nested deeper than {_MAX_DEPTH} groups (a loop of links?)")
            return
        try:
            names = list(group.keys())
        except RemoteReadError:
            raise
        except Exception as err:  # noqa: BLE001 - recorded
            check.fail(f"members unreadable: {describe(err)}")
            return
        import h5py

        for name in names:
            # a damaged link name may not be UTF-8: h5py gives bytes, which still open the object
            shown = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            child = path.rstrip("/") + "/" + shown
            try:
                link = group.get(name, getlink=True)
                if isinstance(link, h5py.SoftLink | h5py.ExternalLink):
                    self.link(group, name, child, link)
                    continue
                obj = group[name]
                key = h5py.h5o.get_info(obj.id).addr
            except RemoteReadError:
                raise
            except Exception as err:  # noqa: BLE001 - recorded
                message = f"cannot open: {describe(err)}"
                self.checks.append(ObjectCheck(child, "link", False, message))
                continue
            if key in self.seen:  # a second hard link to an object already read
                continue
            self.seen.add(key)
            if isinstance(obj, h5py.Group):
                self.group(obj, child, depth + 1)
            else:
                self.dataset(obj, child)

    def link(self, group: Any, name: str, path: str, link: Any) -> None:
        import h5py

        check = ObjectCheck(path, "link")
        self.checks.append(check)
        if isinstance(link, h5py.ExternalLink):
            check.error = f"external link to {link.filename}:{link.path} (not checked)"
            return
        try:
            if group.get(name) is None:
                check.fail(f"soft link to {link.path!r}, which does not exist")
        except RemoteReadError:
            raise
        except Exception as err:  # noqa: BLE001 - recorded
            check.fail(f"soft link to {link.path!r} unreadable: {describe(err)}")

    def dataset(self, ds: Any, path: str) -> None:
        check = ObjectCheck(path, "dataset")
        self.checks.append(check)
        self.attributes(ds, check)
        try:
            shape, dtype, chunks = ds.shape, ds.dtype, ds.chunks
        except RemoteReadError:
            raise
        except Exception as err:  # noqa: BLE001 - recorded
            check.fail(f"header unreadable: {describe(err)}")
            return
        check.shape = tuple(int(n) for n in shape) if shape is not None else None
        check.dtype = str(dtype)
        if shape is None or math.prod(shape) == 0:
            return
        try:
            selections = self.selections(ds, shape, chunks)
        except RemoteReadError:
            raise
        except Exception as err:  # noqa: BLE001 - recorded
            check.fail(f"storage unreadable: {describe(err)}")
            return
        if isinstance(selections, str):
            check.fail(selections)
            return
        failed: list[str] = []
        is_ref = dtype.kind == "O" and _is_reference(dtype)
        for selection in selections:
            check.n_chunks += 1
            try:
                values = ds[selection]
                check.nbytes += int(getattr(values, "nbytes", 0))
                if is_ref:
                    self.references(values)
            except RemoteReadError:
                raise
            except Exception as err:  # noqa: BLE001 - recorded
                check.n_failed += 1
                if len(failed) < _MAX_FAILED_CHUNKS_NAMED:
                    where = _slice_text(selection) if selection != () else "value"
                    failed.append(f"{where}: {describe(err)}")
        if failed:
            unit = "chunks" if chunks is not None else "blocks"
            more = "" if check.n_failed <= len(failed) else f" (first {len(failed)} shown)"
            check.fail(
                f"{check.n_failed} of {check.n_chunks} {unit} unreadable{more}: "
                + "; ".join(failed)
            )

    def selections(
        self, ds: Any, shape: tuple[int, ...], chunks: tuple[int, ...] | None
    ) -> list[Any] | str:
        """What to read of ``ds``: its stored chunks, or row blocks of its stored bytes.

        Bounded by what the file holds, not by the shape in the header (a damaged header can
        claim 10**18 elements): only allocated chunks are read, and unchunked data must fit in
        the file. A string is returned when the header contradicts the storage.
        """
        if shape == ():
            return [()]
        if chunks is not None:
            offsets: list[tuple[int, ...]] = []
            if hasattr(ds.id, "chunk_iter"):
                ds.id.chunk_iter(lambda info: offsets.append(tuple(info.chunk_offset)))
            else:  # pragma: no cover - HDF5 < 1.14
                n = ds.id.get_num_chunks()
                offsets = [tuple(ds.id.get_chunk_info(i).chunk_offset) for i in range(n)]
            selections = []
            for offset in offsets:
                if any(o >= n for o, n in zip(offset, shape, strict=True)):
                    return f"a stored chunk at {offset} lies outside the shape {shape}"
                selections.append(
                    tuple(
                        slice(o, min(o + c, n))
                        for o, c, n in zip(offset, chunks, shape, strict=True)
                    )
                )
            return selections
        import h5py

        stored = ds.id.get_storage_size()
        if stored == 0 and not ds.external:
            return []  # never written: every value is the fill value
        if not ds.external:
            filetype = ds.id.get_type()
            n = math.prod(shape)
            variable = filetype.get_class() in (h5py.h5t.VLEN, h5py.h5t.REFERENCE) or (
                isinstance(filetype, h5py.h5t.TypeStringID) and filetype.is_variable_str()
            )
            if variable:  # each element is a heap id or a reference: some bytes at least
                if n > stored:
                    return f"the header says {n} elements but only {stored} bytes are stored"
            elif n * filetype.get_size() != stored:
                return (
                    f"the header says {n * filetype.get_size()} bytes of data ({shape} x "
                    f"{filetype.get_size()} bytes) but {stored} bytes are stored"
                )
        row = math.prod(shape[1:]) * max(ds.dtype.itemsize, 1)
        return _blocks(shape, row, self.block_bytes)

    def references(self, values: Any) -> None:
        import numpy as np

        for ref in np.asarray(values).ravel():
            if ref:  # null references are allowed
                self.h5[ref]


def _is_reference(dtype: Any) -> bool:
    import h5py

    return h5py.check_dtype(ref=dtype) is h5py.Reference


def _hash(fileobj: Any, block: int = 8 << 20) -> str:
    digest = hashlib.sha256()
    fileobj.seek(0)
    while chunk := fileobj.read(block):
        digest.update(chunk)
    fileobj.seek(0)
    return digest.hexdigest()


def verify_nwb(
    source: str | os.PathLike,
    *,
    nwb: bool = True,
    sha256: str | None = None,
    block_bytes: int = 64 << 20,
    backend: str = "remfile",
    cache_dir: str | os.PathLike | None = None,
    retries: int = 3,
    retry_delay: float = 0.5,
    timeout: float = 30.0,
    api_url: str | None = None,
) -> VerifyReport:
    """Read everything in an NWB (HDF5) file and report what is readable and what is not.

    Every group, link and attribute is read, every dataset chunk by chunk (or in blocks of at
    most ``block_bytes`` when it is not chunked), object references are resolved, and then the
    NWB tree is built with pynwb. Reading stops at nothing: every damaged object is listed.

    Parameters
    ----------
    source : str or path-like
        A local path, an http(s) URL or a DANDI address (as for :func:`irfa_nwb.open_nwb`).
    nwb : bool
        Also build the NWB tree (pynwb, cached extension namespaces loaded).
    sha256 : str, optional
        The expected SHA-256 of the file (hex); when given, the file is hashed and compared.
        Only this finds damage in bytes that HDF5 keeps no checksum of (see the module doc).
    block_bytes : int
        Largest block read at once from an unchunked dataset (memory bound).
    backend, cache_dir, retries, retry_delay, timeout, api_url
        How remote files are streamed, as for :func:`irfa_nwb.open_nwb`.

    Returns
    -------
    VerifyReport
        ``report.ok``, ``report.readable``, ``report.failed``, ``report.problems``;
        ``print(report)`` gives a short text report.

    Raises
    ------
    FileNotFoundError
        No file at a local path.
    InputError
        ``source`` is a folder or not a path / URL.
    RemoteReadError
        Streaming failed (a network problem, not a damaged file).
    """
    import h5py

    from .sources import parse_dandi_address, resolve_dandi_url

    started = time.monotonic()
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise InputError(f"source must be a path or a URL, not {type(source).__name__}")
    if block_bytes < 1:
        raise InputError(f"block_bytes must be positive, not {block_bytes!r}")
    policy = RetryPolicy(retries=retries, delay=retry_delay, timeout=timeout)
    address = parse_dandi_address(source)
    if address is not None:
        source, _ = resolve_dandi_url(address, api_url=api_url)
    remote = urlparse(source).scheme in ("http", "https", "s3", "gs") or (
        backend == "fsspec" and "://" in source
    )
    if not remote:
        path = Path(source).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"no NWB file at {str(path)!r}")
        if path.is_dir():
            raise InputError(f"{str(path)!r} is a folder; pass the path of an .nwb file")
        source = str(path.resolve())
    report = VerifyReport(source, expected_sha256=sha256.lower() if sha256 else None)
    if remote:
        fileobj: Any = open_remote_file(
            source, backend=backend, cache_dir=cache_dir, policy=policy
        )
    else:
        fileobj = open(source, "rb")  # noqa: SIM115 - closed below
    try:
        if sha256:
            report.sha256 = _hash(fileobj)
        try:
            h5 = h5py.File(fileobj, "r")
        except RemoteReadError:
            raise
        except Exception as err:  # noqa: BLE001 - recorded
            report.opened = False
            report.checks.append(ObjectCheck("<file>", "file", False, describe(err)))
            return report
        with h5:
            walker = _Walker(h5, block_bytes)
            walker.group(h5, "/", 0)
            report.checks += walker.checks
            if nwb:
                report.checks.append(_check_nwb(h5, report))
    finally:
        fileobj.close()
        report.seconds = time.monotonic() - started
    return report


def _check_nwb(h5: Any, report: VerifyReport) -> ObjectCheck:
    from pynwb import NWBHDF5IO

    check = ObjectCheck("<nwb>", "nwb")
    try:
        with NWBHDF5IO(file=h5, mode="r", load_namespaces=True) as io:
            nwbfile = read_nwb_tree(io, h5, report.source)
            report.nwb_identifier = str(nwbfile.identifier)
    except RemoteReadError:
        raise
    except NWBReadError as err:
        where = f" ({err.h5path} is unreadable)" if err.h5path else ""
        check.fail(f"pynwb cannot build the NWB tree{where}")
    except Exception as err:  # noqa: BLE001 - recorded
        check.fail(f"pynwb cannot build the NWB tree: {describe(err)}")
    return check
