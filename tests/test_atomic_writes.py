"""Atomic writes clean up after killed writers, spare live ones, and give files the usual modes."""

from __future__ import annotations

import os
import select
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from data_helpers import new_nwbfile

from irfa_nwb._atomic import (
    _host_tag,
    atomic_path,
    remove_stale_temporaries,
    temporary_path,
    write_nwb_atomic,
)

REPO = Path(__file__).resolve().parents[1]
posix_only = pytest.mark.skipif(os.name != "posix", reason="signals and umask are POSIX")


def _slow_writer(target: Path) -> subprocess.Popen:
    """A process that starts an atomic write of ``target``, prints the temporary path, stalls."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from irfa_nwb._atomic import atomic_path
        with atomic_path({str(target)!r}, ".tmp.nwb") as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half of a file")
                f.flush()
                print(tmp, flush=True)
                time.sleep(30)
        """
    )
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def _tmp_path_of(proc: subprocess.Popen) -> Path:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    assert ready, "the writer did not start"
    line = proc.stdout.readline().strip()
    assert line, "the writer failed"
    return Path(line)


@posix_only
def test_killed_writer_leaves_a_file_that_the_next_write_removes(tmp_path):
    target = tmp_path / "session.nwb"
    writer = _slow_writer(target)
    try:
        tmp = _tmp_path_of(writer)
        assert tmp.parent == tmp_path and tmp.name.startswith(".session.nwb.irfa-tmp.")
        assert tmp.name.endswith(".tmp.nwb") and f".{writer.pid}." in tmp.name
        # while the writer lives, another write to the folder leaves its file alone
        with atomic_path(tmp_path / "other.bin") as other:
            other.write_bytes(b"x")
        assert tmp.exists()
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(10) == -signal.SIGKILL
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(10)
        writer.stdout.close()
    assert tmp.exists() and not target.exists()  # the killed write left its file behind
    decoys = [
        tmp_path / ".session.nwb.0123456789ab.tmp.nwb",  # the old naming: not ours to judge
        tmp_path / "notes.tmp",
        tmp_path / f".x.irfa-tmp.{_host_tag()}.{writer.pid}.nothex000000.tmp",
    ]
    for decoy in decoys:
        decoy.write_bytes(b"keep")
    with atomic_path(tmp_path / "next.bin") as nxt:
        nxt.write_bytes(b"next")
    assert not tmp.exists()  # removed by the next write
    assert all(d.exists() for d in decoys) and (tmp_path / "next.bin").read_bytes() == b"next"
    assert not target.exists()


def test_files_of_other_machines_are_removed_only_when_old(tmp_path):
    young = tmp_path / ".a.nwb.irfa-tmp.00000000.4242.0123456789ab.tmp.nwb"
    old = tmp_path / ".b.nwb.irfa-tmp.00000000.4242.ba9876543210.tmp.nwb"
    for path in (young, old):
        path.write_bytes(b"other machine")
    stamp = time.time() - 120
    os.utime(old, (stamp, stamp))
    if _host_tag() == "00000000":  # pragma: no cover - this machine's own tag
        pytest.skip("the host tag of this machine is the test's 'other machine'")
    assert remove_stale_temporaries(tmp_path) == [old]
    assert young.exists() and not old.exists()


def test_own_live_process_and_failed_write(tmp_path):
    mine = temporary_path(tmp_path / "model.safetensors")
    mine.write_bytes(b"being written by this very process")
    assert remove_stale_temporaries(tmp_path, min_age=0) == []
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"previous version")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("writer failed")
    assert target.read_bytes() == b"previous version"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, target.name])


def _write_mkstemp_style(tmp: Path) -> None:
    """A library that writes its own 0o600 file and renames it over the path it was given."""
    fd, own = tempfile.mkstemp(dir=tmp.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(b"weights")
    os.replace(own, tmp)


@posix_only
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_respect_the_umask(tmp_path, umask):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    old = os.umask(umask)
    try:
        nwb = write_nwb_atomic(new_nwbfile(), tmp_path / "results.nwb")
        model = tmp_path / "model.safetensors"
        with atomic_path(model) as tmp:  # as irfa_nwb.estimator.persistence.save_model does
            safetensors_numpy.save_file({"w": np.zeros(3, np.float32)}, str(tmp))
        other = tmp_path / "other.bin"
        with atomic_path(other) as tmp:
            _write_mkstemp_style(tmp)
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    for path in (nwb, model, other):
        assert stat.S_IMODE(path.stat().st_mode) == expected, (path, oct(path.stat().st_mode))


@posix_only
def test_replacing_a_file_keeps_its_mode(tmp_path):
    target = tmp_path / "shared.bin"
    target.write_bytes(b"v1")
    target.chmod(0o640)
    with atomic_path(target) as tmp:
        _write_mkstemp_style(tmp)
    assert target.read_bytes() == b"weights"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
