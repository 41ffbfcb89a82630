"""Property: a damaged NWB file is read correctly or refused clearly, never half-read.

Hypothesis damages a small NWB file (bits flipped, bytes replaced or zeroed over 1-64 bytes,
or the file truncated) at offsets anywhere in it, and a separate worker process loads the
damaged copy with ``load_dataset`` and checks it with ``verify_nwb`` (a damaged file may make the
HDF5 library loop or crash: the worker is killed after a time limit and restarted). For every
example:

- neither call hangs, crashes, or raises anything but an error of our hierarchy;
- an ``NWBReadError`` names the damaged file;
- the original file is unchanged (SHA-256).

Two files are damaged. The simulator's file is written in HDF5's default (oldest) format, where
metadata and uncompressed data carry no checksum: a flipped bit there can change a value with no
error from any reader, so "loaded but different" is counted, not forbidden. Its copy in the newest
format with a checksum on everything HDF5 can checksum (see ``corruption.checksummed_copy``) gets
the strict property: wherever the damage falls outside the global heaps (variable-length strings,
the only bytes left without a checksum), the Dataset loads identical to the original or the load
fails with an ``NWBReadError`` naming the file, and ``verify_nwb`` reports damage whenever the
load fails.
"""

from __future__ import annotations

import bisect
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from corruption import (  # noqa: E402
    Worker,
    checksummed_copy,
    corrupt,
    global_heap_ranges,
    sha256,
)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TESTS = Path(__file__).resolve().parent
EXAMPLES = 25
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=30_000,  # ms; the worker's own limit (20 s) catches a hang first
    derandomize=True,  # the same examples on every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
KINDS = ("flip", "bytes", "zero", "truncate")


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    from irfa_nwb import write_simulated_recording

    folder = tmp_path_factory.mktemp("originals")
    default = write_simulated_recording(
        folder / "default.nwb", n_stimuli=6, n_test=2, n_repeats=2, image_size=8,
        units_per_array=2, arrays={"V1": 1, "V4": 1},
    )
    checked = checksummed_copy(default, folder / "checksummed.nwb")
    return {"default": Path(default).resolve(), "checksummed": Path(checked).resolve()}


@pytest.fixture(scope="module")
def worker(originals):
    w = Worker({k: str(v) for k, v in originals.items()}, TESTS.parent, TESTS, timeout=20)
    yield w
    w.close()


@st.composite
def damages(draw, size: int, favour: np.ndarray | None = None):
    kind = draw(st.sampled_from(KINDS))
    anywhere = st.integers(0, size - 1)
    if favour is not None and kind != "truncate":
        offset = draw(st.one_of(anywhere, st.integers(0, len(favour) - 1).map(favour.__getitem__)))
    else:
        offset = draw(anywhere)
    length = 0 if kind == "truncate" else draw(st.integers(1, 64))
    return kind, int(offset), length, draw(st.integers(0, 2**16))


def _overlaps(ranges: list[tuple[int, int]], start: int, stop: int) -> bool:
    starts = [a for a, _ in ranges]
    i = bisect.bisect_right(starts, stop - 1) - 1
    return i >= 0 and ranges[i][1] > start


def _check_common(answer: dict, path: Path) -> tuple[str, str]:
    assert "hang" not in answer, f"reading {path} did not finish in 20 s"
    assert "crash" not in answer, f"reading {path} crashed the interpreter: {answer}"
    load, verify = answer["load"], answer["verify"]
    for step in (load, verify):
        assert step["kind"] not in ("bare", "unnamed"), f"{path}: {step}"
    return load["kind"], verify["kind"]


def _run(name, originals, worker, tmp_path_factory, record_property, favour_protected):
    source = originals[name]
    data = source.read_bytes()
    before = sha256(source)
    heaps = sorted(global_heap_ranges(data))
    favour = None
    if favour_protected:
        mask = np.ones(len(data), dtype=bool)
        for a, b in heaps:
            mask[a:b] = False
        favour = np.flatnonzero(mask)
    folder = tmp_path_factory.mktemp(f"damaged-{name}")
    tally: Counter[str] = Counter()

    @SETTINGS
    @given(damage=damages(len(data), favour))
    def check(damage):
        kind, offset, length, seed = damage
        damaged = corrupt(data, kind, offset, length, seed)
        path = (folder / f"{kind}-{offset}-{length}-{seed}.nwb").resolve()
        path.write_bytes(damaged)
        try:
            answer = worker.examine(name, str(path))
        finally:
            path.unlink()
        load, verify = _check_common(answer, path)
        tally[f"load {load} / verify {verify}"] += 1
        if name == "checksummed":
            stop = len(data) if kind == "truncate" else offset + length
            if not _overlaps(heaps, offset, stop):
                assert load in ("identical", "named"), (damage, answer)
            if load == "named":
                assert verify == "damaged", (damage, answer)
        assert sha256(source) == before

    check()
    n = sum(tally.values())
    record_property(f"corrupted_{name}_tried", n)
    record_property(f"corrupted_{name}_outcomes", dict(tally))
    record_property(f"corrupted_{name}_worker_restarts", worker.restarts)
    assert n >= EXAMPLES // 2  # hypothesis ran (it may skip duplicate examples)
    assert worker.restarts == 0
    return tally


def test_damaged_default_format_file_is_read_or_refused_clearly(
    originals, worker, tmp_path_factory, record_property
):
    tally = _run("default", originals, worker, tmp_path_factory, record_property, False)
    assert any(k.startswith("load named") for k in tally)  # damage was met, and named


def test_damaged_checksummed_file_is_identical_or_refused(
    originals, worker, tmp_path_factory, record_property
):
    tally = _run("checksummed", originals, worker, tmp_path_factory, record_property, True)
    assert any(k.startswith("load named") for k in tally)
