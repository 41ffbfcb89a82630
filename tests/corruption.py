"""Helpers for the corruption tests: damaged copies of NWB files, and where damage can hide.

HDF5 files written with the default (oldest) format keep no checksum of their metadata nor of
the raw bytes of uncompressed datasets, so a flipped bit there can change a value without any
error. :func:`checksummed_copy` rewrites an NWB file in the newest HDF5 format (checksummed
superblock, object headers, B-trees and heaps) with a Fletcher-32 checksum on every chunked
dataset and compact (in-header) storage for scalars. In such a file the only bytes without a
checksum are the global heaps that hold variable-length strings (:func:`global_heap_ranges`).
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from typing import Any

import numpy as np


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _is_ref(dtype: Any) -> bool:
    import h5py

    return h5py.check_dtype(ref=dtype) is not None


def checksummed_copy(src: Path, dst: Path) -> Path:
    """Copy the HDF5 file ``src`` to ``dst`` with every checksum HDF5 can keep (see module)."""
    import h5py

    pending: list[tuple[str, str | None]] = []  # objects / attributes holding references

    def copy_attrs(a: Any, b: Any, path: str) -> None:
        for key in a.attrs:
            dtype = a.attrs.get_id(key).dtype
            value = a.attrs[key]
            if _is_ref(dtype):
                pending.append((path, key))
                null = np.empty(np.shape(value), dtype=dtype)
                null[()] = h5py.Reference()  # filled in once every object exists
                b.attrs.create(key, data=null, dtype=dtype)
            else:
                b.attrs.create(key, data=value, dtype=dtype)

    def copy_dataset(din: Any, gout: Any, name: str) -> None:
        size = int(np.prod(din.shape)) if din.shape else 1
        compact = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        compact.set_layout(h5py.h5d.COMPACT)  # raw data inside the (checksummed) header
        if din.shape == () or size == 0:
            dout = gout.create_dataset(name, shape=din.shape, dtype=din.dtype, dcpl=compact)
        else:
            try:
                dout = gout.create_dataset(
                    name,
                    shape=din.shape,
                    dtype=din.dtype,
                    chunks=din.chunks or True,
                    maxshape=din.maxshape,
                    fletcher32=True,
                    compression=din.compression,
                    compression_opts=din.compression_opts,
                    shuffle=din.shuffle,
                )
            except ValueError:  # variable-length strings take no filters: keep them compact
                dout = gout.create_dataset(name, shape=din.shape, dtype=din.dtype, dcpl=compact)
        if _is_ref(din.dtype):
            pending.append((dout.name, None))
        elif size > 0:
            dout[()] = din[()]
        copy_attrs(din, dout, dout.name)

    def copy_group(gin: Any, gout: Any) -> None:
        copy_attrs(gin, gout, gout.name)
        for name in gin:
            link = gin.get(name, getlink=True)
            if isinstance(link, h5py.SoftLink):
                gout[name] = h5py.SoftLink(link.path)
            elif isinstance(link, h5py.ExternalLink):
                gout[name] = h5py.ExternalLink(link.filename, link.path)
            elif isinstance(gin[name], h5py.Group):
                copy_group(gin[name], gout.create_group(name))
            else:
                copy_dataset(gin[name], gout, name)

    with h5py.File(src, "r") as fin, h5py.File(dst, "w", libver="latest") as fout:
        copy_group(fin, fout)

        def remap(refs: Any) -> Any:
            out = np.empty(np.shape(refs), dtype=h5py.ref_dtype)
            for i, ref in np.ndenumerate(np.asarray(refs, dtype=object)):
                out[i] = fout[fin[ref].name].ref if ref else h5py.Reference()
            return out

        for path, key in pending:
            if key is None:
                fout[path][()] = remap(fin[path][()])
            else:
                fout[path].attrs[key] = remap(fin[path].attrs[key])
    return dst


def global_heap_ranges(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges ``[start, stop)`` of the global heap collections (``GCOL``) in ``data``.

    A collection starts with ``b"GCOL"``, a version byte (1), three reserved bytes and its size
    (8 bytes, little-endian, for the usual 8-byte lengths); this is a scan, so it can also report
    a ``GCOL`` that happens to sit inside other data, which only widens the ranges.
    """
    ranges = []
    start = data.find(b"GCOL")
    while start != -1:
        if data[start + 4 : start + 5] == b"\x01" and start + 16 <= len(data):
            (size,) = struct.unpack_from("<Q", data, start + 8)
            if 16 <= size <= len(data) - start:
                ranges.append((start, start + size))
        start = data.find(b"GCOL", start + 1)
    return ranges


def corrupt(data: bytes, kind: str, offset: int, length: int, seed: int) -> bytes:
    """A damaged copy of ``data``: ``"flip"`` bits, other ``"bytes"``, ``"zero"``, ``"truncate"``.

    ``offset`` is where damage starts; ``length`` how many bytes it covers (``"truncate"``
    keeps the first ``offset`` bytes). Always changes at least one byte (or the length).
    """
    rng = np.random.default_rng(seed)
    if kind == "truncate":
        return data[:offset]
    out = bytearray(data)
    stop = min(len(out), offset + length)
    for i in range(offset, stop):
        if kind == "flip":
            out[i] ^= 1 << int(rng.integers(8))
        elif kind == "bytes":
            out[i] = (out[i] + int(rng.integers(1, 256))) % 256  # never the same value
        elif kind == "zero":
            out[i] = 0
        else:
            raise ValueError(kind)
    return bytes(out)


# --------------------------------------------------------------------------------------------
# A reader in a separate process: a damaged file can make the HDF5 library loop or crash, and
# a test must survive both. The worker loads the originals once, then examines one damaged copy
# per request (a JSON line in, a JSON line out).


def _normalised(ds: Any) -> Any:
    ds = ds.copy()
    for item in (ds, *ds.variables.values()):
        item.attrs.pop("source", None)
    return ds


def _outcome(err: BaseException, path: str) -> dict[str, str]:
    from irfa_nwb.errors import IRFAError, NWBReadError

    name = type(err).__name__
    message = " ".join(str(err).split())[:400]
    if isinstance(err, NWBReadError):
        kind = "named" if path in str(err) else "unnamed"
    elif isinstance(err, IRFAError):
        kind = "irfa"
    else:
        kind = "bare"
    return {"kind": kind, "error": name, "message": message}


def examine(path: str, reference: Any) -> dict[str, Any]:
    """Load and verify ``path``; how each ended (see :func:`_outcome`)."""
    import xarray as xr

    from irfa_nwb.data import load_dataset, verify_nwb

    result: dict[str, Any] = {}
    try:
        ds = _normalised(load_dataset(path))
        try:
            xr.testing.assert_identical(ds, reference)
            result["load"] = {"kind": "identical"}
        except AssertionError as err:
            result["load"] = {"kind": "different", "message": str(err)[:400]}
    except Exception as err:  # noqa: BLE001 - classified
        result["load"] = _outcome(err, path)
    try:
        report = verify_nwb(path)
        result["verify"] = {"kind": "ok" if report.ok else "damaged", "report": str(report)[:800]}
    except Exception as err:  # noqa: BLE001 - classified
        result["verify"] = _outcome(err, path)
    return result


def serve() -> None:
    """Worker loop: first line ``{"originals": {name: path}}``, then ``{"name", "path"}``."""
    import json
    import sys
    import warnings

    from irfa_nwb.data import load_dataset

    warnings.simplefilter("ignore")
    first = json.loads(sys.stdin.readline())
    references = {k: _normalised(load_dataset(p)) for k, p in first["originals"].items()}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        print(json.dumps(examine(request["path"], references[request["name"]])), flush=True)


class Worker:
    """The :func:`serve` loop in a subprocess, with a time limit on every answer."""

    def __init__(self, originals: dict[str, str], repo: Path, tests: Path, timeout: float):
        self.timeout = timeout
        self.originals, self.repo, self.tests = originals, repo, tests
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        import os
        import subprocess
        import sys

        originals, repo, tests = self.originals, self.repo, self.tests
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(tests)])}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import corruption; corruption.serve()"],
            cwd=repo,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        answer = self._ask({"originals": originals}, timeout=120)
        if not answer or not answer.get("ready"):
            self.close()
            raise RuntimeError("the corruption worker did not start")

    def _ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        import json
        import select

        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def examine(self, name: str, path: str) -> dict[str, Any]:
        """The worker's answer, or ``{"hang": True}`` / ``{"crash": code}`` (then restarted)."""
        answer = self._ask({"name": name, "path": path}, self.timeout)
        if answer is not None:
            return answer
        code = self.proc.poll()
        self.close()
        self.restarts += 1
        self._start()  # a fresh worker for what follows
        return {"hang": True} if code is None else {"crash": code}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
