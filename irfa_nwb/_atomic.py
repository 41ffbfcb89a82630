"""Atomic file writes: write next to the destination, then rename over it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path in the destination's folder; rename it to ``path`` on success.

    The temporary file is removed when the block raises, so a failed write never leaves a
    partial file and never touches an existing ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_nwb_atomic(nwbfile: Any, path: str | os.PathLike) -> Path:
    """Write an in-memory ``pynwb.NWBFile`` to ``path`` atomically."""
    from pynwb import NWBHDF5IO

    with atomic_path(path, ".tmp.nwb") as tmp, NWBHDF5IO(str(tmp), "w") as io:
        io.write(nwbfile)
    return Path(path)
