"""MUA envelope from raw voltage with spikeinterface."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import add_electrodes, add_images, new_nwbfile, write

pytest.importorskip("spikeinterface")

from irfa_nwb.data import load_dataset, mua_envelope, stack_presentations  # noqa: E402
from irfa_nwb.errors import InputError  # noqa: E402

FS = 30_000.0


def _raw(seconds=3.0, seed=0):
    """ch0: 1-3 kHz bursts in [1.0, 1.2) and [2.0, 2.2) s; ch1: 50 Hz hum only; ch2: noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    from scipy.signal import butter, sosfiltfilt

    hf = sosfiltfilt(
        butter(4, (1000, 3000), btype="bandpass", fs=FS, output="sos"), rng.normal(size=t.size)
    )
    burst = ((t >= 1.0) & (t < 1.2)) | ((t >= 2.0) & (t < 2.2))
    ch0 = np.where(burst, 50.0, 1.0) * hf / hf.std()
    ch1 = 100.0 * np.sin(2 * np.pi * 50 * t)
    ch2 = 5.0 * rng.normal(size=t.size)
    return t, np.stack([ch0, ch1, ch2], axis=1).astype(np.float32)


def _reference_envelope(x):
    from scipy.signal import butter, resample_poly, sosfiltfilt

    y = sosfiltfilt(butter(4, (500, 9000), btype="bandpass", fs=FS, output="sos"), x, axis=0)
    y = sosfiltfilt(butter(4, 200, btype="lowpass", fs=FS, output="sos"), np.abs(y), axis=0)
    return resample_poly(y, 1, 30, axis=0)


def test_envelope_matches_scipy_reference():
    from spikeinterface.core import NumpyRecording

    t, x = _raw()
    env = mua_envelope(NumpyRecording(x, FS), progress=False, chunk_duration=0.7)
    assert env.rate == 1000.0 and env.data.shape == (3000, 3) and env.data.dtype == np.float32
    ref = _reference_envelope(x)
    mid = slice(100, 2900)  # away from the edges
    for c in (0, 2):
        r = np.corrcoef(env.data[mid, c], ref[mid, c])[0, 1]
        assert r > 0.98, (c, r)
    on = env.data[1050:1150, 0].mean()
    off = env.data[1400:1900, 0].mean()
    assert on > 20 * off
    assert env.data[mid, 1].max() < 1.0  # 50 Hz hum (amplitude 100) is filtered out


def test_envelope_from_nwb_raw_series(tmp_path):
    from pynwb.ecephys import ElectricalSeries
    from pynwb.image import IndexSeries

    _, x = _raw()
    nwb = new_nwbfile("raw")
    add_electrodes(nwb, {"arrayA": ("V1", 3)})
    images = add_images(nwb, np.zeros((2, 4, 4), dtype=np.uint8))
    onsets = np.array([0.5, 1.0, 1.5, 2.0])
    nwb.add_stimulus(
        IndexSeries(
            name="presentations",
            data=np.array([0, 1, 0, 1], np.uint32),
            indexed_images=images,
            unit="N/A",
            timestamps=onsets,
        )
    )
    region = nwb.create_electrode_table_region([0, 1, 2], "all")
    raw = (x / 1e-6).astype(np.int32)  # stored in microvolt steps
    nwb.add_acquisition(
        ElectricalSeries(
            name="ElectricalSeries",
            data=raw,
            electrodes=region,
            rate=FS,
            conversion=1e-6,
            starting_time=0.0,
        )
    )
    path = write(nwb, tmp_path / "raw.nwb")
    ds = load_dataset(path, envelope=True, window=(0.0, 0.2), envelope_kwargs={"progress": False})
    assert ds.attrs["responses_kind"] == "mua_envelope_mean"
    assert ds.attrs["responses_source"] == "acquisition/ElectricalSeries"
    r = stack_presentations(ds).values  # presentation order
    assert r[1, 0] > 20 * r[0, 0] and r[3, 0] > 20 * r[2, 0]  # bursts at 1.0 s and 2.0 s
    ref = _reference_envelope(x)
    np.testing.assert_allclose(r[1, 0], ref[1000:1200, 0].mean(), rtol=0.05)
    with pytest.raises(InputError, match="sampling rate above"):
        mua_envelope(_slow_series(), progress=False)


def _slow_series():
    from pynwb.base import TimeSeries

    return TimeSeries(name="lfp", data=np.zeros((100, 2)), unit="V", rate=1000.0)
