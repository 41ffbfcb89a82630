"""Tests of load_dataset on the generic best-practice layout (units and processed MUA)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import xarray as xr
from data_helpers import generic_file, sha256

import irfa_nwb
from irfa_nwb.data import load_dataset, open_nwb, stack_presentations
from irfa_nwb.errors import InputError, NWBLayoutError


@pytest.fixture(scope="module")
def generic(tmp_path_factory):
    return generic_file(tmp_path_factory.mktemp("generic") / "generic.nwb")


def test_spike_counts_match_ground_truth(generic):
    before = sha256(generic["path"])
    ds = load_dataset(generic["path"], window=(0.0, 0.2))
    assert ds["responses"].dims == ("stimulus_id", "repeat", "unit")
    r = stack_presentations(ds)  # one row per presentation, in time order
    assert r.dtype == np.float32
    np.testing.assert_array_equal(r.values, generic["bin0"] + generic["bin1"])
    np.testing.assert_array_equal(r["stimulus_id"].values, generic["order"])
    assert r["stimulus_id"].dtype == np.int64
    np.testing.assert_array_equal(r["start_time"].values, generic["onsets"])
    assert r["start_time"].dtype == np.float64
    np.testing.assert_array_equal(r["unit_id"].values, [0, 1, 2, 3])
    assert list(r["electrode_group"].values) == ["arrayA", "arrayA", "arrayB", "arrayB"]
    assert list(r["area"].values) == ["V1", "V1", "V4", "V4"]
    np.testing.assert_array_equal(r["rf_x"].values, [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(r["rf_y"].values, [0.0, -0.5, -1.0, -1.5])
    # images come back identical, on the same stimulus_id index as the responses
    assert ds["images"].dims == ("stimulus_id", "y", "x", "channel")
    assert ds["images"].dtype == np.uint8
    np.testing.assert_array_equal(ds["images"].values, generic["pixels"])
    per_pres = ds["images"].sel(stimulus_id=r["stimulus_id"].values)
    np.testing.assert_array_equal(per_pres.values, generic["pixels"][generic["order"]])
    # provenance
    assert ds.attrs["nwb_identifier"] == "generic-0"
    assert ds.attrs["source"] == str(generic["path"].resolve())
    assert ds.attrs["window"] == [0.0, 0.2]
    assert ds.attrs["value_units"] == "spikes"
    assert ds.attrs["presentations_source"] == "stimulus/presentations"
    assert r.attrs["units_object_id"] == ds.attrs["responses_object_id"]
    for v in ds.attrs.values():
        assert isinstance(v, str | int | float | list)
    assert sha256(generic["path"]) == before  # read-only


def test_per_area_windows_bins_and_rates(generic):
    ds = load_dataset(generic["path"], windows={"V4": (0.3, 0.6)})
    expected = generic["bin0"] + generic["bin1"]
    expected[:, 2:] = generic["late"][:, 2:]
    np.testing.assert_array_equal(stack_presentations(ds).values, expected)
    np.testing.assert_allclose(ds["window_start"].values, [0, 0, 0.3, 0.3])
    np.testing.assert_allclose(ds["window_stop"].values, [0.2, 0.2, 0.6, 0.6])

    ds = load_dataset(generic["path"], window=(0.0, 0.2), bins=2)
    assert ds["responses"].dims == ("stimulus_id", "repeat", "unit", "time_bin")
    binned = stack_presentations(ds)
    assert binned.dims == ("presentation", "unit", "time_bin")
    np.testing.assert_array_equal(binned.values[..., 0], generic["bin0"])
    np.testing.assert_array_equal(binned.values[..., 1], generic["bin1"])
    np.testing.assert_allclose(ds["bin_start"].values, [0.0, 0.1])
    np.testing.assert_allclose(ds["bin_stop"].values, [0.1, 0.2])

    ds = load_dataset(generic["path"], window=(0.0, 0.2), rate=True)
    np.testing.assert_allclose(
        stack_presentations(ds).values, (generic["bin0"] + generic["bin1"]) / 0.2, rtol=1e-6
    )
    assert ds.attrs["value_units"] == "spikes/s"


def test_unit_selection_and_latency(generic):
    ds = load_dataset(generic["path"], units=[3, 1])
    np.testing.assert_array_equal(ds["unit_id"].values, [3, 1])
    np.testing.assert_array_equal(
        stack_presentations(ds).values, (generic["bin0"] + generic["bin1"])[:, [3, 1]]
    )
    # shifting every onset by 0.3 s moves the window onto the late spikes
    ds = load_dataset(generic["path"], window=(0.0, 0.3), latency=0.3)
    late = stack_presentations(ds)
    np.testing.assert_array_equal(late.values, generic["late"])
    np.testing.assert_array_equal(late["start_time"].values, generic["onsets"])
    with pytest.raises(InputError, match=r"unit ids \[7\]"):
        load_dataset(generic["path"], units=[7])


def test_processed_mua_window_means(generic):
    ds = load_dataset(generic["path"], responses="MUA", window=(0.0, 0.2))
    np.testing.assert_allclose(stack_presentations(ds).values, generic["mua"], rtol=1e-6)
    assert ds.attrs["responses_source"] == "processing/ecephys/MUA"
    assert ds.attrs["value_units"] == "volts"
    assert list(ds["area"].values) == ["V1", "V1", "V4", "V4"]
    ds = load_dataset(
        generic["path"], responses="processing/ecephys/MUA", windows={"V1": (0.3, 0.6)}, bins=3
    )
    binned = stack_presentations(ds).values
    np.testing.assert_allclose(binned[:, :2, 1], generic["mua_late"][:, :2], rtol=1e-6)
    np.testing.assert_allclose(binned[:, 2:, 0], generic["mua"][:, 2:], rtol=1e-6)


def test_mua_is_auto_choice_without_units(tmp_path):
    truth = generic_file(tmp_path / "mua_only.nwb", spikes=False)
    ds = load_dataset(truth["path"])
    np.testing.assert_allclose(stack_presentations(ds).values, truth["mua"], rtol=1e-6)
    with pytest.warns(UserWarning, match="hold no sample"):
        ds = load_dataset(truth["path"], window=(100.0, 100.1))
    assert np.isnan(ds["responses"].values).all()


def test_open_nwbfile_object_and_repeats_average(generic):
    with open_nwb(generic["path"]) as nwb:
        ds = load_dataset(nwb)
        assert nwb.units is not None  # still open: load_dataset does not close it
    counts = generic["bin0"] + generic["bin1"]
    np.testing.assert_array_equal(stack_presentations(ds).values, counts)
    np.testing.assert_array_equal(ds["images"]["stimulus_id"].values, [0, 1, 2])
    averaged = load_dataset(generic["path"], repeats="average")
    assert averaged["responses"].dims == ("stimulus_id", "unit")
    for s in range(3):
        np.testing.assert_allclose(averaged["responses"].values[s],
                                   counts[generic["order"] == s].mean(0), rtol=1e-6)
    np.testing.assert_array_equal(averaged["n_repeats"].values,
                                  np.bincount(generic["order"]))


def test_user_images_override_and_count_mismatch(generic):
    other = np.zeros((3, 4, 4), dtype=np.float32)
    ds = load_dataset(generic["path"], images=other)
    assert ds["images"].shape == (3, 4, 4, 1)
    with pytest.raises(InputError, match="only 2 images"):
        load_dataset(generic["path"], images=np.zeros((2, 4, 4), dtype=np.uint8))
    ds = load_dataset(generic["path"], images=False)
    assert "images" not in ds
    ds = load_dataset(generic["path"], image_size=(4, 3))
    assert ds["images"].shape == (3, 4, 3, 3) and ds["images"].dtype == np.float32
    assert float(ds["images"].max()) <= 1.0


def test_argument_errors(generic):
    with pytest.raises(InputError, match="stop > start"):
        load_dataset(generic["path"], window=(0.2, 0.1))
    with pytest.raises(InputError, match="areas"):
        load_dataset(generic["path"], windows={"IT": (0, 0.1)})
    with pytest.raises(NWBLayoutError, match="no time series named 'LFP'"):
        load_dataset(generic["path"], responses="LFP")
    with pytest.raises(NWBLayoutError, match="no stimulus series or interval table named"):
        load_dataset(generic["path"], presentations="nope")
    with pytest.raises(FileNotFoundError):
        load_dataset(generic["path"].with_name("missing.nwb"))


def test_top_level_lazy_exports_and_no_torch():
    for name in (
        "load_dataset",
        "open_nwb",
        "list_stimulus_tables",
        "average_repeats",
        "split_half_reliability",
        "select_units",
        "zscore_sessions",
        "split_stimuli",
        "stack_presentations",
    ):
        assert callable(getattr(irfa_nwb, name))
    import subprocess

    code = (
        "import sys, irfa_nwb.data as d; d.load_dataset; d.average_repeats; d.load_tvsd; "
        "d.open_nwb; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dataset_is_an_xarray_dataset(generic):
    ds = load_dataset(generic["path"])
    assert isinstance(ds, xr.Dataset)
    assert set(ds.data_vars) == {"responses", "images"}


def test_blocked_reads_give_the_same_answer(generic):
    """Bounded-memory reads (few spikes / rows per read) change nothing."""
    from irfa_nwb.data.continuous import find_series, window_means
    from irfa_nwb.data.units import spike_counts

    onsets = generic["onsets"]
    starts, stops = np.zeros(4), np.full(4, 0.2)
    with open_nwb(generic["path"]) as nwb:
        full = spike_counts(nwb, np.arange(4), onsets, starts, stops)
        small = spike_counts(
            nwb, np.array([2, 0, 3, 1]), onsets, starts, stops, max_spikes_per_read=3
        )
        _, series = find_series(nwb, "MUA")
        big = window_means(series, np.arange(4), onsets, starts, stops)
        tiny = window_means(series, np.arange(4), onsets, starts, stops, max_values_per_read=1000)
    np.testing.assert_array_equal(full, generic["bin0"] + generic["bin1"])
    np.testing.assert_array_equal(small, full[:, [2, 0, 3, 1]])
    np.testing.assert_array_equal(big, tiny)
    np.testing.assert_allclose(big, generic["mua"], rtol=1e-6)


def test_in_memory_nwbfile_never_written():
    """An NWBFile built in memory (lists instead of HDF5 datasets) loads the same way."""
    from data_helpers import add_electrodes, add_images, new_nwbfile
    from pynwb.image import IndexSeries

    nwb = new_nwbfile("in-memory")
    add_electrodes(nwb, {"arrayA": ("V1", 2)})
    images = add_images(nwb, np.zeros((2, 3, 3, 3), dtype=np.uint8))
    nwb.add_stimulus(
        IndexSeries(
            name="shown",
            data=np.array([1, 0, 1], np.uint32),
            indexed_images=images,
            unit="N/A",
            timestamps=[1.0, 2.0, 3.0],
        )
    )
    nwb.add_unit(spike_times=[1.05, 1.1, 2.05, 3.5], electrodes=[0])
    nwb.add_unit(spike_times=[3.01], electrodes=[1])
    ds = load_dataset(nwb, window=(0.0, 0.2))
    np.testing.assert_array_equal(stack_presentations(ds).values, [[2, 0], [1, 0], [0, 1]])
    np.testing.assert_array_equal(stack_presentations(ds)["stimulus_id"].values, [1, 0, 1])
    np.testing.assert_array_equal(ds["stimulus_id"].values, [0, 1])
    assert ds.attrs["source"].startswith("<in-memory NWBFile")
    np.testing.assert_array_equal(ds["rf_x"].values, [0.0, 1.0])
