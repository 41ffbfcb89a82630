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
