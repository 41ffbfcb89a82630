"""Exceptions raised by irfa-nwb.

Every error a user can cause derives from :class:`IRFAError`, so a caller (and the command line)
can tell "your input is wrong" apart from a bug. Each also derives from the built-in exception
a Python user would expect (``ValueError``, ``FileNotFoundError``...).
"""

from __future__ import annotations


class IRFAError(Exception):
    """Base class of all errors raised on purpose by irfa-nwb."""


class InputError(IRFAError, ValueError):
    """Input data has the wrong shape, type, range or layout."""


class MissingWeightsError(IRFAError, FileNotFoundError):
    """Pretrained network weights are needed but not available on this machine."""


class NWBLayoutError(IRFAError, ValueError):
    """An NWB file does not hold what was asked for (no stimuli, no units, ...)."""


class NWBReadError(InputError, OSError):
    """The bytes of an NWB (HDF5) file cannot be read: damaged, truncated, or not HDF5.

    Attributes
    ----------
    source : str or None
        The file (absolute path) or URL that was read.
    h5path : str or None
        The HDF5 object being read when the error happened (``"/units/spike_times"``), where
        known.
    """

    def __init__(self, message: str, *, source: str | None = None, h5path: str | None = None):
        super().__init__(message)
        self.source = source
        self.h5path = h5path

    def __str__(self) -> str:  # OSError's __str__ would print errno fields
        return str(self.args[0]) if self.args else ""


class RemoteReadError(IRFAError, ConnectionError):
    """Streaming a remote file failed and retrying did not help (network, server, timeout).

    Attributes
    ----------
    url : str
        The URL that was read.
    what : str
        What failed last (``"HTTP 503 Service Unavailable"``, ``"connection dropped"``...).
    tries : int
        How many times the failing request was tried.
    """

    def __init__(self, message: str, *, url: str = "", what: str = "", tries: int = 0):
        super().__init__(message)
        self.url = url
        self.what = what
        self.tries = tries

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
