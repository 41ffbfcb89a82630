"""Streaming reads with bounded retries, timeouts and logged retries (remfile or fsspec).

Both backends are driven the same way so that they fail the same way:

- the size of a remote file is probed once (``HEAD``, else ``GET bytes=0-0``);
- every read that h5py asks for goes through :class:`RetryingFile`, which retries a failed read
  after a transient failure (connection refused / dropped, timeout, HTTP 5xx / 429 / 408) with
  capped exponential backoff, logs every retry on the ``irfa_nwb.data`` logger, and gives up with
  :class:`~irfa_nwb.errors.RemoteReadError` (naming the URL, the byte range and what failed);
- a permanent failure (HTTP 4xx, a server that ignores ``Range``) is not retried.

remfile retries each request itself (eight times, up to ~25 s in all, with no timeout); here its
HTTP session makes one attempt with a timeout and reports a failure as final, so the number of
tries and the delays are the ones of :class:`RetryPolicy`. fsspec's HTTP files do not retry; the
aiohttp session gets the same timeout.
"""

from __future__ import annotations

import io
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from ..errors import InputError, RemoteReadError

__all__ = ["RetryPolicy", "RetryingFile", "open_remote_file", "probe_size"]

log = logging.getLogger("irfa_nwb.data")
T = TypeVar("T")
_RANGE_RE = re.compile(r"bytes=(\d+)-(\d*)")
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_RETRY_STATUSES = (408, 429)
_INCOMPLETE_RE = re.compile(r"IncompleteRead\((\d+) bytes read, (\d+) more expected\)")


@dataclass(frozen=True)
class RetryPolicy:
    """How streamed reads are retried.

    Parameters
    ----------
    retries : int
        How many times a failed request is tried again (0: never); each read of a byte range
        and the opening of the file are retried separately.
    delay : float
        Seconds to wait before the first retry; the wait doubles after each failure.
    max_delay : float
        Longest wait between two tries (seconds).
    timeout : float
        Seconds to wait for a connection and for each piece of a response before the attempt
        counts as failed.
    """

    retries: int = 3
    delay: float = 0.5
    max_delay: float = 8.0
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) or self.retries < 0:
            raise InputError(f"retries must be an integer >= 0, not {self.retries!r}")
        for name in ("delay", "max_delay"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise InputError(f"{name} must be a number of seconds >= 0, not {value!r}")
        if not (isinstance(self.timeout, int | float) and 0 < self.timeout < math.inf):
            raise InputError(f"timeout must be a number of seconds > 0, not {self.timeout!r}")

    def wait(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (0-based)."""
        return float(min(self.max_delay, self.delay * 2.0**attempt))


class _Failure(Exception):
    """One failed attempt, already described (``what``) and classified (``permanent``)."""

    def __init__(self, what: str, *, permanent: bool = False):
        super().__init__(what)
        self.what = what
        self.permanent = permanent


def _remfile_failure_class() -> type[_Failure]:
    """A :class:`_Failure` that remfile re-raises at once instead of retrying it itself."""
    try:
        from remfile.RemFile import _PermanentHTTPError  # remfile >= 0.1.15
    except ImportError:  # pragma: no cover - older remfile retries our failure 8 more times
        return _Failure

    class _RemfileFailure(_Failure, _PermanentHTTPError):
        pass

    return _RemfileFailure


def _status_failure(status: int, reason: str) -> _Failure:
    permanent = 400 <= status < 500 and status not in _RETRY_STATUSES
    text = f"HTTP {status} {reason}".strip()
    return _Failure(text, permanent=permanent)


def _classify(err: BaseException, timeout: float) -> _Failure | None:
    """Describe a failed attempt; ``None`` when ``err`` is not a network failure at all."""
    if isinstance(err, _Failure):
        return err
    if isinstance(err, RemoteReadError):
        return None
    names = {cls.__name__ for cls in type(err).__mro__}
    module = type(err).__module__
    status = getattr(err, "status", None)
    if isinstance(status, int) and "ClientResponseError" in names:  # aiohttp
        return _status_failure(status, str(getattr(err, "message", "")))
    if "ClientPayloadError" in names:
        return _Failure(f"connection dropped in the middle of a response ({err})")
    if "ServerDisconnectedError" in names:
        return _Failure("connection dropped by the server")
    if isinstance(err, TimeoutError) or "TimeoutError" in names or "Timeout" in names:
        return _Failure(f"timed out (no data for {timeout:g} s)")
    if "ChunkedEncodingError" in names or "ProtocolError" in names:
        m = _INCOMPLETE_RE.search(str(err))
        detail = f" ({m[1]} bytes received, {m[2]} more expected)" if m else ""
        return _Failure(f"connection dropped in the middle of a response{detail}")
    if module.startswith("requests") and "ConnectionError" in names:
        if "RemoteDisconnected" in str(err) or "Connection aborted" in str(err):
            return _Failure("connection closed by the server without a response")
        return _Failure(f"cannot connect ({err})")
    if isinstance(err, FileNotFoundError):
        # fsspec reports any failure to learn the size of an http file (a 503 too) as
        # FileNotFoundError(url) raised from the real error: judge by that one
        cause = err.__cause__
        if cause is not None and not isinstance(cause, FileNotFoundError):
            found = _classify(cause, timeout)
            if found is not None:
                return found
        return _Failure(f"not found ({err})", permanent=True)
    if isinstance(err, PermissionError):
        return _Failure(f"permission denied ({err})", permanent=True)
    if "ClientError" in names or isinstance(err, ConnectionError):
        return _Failure(f"connection failed ({err})")
    if module.startswith("requests") and "RequestException" in names:
        return _Failure(f"request failed ({err})", permanent=True)  # invalid URL, redirects...
    if isinstance(err, OSError):
        return _Failure(f"I/O error ({err})")
    return None


def call_with_retries(
    func: Callable[[], T], *, policy: RetryPolicy, url: str, what: str
) -> T:
    """Call ``func`` until it succeeds, a permanent failure, or ``policy.retries`` retries.

    Raises
    ------
    RemoteReadError
        The last failure, naming ``url``, ``what`` was being done and how often it was tried.
    """
    start = time.monotonic()
    for attempt in range(policy.retries + 1):
        try:
            return func()
        except Exception as err:  # noqa: BLE001 - classified below, others re-raised
            failure = _classify(err, policy.timeout)
            if failure is None:
                raise
            tries = attempt + 1
            if failure.permanent or attempt == policy.retries:
                elapsed = time.monotonic() - start
                if failure.permanent:
                    tail = (
                        "not retried: the server refuses this request (check the URL; a signed "
                        "DANDI URL expires, open the dandi:// address again)"
                    )
                else:
                    tail = (
                        f"gave up after {tries} tries in {elapsed:.1f} s. Check the network and "
                        "the URL, or try again later (retries=, retry_delay= and timeout= of "
                        "open_nwb / load_dataset set how hard to try)"
                    )
                raise RemoteReadError(
                    f"streaming {url} failed: {failure.what} while {what}; {tail}",
                    url=url,
                    what=failure.what,
                    tries=tries,
                ) from err
            wait = policy.wait(attempt)
            log.warning(
                "%s: %s while %s; retry %d of %d in %.2g s",
                url,
                failure.what,
                what,
                tries,
                policy.retries,
                wait,
                extra={"irfa_retry": tries, "irfa_url": url, "irfa_failure": failure.what},
            )
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _expected_length(headers: Any) -> int | None:
    rng = headers.get("Range") if headers else None
    m = _RANGE_RE.fullmatch(rng or "")
    if m is None or not m[2]:
        return None
    return int(m[2]) - int(m[1]) + 1


def _http_session(policy: RetryPolicy, failure: type[_Failure] = _Failure) -> Any:
    """A ``requests`` session that makes one checked attempt per request, with a timeout."""
    import requests

    class _OneShotSession(requests.Session):
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", policy.timeout)
            try:
                response = super().request(method, url, *args, **kwargs)
            except requests.RequestException as err:
                found = _classify(err, policy.timeout) or _Failure(str(err))
                raise failure(found.what, permanent=found.permanent) from err
            headers = kwargs.get("headers")
            expected = _expected_length(headers)
            if response.status_code not in (200, 206):
                found = _status_failure(response.status_code, response.reason or "")
                raise failure(found.what, permanent=found.permanent)
            if expected is not None and method.upper() == "GET" and not kwargs.get("stream"):
                if response.status_code == 200:
                    raise failure(
                        "the server ignores HTTP Range requests (answered 200 with the whole "
                        "file), so the file cannot be streamed; download it instead",
                        permanent=True,
                    )
                got = len(response.content)
                if got != expected:
                    raise failure(
                        f"connection dropped in the middle of a response ({got} of {expected} "
                        "bytes received)"
                    )
            return response

    return _OneShotSession()


def probe_size(url: str, policy: RetryPolicy, session: Any = None) -> int:
    """Size in bytes of the file at an http(s) ``url`` (``HEAD``, else ``GET bytes=0-0``)."""
    own = session is None
    session = session or _http_session(policy)
    try:
        try:  # HEAD is cheapest, but presigned S3 URLs and some mocks refuse it: fall back
            head = session.head(url, allow_redirects=True, headers={"Accept-Encoding": "identity"})
            length = head.headers.get("Content-Length")
            if head.status_code == 200 and length is not None and "Content-Encoding" not in (
                head.headers
            ):
                return int(length)
        except _Failure:
            pass

        def ranged_get() -> int:
            response = session.get(
                url, headers={"Range": "bytes=0-0", "Accept-Encoding": "identity"}, stream=True
            )
            try:
                m = _CONTENT_RANGE_RE.fullmatch(response.headers.get("Content-Range", ""))
                if response.status_code == 206 and m and m[3] != "*":
                    return int(m[3])
                if response.status_code == 200 and "Content-Length" in response.headers:
                    return int(response.headers["Content-Length"])
                raise _Failure("the server does not say how large the file is", permanent=True)
            finally:
                response.close()

        return call_with_retries(ranged_get, policy=policy, url=url, what="asking for its size")
    finally:
        if own:
            session.close()


class RetryingFile(io.RawIOBase):
    """A read-only, seekable file over another one whose reads are retried (see module doc).

    Parameters
    ----------
    raw : file-like
        Has ``seek`` and ``read``; a failed ``read`` may be repeated after a ``seek``.
    size : int
        Size of the file in bytes.
    url : str
        For messages.
    policy : RetryPolicy
    """

    def __init__(self, raw: Any, *, size: int, url: str, policy: RetryPolicy):
        super().__init__()
        self._raw = raw
        self._size = int(size)
        self._pos = 0
        self.url = url
        self.policy = policy

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence!r}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        start = self._pos
        if size is None or size < 0:
            size = self._size - start
        n = max(0, min(size, self._size - start))
        if n == 0:
            return b""

        def attempt() -> bytes:
            self._raw.seek(start)
            data = self._raw.read(n)
            if len(data) != n:
                raise _Failure(f"short read ({len(data)} of {n} bytes)")
            return bytes(data)

        data = call_with_retries(
            attempt, policy=self.policy, url=self.url, what=f"reading bytes {start}-{start + n - 1}"
        )
        self._pos = start + n
        return data

    def close(self) -> None:
        if not self.closed:
            try:
                close = getattr(self._raw, "close", None)
                if close is not None:
                    close()
            finally:
                super().close()


def _fsspec_client_kwargs(policy: RetryPolicy) -> dict[str, Any]:
    import aiohttp

    return {
        "timeout": aiohttp.ClientTimeout(
            total=None, sock_connect=policy.timeout, sock_read=policy.timeout
        )
    }


def open_remote_file(
    url: str,
    *,
    backend: str,
    cache_dir: str | Path | None,
    policy: RetryPolicy,
) -> RetryingFile:
    """Open ``url`` for h5py: a :class:`RetryingFile` over a remfile or fsspec file object.

    Parameters
    ----------
    url : str
        http(s) URL (either backend) or any fsspec URL (``backend="fsspec"``).
    backend : {"remfile", "fsspec"}
    cache_dir : path-like, optional
        remfile ``DiskCache`` / fsspec ``filecache`` folder.
    policy : RetryPolicy
    """
    scheme = urlparse(url).scheme or "file"
    http = scheme in ("http", "https")
    if backend == "remfile":
        import remfile

        if not http:
            raise InputError(
                f"the remfile backend streams http(s) URLs only, not {url!r}; "
                "use backend='fsspec' for other protocols"
            )
        session = _http_session(policy, _remfile_failure_class())
        try:
            size = probe_size(url, policy, session)
        except BaseException:
            session.close()
            raise
        disk_cache = None
        if cache_dir is not None:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            disk_cache = remfile.DiskCache(str(cache_dir))
        try:
            raw = remfile.File(url, disk_cache=disk_cache, _size=size)
        except TypeError:  # pragma: no cover - a remfile without _size asks for the size itself
            raw = remfile.File(url, disk_cache=disk_cache)
        old = getattr(raw, "session", None)
        if old is not None:
            old.close()
        raw.session = session  # one checked attempt per request; RetryingFile retries
        raw_close = raw.close

        def close() -> None:
            try:
                raw_close()
            finally:
                session.close()

        raw.close = close
        return RetryingFile(raw, size=size, url=url, policy=policy)
    if backend == "fsspec":
        return _open_fsspec(url, scheme=scheme, cache_dir=cache_dir, policy=policy)
    raise InputError(f"backend must be 'remfile' or 'fsspec', not {backend!r}")


def _open_fsspec(
    url: str, *, scheme: str, cache_dir: str | Path | None, policy: RetryPolicy
) -> RetryingFile:
    import fsspec

    http = scheme in ("http", "https")
    size = probe_size(url, policy) if http else None

    def new_filesystem() -> Any:
        if cache_dir is not None:
            # a new instance per try: a failed download stays registered (as complete!) in the
            # in-memory cache index of the instance that attempted it
            return fsspec.filesystem(
                "filecache",
                target_protocol=scheme,
                target_options={"client_kwargs": _fsspec_client_kwargs(policy)} if http else {},
                cache_storage=str(cache_dir),
                skip_instance_cache=True,
            )
        if http:
            return fsspec.filesystem(
                scheme, client_kwargs=_fsspec_client_kwargs(policy), skip_instance_cache=True
            )
        return fsspec.filesystem(scheme)

    def attempt() -> Any:
        fs = new_filesystem()
        try:
            if http and cache_dir is None:
                raw = fs.open(url, "rb", size=size)
            else:
                raw = fs.open(url, "rb")
        except FileNotFoundError as err:
            if size is None or err.__cause__ is not None:
                raise
            # fsspec's filecache asks exists() first, which answers False on any failure (a 503
            # too); the size request above found the file, so this failure is transient
            raise _Failure("the server did not answer (fsspec: 'not found')") from err
        if size is not None and cache_dir is not None:
            got = raw.seek(0, io.SEEK_END)
            raw.seek(0)
            if got != size:
                raw.close()
                pop = getattr(fs, "pop_from_cache", None)
                if pop is not None:
                    pop(url)
                raise _Failure(f"incomplete download ({got} of {size} bytes)")
        return raw

    raw = call_with_retries(attempt, policy=policy, url=url, what="opening the file")
    if size is None:
        size = int(raw.seek(0, io.SEEK_END))
        raw.seek(0)
    return RetryingFile(raw, size=size, url=url, policy=policy)
