"""Open NWB files wherever they live: local paths, open ``NWBFile`` objects, DANDI, HTTP(S).

:func:`open_nwb` is a context manager that hides whether a file is local or streamed. Local
files are always opened read-only (``mode="r"``). Remote files are streamed with ``remfile``
(byte-range requests with retries, optional on-disk chunk cache) or, on request, with
``fsspec`` (optionally wrapped in a local file cache).

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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from ..errors import InputError

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
_TRANSIENT = (OSError, ConnectionError, TimeoutError)


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


def _retry(func: Any, retries: int, what: str) -> Any:
    delay = 0.5
    for attempt in range(retries + 1):
        try:
            return func()
        except _TRANSIENT as err:
            if attempt == retries:
                raise OSError(f"{what} failed after {retries + 1} tries: {err}") from err
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.contextmanager
def _open_remote(
    url: str, *, backend: str, cache_dir: str | os.PathLike | None, retries: int
) -> Iterator[Any]:
    import h5py
    from pynwb import NWBHDF5IO

    with contextlib.ExitStack() as stack:
        if backend == "remfile":
            import remfile

            disk_cache = None
            if cache_dir is not None:
                Path(cache_dir).mkdir(parents=True, exist_ok=True)
                disk_cache = remfile.DiskCache(str(cache_dir))
            fileobj = _retry(
                lambda: remfile.File(url, disk_cache=disk_cache), retries, f"opening {url}"
            )
            stack.callback(fileobj.close)
        elif backend == "fsspec":
            import fsspec

            if cache_dir is not None:
                fs = fsspec.filesystem(
                    "filecache",
                    target_protocol=urlparse(url).scheme or "file",
                    cache_storage=str(cache_dir),
                )
            else:
                fs = fsspec.filesystem(urlparse(url).scheme or "file")
            fileobj = _retry(lambda: fs.open(url, "rb"), retries, f"opening {url}")
            stack.enter_context(fileobj)
        else:
            raise InputError(f"backend must be 'remfile' or 'fsspec', not {backend!r}")
        h5 = _retry(lambda: h5py.File(fileobj, "r"), retries, f"reading {url}")
        stack.enter_context(h5)
        io = stack.enter_context(NWBHDF5IO(file=h5, mode="r", load_namespaces=True))
        yield _retry(io.read, retries, f"reading the NWB tree of {url}")


@contextlib.contextmanager
def _open_with_provenance(
    source: Any,
    *,
    backend: str = "remfile",
    cache_dir: str | os.PathLike | None = None,
    retries: int = 3,
    api_url: str | None = None,
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Like :func:`open_nwb` but also yield a provenance dict (str/int values only)."""
    from pynwb import NWBHDF5IO, NWBFile

    if isinstance(source, NWBFile):
        prov: dict[str, Any] = {
            "source": _path_of(source) or f"<in-memory NWBFile {source.identifier}>"
        }
        yield source, _with_identity(prov, source)
        return
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise InputError(
            "source must be a path, an open pynwb.NWBFile, a dandi:// address or an http(s) "
            f"URL, not {type(source).__name__}"
        )
    address = parse_dandi_address(source)
    if address is not None:
        url, prov = resolve_dandi_url(address, api_url=api_url)
        with _open_remote(url, backend=backend, cache_dir=cache_dir, retries=retries) as nwb:
            yield nwb, _with_identity({**prov, "url": url}, nwb)
        return
    m = _ASSET_URL_RE.match(source)
    if m:
        prov = {"source": source, "asset_id": m["asset"]}
        if m["id"]:
            prov.update(dandiset_id=m["id"], dandiset_version=m["version"])
        with _open_remote(source, backend=backend, cache_dir=cache_dir, retries=retries) as nwb:
            yield nwb, _with_identity(prov, nwb)
        return
    scheme = urlparse(source).scheme
    if scheme in ("http", "https", "s3", "gs") or (backend == "fsspec" and "://" in source):
        with _open_remote(source, backend=backend, cache_dir=cache_dir, retries=retries) as nwb:
            yield nwb, _with_identity({"source": source}, nwb)
        return
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no NWB file at {str(path)!r}")
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a folder; pass the path of an .nwb file")
    with NWBHDF5IO(str(path), mode="r", load_namespaces=True) as io:
        nwb = io.read()
        yield nwb, _with_identity({"source": str(path.resolve())}, nwb)


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
        How many times opening a remote file is retried after a transient error (remfile itself
        also retries each byte-range request).
    api_url : str, optional
        DANDI API base URL (default the public archive).

    Yields
    ------
    pynwb.NWBFile
        The file, valid until the ``with`` block ends. Extension namespaces cached in the file
        are loaded.

    Examples
    --------
    >>> with open_nwb("session.nwb") as nwb:  # doctest: +SKIP
    ...     print(nwb.units.colnames)
    """
    with _open_with_provenance(
        source, backend=backend, cache_dir=cache_dir, retries=retries, api_url=api_url
    ) as (nwb, _):
        yield nwb
