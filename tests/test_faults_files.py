"""Broken files give one clear error (NWBReadError naming the file), and verify_nwb finds damage.

Every test damages a copy of a tiny simulated NWB file and checks that the original is
byte-identical afterwards (SHA-256).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from data_helpers import REAL_NWB, sha256
from http_faults import FaultyRangeServer

from irfa_nwb.data import VerifyReport, load_dataset, open_nwb, verify_nwb
from irfa_nwb.errors import InputError, IRFAError, NWBLayoutError, NWBReadError

ADVICE = "download it again"


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    from irfa_nwb import write_simulated_recording

    path = tmp_path_factory.mktemp("original") / "sim.nwb"
    write_simulated_recording(
        path, n_stimuli=6, n_test=2, n_repeats=2, image_size=8, units_per_array=2,
        arrays={"V1": 1, "V4": 1},
    )
    return path.resolve()


@pytest.fixture
def damaged(original, tmp_path):
    """``damaged(edit)``: a copy of the original changed by ``edit(bytearray)``; the original is
    checked unchanged at teardown."""
    before = sha256(original)

    def make(edit, name="damaged.nwb") -> Path:
        data = bytearray(original.read_bytes())
        edited = edit(data)
        data = data if edited is None else edited
        path = (tmp_path / name).resolve()
        path.write_bytes(bytes(data))
        return path

    yield make
    assert sha256(original) == before


def _layout(original: Path) -> dict[str, int]:
    with h5py.File(original, "r") as f:
        chunk = f["units/spike_times"].id.get_chunk_info(0)
        return {
            "chunk_offset": chunk.byte_offset,
            "chunk_size": chunk.size,
            "units_header": h5py.h5o.get_info(f["units"].id).addr,
            "index_offset": f["units/spike_times_index"].id.get_chunk_info(0).byte_offset,
            "n_index": len(f["units/spike_times_index"]),
            "n_spikes": len(f["units/spike_times"]),
        }


def _flip(offset: int, mask: int = 0xFF):
    def edit(data: bytearray) -> None:
        data[offset] ^= mask

    return edit


def _assert_clear(err: NWBReadError, path: Path, *words: str) -> None:
    message = str(err)
    assert str(path) in message and err.source == str(path), message
    assert ADVICE in message and "not modified" in message
    for word in words:
        assert word in message, message
    assert isinstance(err, IRFAError) and isinstance(err, OSError) and isinstance(err, ValueError)
    assert "GroupBuilder" not in message and len(message) < 1200  # no builder dumps


@pytest.mark.parametrize(
    ("case", "edit", "words"),
    [
        ("zero-byte", lambda d: bytearray(), ["not an HDF5 file"]),
        ("truncated-half", lambda d: d[: len(d) // 2], ["truncated"]),
        ("not-hdf5", lambda d: bytearray(b"<html>503 Service Unavailable</html>\n" * 40),
         ["not an HDF5 file"]),
        ("superblock-flip", _flip(8, 0x07), ["superblock", "opening the file failed"]),
    ],
)
def test_unopenable_file_is_one_clear_error(damaged, case, edit, words):
    path = damaged(edit)
    for read in (lambda: load_dataset(path), lambda: open_nwb(path).__enter__()):
        with pytest.raises(NWBReadError) as info:
            read()
        _assert_clear(info.value, path, *words)
        assert info.value.h5path is None
    report = verify_nwb(path)
    assert not report.ok and not report.opened
    assert str(report).startswith(f"{path}: UNREADABLE")


def test_damaged_compressed_chunk_names_the_dataset(original, damaged):
    where = _layout(original)
    path = damaged(_flip(where["chunk_offset"] + where["chunk_size"] // 2))
    with pytest.raises(NWBReadError) as info:
        load_dataset(path)
    _assert_clear(info.value, path, "'/units/spike_times'", "compressed data are damaged")
    assert info.value.h5path == "/units/spike_times"
    # the same inside a user's own block of code
    with pytest.raises(NWBReadError, match="/units/spike_times"):
        with open_nwb(path) as nwb:
            nwb.units["spike_times"].target.data[:]


def test_damaged_object_header_is_not_a_missing_table(original, damaged):
    # hdmf skips a group it cannot open with a mere warning; the loader then used to report
    # "no units table": the file was mislabelled as a layout problem
    path = damaged(_flip(_layout(original)["units_header"], 0x07))
    with pytest.raises(NWBReadError) as info:
        load_dataset(path)
    assert not isinstance(info.value, NWBLayoutError)
    _assert_clear(info.value, path, "HDF5 object '/units'", "bad object header")
    assert info.value.h5path == "/units"
    report = verify_nwb(path)
    assert "/units" in report.failed and "<nwb>" in report.failed


def test_inconsistent_ragged_index_is_a_read_error(original, damaged):
    where = _layout(original)
    last = where["index_offset"] + where["n_index"] - 1  # uint8 offsets, uncompressed
    assert where["n_spikes"] < 255
    path = damaged(lambda d: d.__setitem__(last, 255))  # past the last spike time
    with pytest.raises(NWBReadError) as info:
        load_dataset(path)
    _assert_clear(info.value, path, "spike_times", f"does not fit its {where['n_spikes']} values")


def test_folder_and_missing_file(tmp_path, original):
    folder = tmp_path / "session.nwb"
    folder.mkdir()
    for call in (load_dataset, verify_nwb):
        with pytest.raises(InputError, match="is a folder"):
            call(folder)
        with pytest.raises(FileNotFoundError, match="no NWB file"):
            call(tmp_path / "missing.nwb")


def test_errors_in_user_code_are_not_relabelled(original):
    with pytest.raises(KeyError):
        with open_nwb(original) as nwb:
            nwb.acquisition["not-there"]
    with pytest.raises(ZeroDivisionError):
        with open_nwb(original):
            1 / 0  # noqa: B018


def test_verify_intact_file_is_clean(original):
    before = sha256(original)
    report = verify_nwb(original, sha256=before)
    assert isinstance(report, VerifyReport) and report.ok, str(report)
    assert report.sha256 == before and not report.failed
    with h5py.File(original, "r") as f:
        datasets = []
        f.visititems(lambda n, o: datasets.append("/" + n) if isinstance(o, h5py.Dataset) else None)
    assert sorted(report.readable) == sorted(datasets)
    spikes = next(c for c in report.checks if c.path == "/units/spike_times")
    assert spikes.nbytes == _layout(original)["n_spikes"] * 8 and spikes.n_chunks == 1
    text = str(report)
    assert text.startswith(f"{original}: OK") and "NWB tree: built" in text
    assert sha256(original) == before


def test_verify_finds_and_names_a_damaged_chunk(original, damaged):
    where = _layout(original)
    path = damaged(_flip(where["chunk_offset"] + 10))
    report = verify_nwb(path)
    assert not report.ok and report.opened
    assert report.failed == ["/units/spike_times"]
    assert "/units/spike_times_index" in report.readable
    bad = report.problems[0]
    assert bad.n_failed == 1 and f"[0:{where['n_spikes']}]" in bad.error
    assert "compressed" in bad.error
    text = str(report)
    assert "DAMAGED" in text and "/units/spike_times (dataset): 1 of 1 chunks" in text
    assert "download it again" in text


def test_verify_reads_in_bounded_blocks(original):
    report = verify_nwb(original, block_bytes=50)  # 8x8x3 uint8 images: 24-byte rows
    image = next(c for c in report.checks if c.path.endswith("stimulus_00000"))
    assert report.ok and image.n_chunks == 4 and image.nbytes == 192
    with pytest.raises(InputError):
        verify_nwb(original, block_bytes=0)


def test_verify_checksum_finds_silent_damage(original, damaged):
    # an uncompressed image: HDF5 keeps no checksum of these bytes, only sha256= can tell
    with h5py.File(original, "r") as f:
        offset = f["stimulus/templates/natural_image_patches/stimulus_00000"].id.get_offset()
    path = damaged(_flip(offset + 5))
    assert verify_nwb(path).ok  # no reader can see this damage...
    report = verify_nwb(path, sha256=sha256(original))
    assert not report.ok and "DOES NOT match" in str(report)  # ...but the checksum can


def test_verify_a_streamed_file(original, damaged):
    where = _layout(original)
    path = damaged(_flip(where["chunk_offset"] + 10))
    with FaultyRangeServer({"ok.nwb": original.read_bytes(), "bad.nwb": path.read_bytes()}) as srv:
        assert verify_nwb(srv.url("ok.nwb"), retry_delay=0.01, timeout=2).ok
        url = srv.url("bad.nwb")
        report = verify_nwb(url, retry_delay=0.01, timeout=2)
    assert report.failed == ["/units/spike_times"]
    assert report.source == url


@pytest.mark.skipif(not REAL_NWB.is_dir(), reason="real NWB files not available")
def test_real_files_verify_clean(tmp_path):
    files = sorted(REAL_NWB.glob("*.nwb"))
    assert files
    for path in files:
        before = sha256(path)
        report = verify_nwb(path)
        assert report.ok, str(report)
        assert sha256(path) == before


@pytest.mark.skipif(not REAL_NWB.is_dir(), reason="real NWB files not available")
def test_real_file_truncated_is_clear(tmp_path):
    source = REAL_NWB / "sub-anm369963_ses-20170228.nwb"
    copy = tmp_path / source.name
    shutil.copyfile(source, copy)
    data = copy.read_bytes()
    copy.write_bytes(data[: len(data) * 3 // 4])
    with pytest.raises(NWBReadError, match="truncated") as info:
        with open_nwb(copy):
            pass
    assert str(copy.resolve()) in str(info.value)
    assert np.asarray(verify_nwb(copy).opened) == np.False_


def test_read_error_messages_are_short_and_specific():
    from irfa_nwb.data._readerrors import named_read_error

    denied = OSError(
        "Unable to synchronously open file (unable to open file: name = 'x.nwb', errno = 13, "
        "error message = 'Permission denied', flags = 0, o_flags = 0)"
    )
    err = named_read_error("/data/x.nwb", denied, during="opening the file")
    assert "no permission to read the file" in str(err) and "permissions" in str(err)
    assert ADVICE not in str(err)
    huge = RuntimeError("bad B-tree signature " + "x" * 5000)
    err = named_read_error("/data/x.nwb", huge)
    assert "damaged HDF5 structure" in str(err) and ADVICE in str(err)
    assert len(str(err)) < 1000
