"""Tests of ``write_simulated_recording``: best-practice layout, nwbinspector, spikes, MUA,
read-back."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from irfa_nwb.data import stack_presentations
from irfa_nwb.errors import InputError
from irfa_nwb.simulation import (
    simulate_nwb,
    simulate_recording,
    write_simulated_recording,
    write_simulation_nwb,
)

KW = dict(n_stimuli=40, n_test=5, n_repeats=4, image_size=24, units_per_array=6,
          random_state=3)


@pytest.fixture(scope="module")
def expected():
    return simulate_recording(**KW)


@pytest.fixture(scope="module")
def files(tmp_path_factory, expected):
    folder = tmp_path_factory.mktemp("sim")
    spikes = write_simulated_recording(folder / "sim_spikes.nwb", responses="spikes", **KW)
    mua = write_simulation_nwb(expected, folder / "sim_mua.nwb", responses="mua")
    return {"spikes": spikes, "mua": mua}


def _load_dataset():
    try:
        from irfa_nwb.data import load_dataset
    except (ImportError, AttributeError):  # pragma: no cover - while the loader is unbuilt
        pytest.skip("irfa_nwb.data.load_dataset is not available yet")
    return load_dataset


@pytest.mark.parametrize("mode", ["spikes", "mua"])
def test_passes_nwbinspector(files, mode):
    nwbinspector = pytest.importorskip("nwbinspector")
    messages = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(files[mode])))
    assert messages == [], [f"{m.check_function_name}: {m.message}" for m in messages]
    dandi = nwbinspector.load_config("dandi")
    assert list(nwbinspector.inspect_nwbfile(nwbfile_path=str(files[mode]), config=dandi)) == []
    from pynwb import validate

    assert list(validate(path=str(files[mode]))) == []  # valid against the NWB schema


@pytest.mark.parametrize("mode", ["spikes", "mua"])
def test_layout(files, expected, mode):
    from pynwb import NWBHDF5IO
    from pynwb.base import Images
    from pynwb.image import IndexSeries, RGBImage

    r = stack_presentations(expected)
    with NWBHDF5IO(str(files[mode]), "r") as io:
        nwb = io.read()
        assert nwb.subject.species == "Macaca mulatta"
        assert nwb.subject.subject_id and nwb.subject.sex == "M" and nwb.subject.age == "P6Y"
        # stimuli
        (tmpl,) = nwb.stimulus_template.values()
        assert isinstance(tmpl, Images)
        order = [im.name for im in tmpl.order_of_images.data[:]]
        assert order == [f"stimulus_{i:05d}" for i in range(40)]
        first = tmpl.order_of_images.data[0]
        assert isinstance(first, RGBImage)
        np.testing.assert_array_equal(first.data[()], expected["images"].values[0])
        (series,) = nwb.stimulus.values()
        assert isinstance(series, IndexSeries) and series.indexed_images is not None
        np.testing.assert_array_equal(series.data[:], r["stimulus_id"].values)
        times = series.starting_time + np.arange(len(series.data)) / series.rate
        np.testing.assert_array_equal(times, r["start_time"].values)
        # presentations table with the split
        table = nwb.intervals["presentations"]
        np.testing.assert_array_equal(table["start_time"][:], r["start_time"].values)
        np.testing.assert_allclose(table["stop_time"][:] - table["start_time"][:], 0.2)
        np.testing.assert_array_equal(table["image_index"][:], r["stimulus_id"].values)
        np.testing.assert_array_equal(np.asarray(table["split"][:]).astype(str), r["split"])
        # electrodes: area, array, true RF centres
        el = nwb.electrodes
        np.testing.assert_array_equal(el.id[:], r["unit_id"].values)
        np.testing.assert_array_equal(np.asarray(el["location"][:]).astype(str), r["area"])
        groups = [g.name for g in el["group"][:]]
        assert groups == r["electrode_group"].values.tolist()
        np.testing.assert_array_equal(el["rf_x"][:], r["rf_x"].values)
        np.testing.assert_array_equal(el["rf_y"][:], r["rf_y"].values)
        assert set(nwb.electrode_groups) == set(r["electrode_group"].values.tolist())
        for g in nwb.electrode_groups.values():
            assert g.device is not None and g.location == g.name.split("_")[0]
        if mode == "spikes":
            units = nwb.units
            np.testing.assert_array_equal(units.id[:], r["unit_id"].values)
            # each unit points at its own electrode
            rows = [int(np.asarray(units["electrodes"][i].index)[0]) for i in range(len(units))]
            assert rows == list(range(len(units)))
            assert [g.name for g in units["electrode_group"][:]] == groups
            assert units.resolution == pytest.approx(1 / 30000)
            assert "ecephys" not in nwb.processing
        else:
            assert nwb.units is None
            mua = nwb.processing["ecephys"]["MUA"]
            assert mua.data.shape[1] == r.sizes["unit"]
            np.testing.assert_array_equal(mua.electrodes.data[:], np.arange(r.sizes["unit"]))


def test_spike_counts_in_window_equal_the_responses(files, expected):
    from pynwb import NWBHDF5IO

    r = stack_presentations(expected)
    onsets = r["start_time"].values
    with NWBHDF5IO(str(files["spikes"]), "r") as io:
        units = io.read().units
        flat = units["spike_times"].target.data[:]
        ends = units["spike_times"].data[:]
    starts = np.concatenate([[0], ends[:-1]])
    total = 0
    for u in range(r.sizes["unit"]):
        t = flat[starts[u] : ends[u]]
        assert np.all(np.diff(t) >= 0)
        lo = np.searchsorted(t, onsets, side="left")
        hi = np.searchsorted(t, onsets + 0.2, side="left")
        np.testing.assert_array_equal(hi - lo, r.values[:, u])
        total += t.size
    # no spikes outside the response windows
    assert total == int(r.values.sum())


def test_mua_window_means_equal_the_responses(files, expected):
    from pynwb import NWBHDF5IO

    r = stack_presentations(expected)
    with NWBHDF5IO(str(files["mua"]), "r") as io:
        mua = io.read().processing["ecephys"]["MUA"]
        data, rate, t0 = mua.data[:], float(mua.rate), float(mua.starting_time)
    idx = np.ceil((r["start_time"].values - t0) * rate - 1e-9).astype(int)
    n = int(round(0.2 * rate))
    means = np.stack([data[i : i + n].mean(axis=0) for i in idx])
    np.testing.assert_array_equal(means, r.values)


@pytest.mark.parametrize("mode", ["spikes", "mua"])
def test_load_dataset_reads_back_the_simulation(files, expected, mode):
    load_dataset = _load_dataset()
    got = load_dataset(files[mode])
    assert set(got.data_vars) == set(expected.data_vars)
    assert set(got.coords) == set(expected.coords)
    xr.testing.assert_equal(got, expected)  # values, dims and coords; attrs differ
    assert got["responses"].dtype == np.float32 and got["images"].dtype == np.uint8


def test_noise_free_mua_reads_back(tmp_path):
    load_dataset = _load_dataset()
    kw = {**KW, "n_stimuli": 12, "n_test": 2, "noise": "none"}
    ds = simulate_recording(**kw)
    path = write_simulated_recording(tmp_path / "mua.nwb", responses="mua", **kw)
    got = load_dataset(path)
    np.testing.assert_allclose(got["responses"].values, ds["responses"].values, rtol=1e-6)
    with pytest.raises(InputError, match="integer"):
        write_simulation_nwb(ds, tmp_path / "spikes.nwb", responses="spikes")


def test_atomic_write_and_overwrite(tmp_path):
    kw = {**KW, "n_stimuli": 6, "n_test": 1}
    path = write_simulated_recording(tmp_path / "a.nwb", **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nwb"]  # no temporary left
    with pytest.raises(InputError, match="exists"):
        write_simulated_recording(path, **kw)
    size = path.stat().st_size
    write_simulated_recording(path, overwrite=True, responses="mua", **kw)
    assert path.stat().st_size != size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nwb"]
    with pytest.raises(InputError, match="responses"):
        write_simulated_recording(tmp_path / "b.nwb", responses="lfp", **kw)
    assert not (tmp_path / "b.nwb").exists()
    with pytest.warns(FutureWarning, match="write_simulated_recording"):
        old = simulate_nwb(tmp_path / "c.nwb", **{**kw, "random_state": None}, seed=3)
    assert old.is_file()
