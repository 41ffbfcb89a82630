"""Open NWB files wherever they live: local paths, open ``NWBFile`` objects, DANDI, HTTP(S).

:func:`open_nwb` is a context manager that hides whether a file is local or streamed. Local
files are always opened read-only (``mode="r"``). Remote files are streamed with ``remfile``
(byte-range requests with retries, optional on-disk chunk cache) or, on request, with
``fsspec`` (optionally wrapped in a local file cache). Failed requests are retried a bounded
number of times with capped backoff and a timeout (see :mod:`._remote`); HDF5 / NWB read
failures become :class:`~irfa_nwb.errors.NWBReadError` naming the file (see :mod:`._readerrors`).

DANDI addresses:

- ``dandi://<dandiset id>[@<version>]/<asset path>`` (an optional instance name may precede the
  id: ``dandi://DANDI/000021@0.210208.1450/sub-x/sub-x.nwb``);
- the archive's asset download URLs, ``https://api.dandiarchive.org/api/assets/<asset>/download/``
  and ``https://api.dandiarchive.org/api/dandisets/<id>/versions/<v>/assets/<asset>/download/``;
- the web page of a file, ``https://dandiarchive.org/dandiset/<id>[/<version>]/files?location=<path>``.

Asset paths are resolved with ``dandi.dandiapi`` (the optional ``dandi`` extra).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from ..errors import InputError
from ._readerrors import as_read_error, read_nwb_tree
from ._remote import RetryPolicy, open_remote_file

__all__ = ["DandiAddress", "open_nwb", "parse_dandi_address", "resolve_dandi_url"]

_DANDI_RE = re.compile(
    r"^dandi://(?:(?P<instance>[A-Za-z][\w.-]*)/)?(?P<id>\d{6})(?:@(?P<version>[^/]+))?/(?P<path>.+)$"
)
_ASSET_URL_RE = re.compile(
    r"^https?://[^/]+/api/(?:dandisets/(?P<id>\d{6})/versions/(?P<version>[^/]+)/)?"
    r"assets/(?P<asset>[0-9a-fA-F-]{36})/download/?$"
)
_WEB_URL_RE = re.compile(
    r"^https?://(?:www\.)?dandiarchive\.org/dandiset/(?P<id>\d{6})(?:/(?P<version>[^/?#]+))?/files"
)


@dataclass(frozen=True)
class DandiAddress:
    """A file in a Dandiset: id, optional version (``None``: latest published, else draft)."""

    dandiset_id: str
    version: str | None
    path: str
    instance: str | None = None


def parse_dandi_address(address: str) -> DandiAddress | None:
    """Parse a ``dandi://`` address or a dandiarchive.org file page URL.

    Parameters
    ----------
    address : str
        ``dandi://<id>[@<version>]/<path>`` or
        ``https://dandiarchive.org/dandiset/<id>[/<version>]/files?location=<path>``.

    Returns
    -------
    DandiAddress or None
        ``None`` when ``address`` is not one of these forms.
    """
    m = _DANDI_RE.match(address)
    if m:
        return DandiAddress(m["id"], m["version"], m["path"], m["instance"])
    m = _WEB_URL_RE.match(address)
    if m:
        query = parse_qs(urlparse(address).query)
        location = query.get("location", [""])[0].strip("/")
        if not location.endswith(".nwb"):
            raise InputError(
                f"{address!r} is a DANDI web page but its 'location' ({location!r}) is not an "
                "NWB file; open the file's own page (location=<path>.nwb) or use "
                "dandi://<id>[@version]/<path>"
            )
        return DandiAddress(m["id"], m["version"], unquote(location))
    if address.startswith("dandi://"):
        raise InputError(
            f"cannot parse DANDI address {address!r}; expected "
            "dandi://<6-digit dandiset id>[@<version>]/<asset path>, e.g. "
            "dandi://000021@0.210208.1450/sub-703279277/sub-703279277_ses-719161530.nwb"
        )
    return None


def _dandi_client(api_url: str | None, instance: str | None = None) -> Any:
    try:
        from dandi.dandiapi import DandiAPIClient
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading from DANDI needs the 'dandi' package: pip install 'irfa-nwb[dandi]'"
        ) from err
    if api_url is None and instance is not None:
        from dandi.consts import known_instances

        known = {k.lower(): v.api for k, v in known_instances.items()}
        if instance.lower() not in known:
            raise InputError(
                f"unknown DANDI instance {instance!r} in the address; known: {sorted(known)}"
            )
        api_url = known[instance.lower()]
    if api_url is None:
        api_url = os.environ.get("IRFA_DANDI_API_URL", "https://api.dandiarchive.org/api")
    return DandiAPIClient(api_url=api_url)


def resolve_dandi_url(
    address: DandiAddress | str, *, api_url: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Resolve a DANDI address to a streamable URL and its provenance.

    Parameters
    ----------
    address : DandiAddress or str
        A parsed address or any form accepted by :func:`parse_dandi_address`.
    api_url : str, optional
        DANDI API base URL (default ``https://api.dandiarchive.org/api``, or the environment
        variable ``IRFA_DANDI_API_URL``).

    Returns
    -------
    url : str
        Direct (redirect-resolved, query-stripped) content URL of the asset.
    provenance : dict
        ``dandiset_id``, ``dandiset_version``, ``asset_path``, ``asset_id``, ``source``.
    """
    if isinstance(address, str):
        parsed = parse_dandi_address(address)
        if parsed is None:
            raise InputError(f"{address!r} is not a DANDI address")
        address = parsed
    client = _dandi_client(api_url, address.instance)
    try:
        from dandi.exceptions import NotFoundError
    except ImportError:  # pragma: no cover
        NotFoundError = LookupError  # noqa: N806
    with client:
        try:
            dandiset = client.get_dandiset(address.dandiset_id, address.version, lazy=False)
            asset = dandiset.get_asset_by_path(address.path)
        except NotFoundError as err:
            raise InputError(
                f"DANDI has no asset {address.path!r} in dandiset {address.dandiset_id}"
                f"{'@' + address.version if address.version else ''}: {err}. Check the path "
                "(case-sensitive, relative to the dandiset root) and the version"
            ) from err
        url = asset.get_content_url(follow_redirects=1, strip_query=True)
        version = dandiset.version_id
    provenance = {
        "source": f"dandi://{address.dandiset_id}@{version}/{address.path}",
        "dandiset_id": address.dandiset_id,
        "dandiset_version": str(version),
        "asset_path": address.path,
        "asset_id": str(asset.identifier),
    }
    return url, provenance


@contextlib.contextmanager
def _read_errors(source: str, stack: contextlib.ExitStack) -> Iterator[None]:
    """Opening phase: any failure of the libraries is a failure to read ``source``."""
    try:
        yield
    except Exception as err:
        stack.close()
        translated = as_read_error(err, source, opening=True)
        if translated is not None:
            raise translated from err
        raise


def _open_file(
    source: str,
    stack: contextlib.ExitStack,
    *,
    remote: bool,
    backend: str,
    cache_dir: str | os.PathLike | None,
    policy: RetryPolicy,
) -> Any:
    """Open a local path or a URL read-only and build its NWB tree (closed by ``stack``)."""
    import h5py
    from pynwb import NWBHDF5IO

    if remote:
        fileobj = open_remote_file(source, backend=backend, cache_dir=cache_dir, policy=policy)
        stack.callback(fileobj.close)
        h5 = stack.enter_context(h5py.File(fileobj, "r"))
    else:
        h5 = stack.enter_context(h5py.File(source, "r"))
    io = stack.enter_context(NWBHDF5IO(file=h5, mode="r", load_namespaces=True))
    return read_nwb_tree(io, h5, source)


@contextlib.contextmanager
def _opened(
    source: str,
    *,
    remote: bool,
    backend: str,
    cache_dir: str | os.PathLike | None,
    policy: RetryPolicy,
) -> Iterator[Any]:
    """Yield the NWB file at ``source``; HDF5 / NWB read failures become ``NWBReadError``."""
    if backend not in ("remfile", "fsspec"):
        raise InputError(f"backend must be 'remfile' or 'fsspec', not {backend!r}")
    with contextlib.ExitStack() as stack:
        with _read_errors(source, stack):
            nwb = _open_file(
                source, stack, remote=remote, backend=backend, cache_dir=cache_dir, policy=policy
            )
        try:
            yield nwb
        except Exception as err:
            translated = as_read_error(err, source, opening=False)
            if translated is not None:
                raise translated from err
            raise


@contextlib.contextmanager
def _open_with_provenance(
    source: Any,
    *,
    backend: str = "remfile",
    cache_dir: str | os.PathLike | None = None,
    retries: int = 3,
    retry_delay: float = 0.5,
    timeout: float = 30.0,
    api_url: str | None = None,
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Like :func:`open_nwb` but also yield a provenance dict (str/int values only)."""
    from pynwb import NWBFile

    if isinstance(source, NWBFile):
        prov: dict[str, Any] = {
            "source": _path_of(source) or f"<in-memory NWBFile {source.identifier}>"
        }
        try:
            yield source, _with_identity(prov, source)
        except Exception as err:
            translated = as_read_error(err, prov["source"], opening=False)
            if translated is not None:
                raise translated from err
            raise
        return
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise InputError(
            "source must be a path, an open pynwb.NWBFile, a dandi:// address or an http(s) "
            f"URL, not {type(source).__name__}"
        )
    policy = RetryPolicy(retries=retries, delay=retry_delay, timeout=timeout)
    remote = {"backend": backend, "cache_dir": cache_dir, "policy": policy, "remote": True}
    address = parse_dandi_address(source)
    if address is not None:
        url, prov = resolve_dandi_url(address, api_url=api_url)
        with _opened(url, **remote) as nwb:
            yield nwb, _with_identity({**prov, "url": url}, nwb)
        return
    m = _ASSET_URL_RE.match(source)
    if m:
        prov = {"source": source, "asset_id": m["asset"]}
        if m["id"]:
            prov.update(dandiset_id=m["id"], dandiset_version=m["version"])
        with _opened(source, **remote) as nwb:
            yield nwb, _with_identity(prov, nwb)
        return
    scheme = urlparse(source).scheme
    if scheme in ("http", "https", "s3", "gs") or (backend == "fsspec" and "://" in source):
        with _opened(source, **remote) as nwb:
            yield nwb, _with_identity({"source": source}, nwb)
        return
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no NWB file at {str(path)!r}")
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a folder; pass the path of an .nwb file")
    local = str(path.resolve())
    with _opened(local, **{**remote, "remote": False}) as nwb:
        yield nwb, _with_identity({"source": local}, nwb)


def _path_of(nwbfile: Any) -> str | None:
    try:
        return str(nwbfile.container_source) if nwbfile.container_source else None
    except AttributeError:  # pragma: no cover
        return None


def _with_identity(prov: dict[str, Any], nwbfile: Any) -> dict[str, Any]:
    prov = dict(prov)
    prov["nwb_identifier"] = str(nwbfile.identifier)
    prov["nwb_object_id"] = str(nwbfile.object_id)
    if nwbfile.session_id is not None:
        prov["session_id"] = str(nwbfile.session_id)
    return prov


@contextlib.contextmanager
def open_nwb(
    source: Any,
    *,
    backend: str = "remfile",
    cache_dir: str | os.PathLike | None = None,
    retries: int = 3,
    retry_delay: float = 0.5,
    timeout: float = 30.0,
    api_url: str | None = None,
) -> Iterator[Any]:
    """Open an NWB file read-only, local or streamed, as a context manager.

    Parameters
    ----------
    source : str, path-like or pynwb.NWBFile
        A local path; an open ``NWBFile`` (yielded as is, not closed); a DANDI address
        (``dandi://<id>[@<version>]/<path>``, an archive asset download URL or a
        dandiarchive.org file page); or any http(s) URL of an NWB (HDF5) file.
    backend : {"remfile", "fsspec"}
        How remote files are streamed. ``"fsspec"`` also accepts any fsspec URL (``s3://``,
        ``file://``...).
    cache_dir : path-like, optional
        Keep streamed bytes on disk here (remfile ``DiskCache`` / fsspec ``filecache``), so a
        second read of the same file does not go back to the network.
    retries : int
        How many times a failed request of a remote file (asking for its size, reading a byte
        range) is tried again after a transient failure: connection refused or dropped, timeout,
        HTTP 5xx, 408 or 429. Other HTTP 4xx answers are not retried. Each retry is logged as a
        warning on the ``irfa_nwb.data`` logger.
    retry_delay : float
        Seconds to wait before the first retry; the wait doubles after each failure (at most
        8 s).
    timeout : float
        Seconds to wait for a connection and for each piece of a response before a request
        counts as failed.
    api_url : str, optional
        DANDI API base URL (default the public archive).

    Yields
    ------
    pynwb.NWBFile
        The file, valid until the ``with`` block ends. Extension namespaces cached in the file
        are loaded.

    Raises
    ------
    NWBReadError
        The file cannot be read: not HDF5, truncated, or damaged (while opening it, or while
        reading data inside the ``with`` block). The message names the file, the HDF5 object
        when known, and what to do.
    RemoteReadError
        Streaming failed after the retries (or at once for a permanent HTTP error); the
        message names the URL, the byte range and what failed.
    FileNotFoundError
        No file at a local path.

    Examples
    --------
    >>> with open_nwb("session.nwb") as nwb:  # doctest: +SKIP
    ...     print(nwb.units.colnames)
    """
    with _open_with_provenance(
        source,
        backend=backend,
        cache_dir=cache_dir,
        retries=retries,
        retry_delay=retry_delay,
        timeout=timeout,
        api_url=api_url,
    ) as (nwb, _):
        yield nwb
