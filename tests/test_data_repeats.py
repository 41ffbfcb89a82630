"""The stimulus-keyed data model: build_dataset, average_repeats, reliability, selection,
z-scoring, stimulus splits, presentations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from data_helpers import generic_file

from irfa_nwb.data import (
    ImageSet,
    average_repeats,
    build_dataset,
    load_dataset,
    select_units,
    split_half_reliability,
    split_stimuli,
    stack_presentations,
    to_training_pair,
    train_test_split,
    zscore_sessions,
)
from irfa_nwb.errors import InputError

UNITS = pd.DataFrame({
    "unit_id": np.arange(5) + 10,
    "electrode_group": ["a", "a", "b", "c", "c"],
    "area": ["V1", "V1", "V4", "IT", "IT"],
})


def _dataset(n_stim=20, n_rep=6, noise=(0.05, 0.05, 5.0, 5.0, 0.05), seed=0, images=True):
    """Every stimulus shown ``n_rep`` times in a shuffled order; unit noise levels differ."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n_stim, 5))
    ids = rng.permutation(np.repeat(np.arange(n_stim), n_rep))
    values = signal[ids] + rng.normal(size=(len(ids), 5)) * np.asarray(noise)
    pixels = rng.integers(0, 255, size=(n_stim, 4, 4, 3), dtype=np.uint8)
    image_set = ImageSet(pixels, None, "test") if images else None
    ds = build_dataset(values, UNITS, ids, np.arange(len(ids), dtype=float), image_set,
                       {"source": "test"})
    return ds, signal, ids, values, pixels


def test_build_dataset_pairs_every_presentation_with_its_image():
    ds, _, ids, values, pixels = _dataset(n_stim=4, n_rep=3)
    assert ds["responses"].dims == ("stimulus_id", "repeat", "unit")
    assert ds["images"].dims == ("stimulus_id", "y", "x", "channel")
    np.testing.assert_array_equal(ds["stimulus_id"].values, [0, 1, 2, 3])
    for s in range(4):
        shown = np.flatnonzero(ids == s)  # presentations of s, in time order
        np.testing.assert_allclose(ds["responses"].sel(stimulus_id=s).values, values[shown],
                                   rtol=1e-6)
        np.testing.assert_array_equal(ds["start_time"].sel(stimulus_id=s).values, shown)
        np.testing.assert_array_equal(ds["images"].sel(stimulus_id=s).values, pixels[s])


def test_build_dataset_missing_repeats_and_split():
    ids = np.array([5, 2, 5, 9, 5])
    values = np.arange(15, dtype=float).reshape(5, 3)
    units = UNITS.iloc[:3]
    ds = build_dataset(values, units, ids, np.arange(5.0), None, {},
                       split=np.array(["train", "test", "train", "train", "train"]))
    assert ds.sizes == {"stimulus_id": 3, "repeat": 3, "unit": 3}
    assert list(ds["split"].values) == ["test", "train", "train"]
    assert np.isnan(ds["responses"].sel(stimulus_id=2).values[1:]).all()
    np.testing.assert_array_equal(ds["responses"].sel(stimulus_id=5).values,
                                  values[[0, 2, 4]])
    averaged = build_dataset(values, units, ids, np.arange(5.0), None, {}, repeats="average")
    np.testing.assert_array_equal(averaged["n_repeats"].values, [1, 3, 1])
    np.testing.assert_allclose(averaged["responses"].sel(stimulus_id=5).values,
                               values[[0, 2, 4]].mean(0))
    with pytest.raises(InputError, match="all train or all test"):
        build_dataset(values, units, ids, np.arange(5.0), None, {},
                      split=np.array(["train", "test", "test", "train", "train"]))


def test_average_repeats_exact():
    ds = build_dataset(np.array([[1, 2], [3, 4], [10, 20], [5, 6]], dtype=np.float32),
                       UNITS.iloc[:2], np.array([7, 3, 7, 3]), np.arange(4.0), None, {})
    avg = average_repeats(ds)
    assert isinstance(avg, xr.Dataset)
    assert avg["responses"].dims == ("stimulus_id", "unit")
    np.testing.assert_array_equal(avg["stimulus_id"].values, [3, 7])
    np.testing.assert_array_equal(avg["responses"].values, [[4, 5], [5.5, 11]])
    np.testing.assert_array_equal(avg["n_repeats"].values, [2, 2])
    assert "start_time" not in avg.coords and "repeat" not in avg.dims
    assert avg["responses"].dtype == np.float32
    da = ds["responses"].copy()
    da[1, 0, 0] = np.nan  # first repeat of stimulus 7
    np.testing.assert_array_equal(average_repeats(da).values[1], [10, 11])
    assert average_repeats(avg) is avg  # already averaged: unchanged


def test_average_repeats_time_bins_and_dataset(tmp_path):
    truth = generic_file(tmp_path / "g.nwb", mua=False)
    ds = load_dataset(truth["path"], bins=2)
    avg = average_repeats(ds)
    assert avg["responses"].dims == ("stimulus_id", "unit", "time_bin")
    np.testing.assert_allclose(avg["bin_start"].values, [0.0, 0.1])
    counts = np.stack([truth["bin0"], truth["bin1"]], axis=-1)
    for s in range(3):
        np.testing.assert_allclose(avg["responses"].values[s],
                                   counts[truth["order"] == s].mean(0), rtol=1e-6)
    np.testing.assert_array_equal(avg["images"].values, truth["pixels"])


def test_stack_presentations_is_the_presentation_order():
    ds, _, ids, values, _ = _dataset(n_stim=4, n_rep=3)
    pres = stack_presentations(ds)
    assert pres.dims == ("presentation", "unit")
    np.testing.assert_array_equal(pres["stimulus_id"].values, ids)
    np.testing.assert_allclose(pres.values, values, rtol=1e-6)


def test_split_half_reliability_separates_noisy_units():
    ds, *_ = _dataset()
    rel = split_half_reliability(ds, n_splits=10)
    assert rel.dims == ("unit",)
    np.testing.assert_array_equal(rel["unit_id"].values, UNITS["unit_id"].values)
    assert (rel.values[[0, 1, 4]] > 0.95).all()
    assert (rel.values[[2, 3]] < 0.6).all()
    np.testing.assert_array_equal(rel.values, split_half_reliability(ds, n_splits=10).values)
    with pytest.raises(InputError, match="at least 3 stimuli"):
        split_half_reliability(ds.isel(stimulus_id=slice(0, 2)))
    with pytest.raises(InputError, match="already averaged"):
        split_half_reliability(average_repeats(ds))


def test_select_units():
    ds, *_ = _dataset()
    sel = select_units(ds, min_reliability=0.8)
    np.testing.assert_array_equal(sel["unit_id"].values, [10, 11, 14])
    assert sel["images"].equals(ds["images"])
    sel = select_units(ds, areas=["V1", "IT"], electrode_groups=["a", "c"])
    np.testing.assert_array_equal(sel["unit_id"].values, [10, 11, 13, 14])
    sel = select_units(ds, min_reliability=0.5, reliability=np.array([0.9, 0.1, 0.6, 0.2, 0.7]))
    np.testing.assert_array_equal(sel["unit_id"].values, [10, 12, 14])
    withcoord = ds.assign_coords(reliability=("unit", [0.1, 0.9, 0.1, 0.9, 0.1]))
    np.testing.assert_array_equal(
        select_units(withcoord, min_reliability=0.4)["unit_id"].values, [11, 13]
    )
    assert select_units(ds["responses"], unit_ids=[12]).shape == (20, 6, 1)
    with pytest.raises(InputError, match="no unit passes"):
        select_units(ds, areas=["MT"])


def test_zscore_sessions():
    ds, *_ = _dataset()
    da = ds["responses"]
    day = np.where(ds["start_time"].values < 60, "day1", "day2")  # per presentation
    da = da.assign_coords(session=(("stimulus_id", "repeat"), day))
    da = da.where(xr.DataArray(day == "day1", dims=("stimulus_id", "repeat")), da * 3 + 100)
    z = zscore_sessions(da)
    flat = z.values.reshape(-1, 5)
    for s in ("day1", "day2"):
        part = flat[day.ravel() == s]
        np.testing.assert_allclose(part.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(part.std(0), 1, atol=1e-5)
    assert z.dtype == np.float32 and z.attrs["zscored_by"] == "session"
    z1 = zscore_sessions(ds)
    np.testing.assert_allclose(z1["responses"].values.reshape(-1, 5).mean(0), 0, atol=1e-5)
    const = ds["responses"].copy(data=np.ones(ds["responses"].shape, dtype=np.float32))
    np.testing.assert_array_equal(zscore_sessions(const).values, 0)


def test_split_stimuli_keeps_repeats_and_images_together():
    ds, *_ = _dataset()
    train, test = split_stimuli(ds, test_size=0.25, random_state=1)
    tr, te = set(train["stimulus_id"].values.tolist()), set(test["stimulus_id"].values.tolist())
    assert not tr & te and len(te) == 5 and len(tr) == 15
    assert test["responses"].sizes["repeat"] == 6  # every repeat of a test stimulus
    np.testing.assert_array_equal(test["images"].values,
                                  ds["images"].sel(stimulus_id=sorted(te)).values)
    _, test_int = split_stimuli(ds, test_size=3)
    assert test_int.sizes["stimulus_id"] == 3
    _, avg_test = split_stimuli(average_repeats(ds), test_size=0.25, random_state=1)
    assert set(avg_test["stimulus_id"].values.tolist()) == te
    with pytest.raises(InputError, match="each side"):
        split_stimuli(ds, test_size=0.001)


def test_split_stimuli_honours_split_coord_and_old_name_warns():
    ds, *_ = _dataset()
    split = np.where(ds["stimulus_id"].values >= 17, "test", "train")
    ds = ds.assign_coords(split=("stimulus_id", split))
    _, test = split_stimuli(ds, test_size=0.5)
    assert set(test["stimulus_id"].values.tolist()) == {17, 18, 19}
    _, test = split_stimuli(ds, test_size=0.5, use_split=False)
    assert test.sizes["stimulus_id"] == 10
    one_side = ds.assign_coords(split=("stimulus_id", ["train"] * 20))
    with pytest.raises(InputError, match="one side"):
        split_stimuli(one_side)
    with pytest.warns(FutureWarning, match="split_stimuli"):
        old = train_test_split(ds, test_size=0.5, seed=0)
    xr.testing.assert_identical(old[1], split_stimuli(ds, test_size=0.5, random_state=0)[1])


def test_deprecated_training_pair_is_the_shared_index(tmp_path):
    truth = generic_file(tmp_path / "g.nwb", mua=False)
    ds = load_dataset(truth["path"])
    with pytest.warns(FutureWarning, match="deprecated"):
        X, y = to_training_pair(ds)
    assert X.dims == ("stimulus_id", "unit") and y.dims == ("stimulus_id", "y", "x", "channel")
    np.testing.assert_array_equal(X["stimulus_id"].values, y["stimulus_id"].values)
    np.testing.assert_array_equal(y.values, truth["pixels"])
    counts = truth["bin0"] + truth["bin1"]
    for s in range(3):
        np.testing.assert_allclose(X.values[s], counts[truth["order"] == s].mean(0), rtol=1e-6)
