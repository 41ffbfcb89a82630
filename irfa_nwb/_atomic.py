"""Atomic file writes: write a temporary file next to the destination, then rename it over it.

A reader never sees a half-written file, and a failed write leaves the destination as it was.
A write that is killed (power loss, ``SIGKILL``, out of memory) cannot clean up after itself, so
every write first removes the temporary files that killed writes left in the same folder.

Temporary files are named ``.<name>.irfa-tmp.<host>.<pid>.<random>.tmp[.<ext>]`` (``host``: 8
hex digits of a hash of the machine's name; ``pid``: the writing process) and nothing else is
ever removed. One is stale, and removed, when

- its writer ran on this machine and that process is gone (or, should the process id have been
  reused, when it has not been modified for a day); or
- its writer ran on another machine (a shared folder) and it has not been modified for a minute
  (a live writer keeps modifying its file; one paused longer loses it and then fails loudly at
  the rename, never silently).

Written files get the permissions an ordinary ``open(path, "w")`` would give them: those of the
file they replace, else ``0o666`` less the process umask (whatever mode the writing library gave
its own file, e.g. ``0o600`` from ``tempfile.mkstemp``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import stat
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "remove_stale_temporaries", "temporary_path", "write_nwb_atomic"]

log = logging.getLogger("irfa_nwb.io")

MARK = "irfa-tmp"
STALE_AFTER = 60.0  # seconds without modification, for writers that cannot be checked
REUSED_PID_AFTER = 24 * 3600.0  # a live process id older than this is a reused one
_TMP_RE = re.compile(
    rf"^\.(?P<name>.+)\.{MARK}\.(?P<host>[0-9a-f]{{8}})\.(?P<pid>\d+)\.(?P<token>[0-9a-f]{{12}})"
    r"\.tmp(?:\.[A-Za-z0-9]+)?$"
)


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def temporary_path(path: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """The temporary file name used while writing ``path`` (see the module docstring).

    ``suffix`` is ``".tmp"`` or ``".tmp.<ext>"`` (e.g. ``".tmp.nwb"``); another value gets
    ``".tmp"`` put in front.
    """
    path = Path(path)
    if not suffix.startswith(".tmp"):
        suffix = ".tmp" + suffix
    token = uuid.uuid4().hex[:12]
    return path.with_name(f".{path.name}.{MARK}.{_host_tag()}.{os.getpid()}.{token}{suffix}")


def _process_alive(pid: int) -> bool | None:
    """Whether process ``pid`` runs on this machine (``None``: cannot tell here)."""
    if os.name != "posix":
        return None  # os.kill(pid, 0) would terminate the process on Windows
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:  # pragma: no cover
        return None
    return True


def _is_stale(match: re.Match[str], age: float, min_age: float) -> bool:
    if match["host"] != _host_tag():
        return age > min_age
    alive = _process_alive(int(match["pid"]))
    if alive is None:
        return age > min_age
    return not alive or age > REUSED_PID_AFTER


def remove_stale_temporaries(
    folder: str | os.PathLike, *, min_age: float = STALE_AFTER
) -> list[Path]:
    """Remove the temporary files that killed writes left in ``folder``.

    Only files whose name matches this module's pattern are considered, and only stale ones
    are removed (see the module docstring); a concurrent writer's file is left alone. Failures
    to remove (permissions, a file already gone) are ignored.

    Parameters
    ----------
    folder : path-like
    min_age : float
        Seconds without modification after which a file whose writer cannot be checked
        (another machine) counts as stale.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TMP_RE.match(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or not _is_stale(match, now - info.st_mtime, min_age):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
        log.info(
            "removed %s, left by an interrupted write (process %s) of %s",
            entry.path,
            match["pid"],
            match["name"],
        )
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path in the destination's folder; rename it to ``path`` on success.

    The temporary file already exists (empty) when the block starts; write to it (or replace
    it). On success it gets the permissions of the file it replaces, else ``0o666`` less the
    umask, and is renamed over ``path``. When the block raises, it is removed, so a failed
    write never leaves a partial file and never touches an existing ``path``. Stale temporary
    files of earlier, killed writes in the same folder are removed first.

    Parameters
    ----------
    path : path-like
        The destination.
    suffix : str
        Ending of the temporary file's name (``".tmp"``, ``".tmp.nwb"``...).
    """
    path = Path(path)
    remove_stale_temporaries(path.parent)
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    tmp = temporary_path(path, suffix)
    # created by us with 0o666, so the kernel applies the umask: the mode a new file gets
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(fd)
    try:
        if mode is None:
            mode = stat.S_IMODE(os.stat(tmp).st_mode)
        yield tmp
        os.chmod(tmp, mode)  # the writer may have put its own file (and mode) in its place
        os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def write_nwb_atomic(nwbfile: Any, path: str | os.PathLike) -> Path:
    """Write an in-memory ``pynwb.NWBFile`` to ``path`` atomically."""
    from pynwb import NWBHDF5IO

    with atomic_path(path, ".tmp.nwb") as tmp, NWBHDF5IO(str(tmp), "w") as io:
        io.write(nwbfile)
    return Path(path)
