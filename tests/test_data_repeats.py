"""average_repeats, split_half_reliability, select_units, zscore_sessions, splits, pairs."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from data_helpers import generic_file

from irfa_nwb.data import (
    average_repeats,
    load_dataset,
    select_units,
    split_half_reliability,
    to_training_pair,
    train_test_split,
    zscore_sessions,
)
from irfa_nwb.errors import InputError


def _responses(n_stim=20, n_rep=6, n_units=5, noise=(0.05, 0.05, 5.0, 5.0, 0.05), seed=0):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n_stim, n_units))
    ids = np.repeat(np.arange(n_stim), n_rep)
    values = signal[ids] + rng.normal(size=(len(ids), n_units)) * np.asarray(noise)
    da = xr.DataArray(
        values.astype(np.float32),
        dims=("presentation", "unit"),
        coords={
            "stimulus_id": ("presentation", ids),
            "start_time": ("presentation", np.arange(len(ids), dtype=float)),
            "unit_id": ("unit", np.arange(n_units) + 10),
            "area": ("unit", ["V1", "V1", "V4", "IT", "IT"][:n_units]),
            "electrode_group": ("unit", ["a", "a", "b", "c", "c"][:n_units]),
        },
        attrs={"source": "test"},
    )
    return da, signal


def test_average_repeats_exact():
    da = xr.DataArray(
        np.array([[1, 2], [3, 4], [10, 20], [5, 6]], dtype=np.float32),
        dims=("presentation", "unit"),
        coords={
            "stimulus_id": ("presentation", [7, 3, 7, 3]),
            "unit_id": ("unit", [0, 1]),
            "split": ("presentation", ["a", "b", "a", "b"]),
        },
    )
    avg = average_repeats(da)
    assert avg.dims == ("stimulus", "unit")
    np.testing.assert_array_equal(avg["stimulus_id"].values, [3, 7])
    np.testing.assert_array_equal(avg.values, [[4, 5], [5.5, 11]])
    np.testing.assert_array_equal(avg["n_repeats"].values, [2, 2])
    np.testing.assert_array_equal(avg["unit_id"].values, [0, 1])
    assert list(avg["split"].values) == ["b", "a"]
    assert avg.dtype == np.float32
    da[0, 0] = np.nan
    np.testing.assert_array_equal(average_repeats(da).values[1], [10, 11])


def test_average_repeats_time_bins_and_dataset(tmp_path):
    truth = generic_file(tmp_path / "g.nwb", mua=False)
    ds = load_dataset(truth["path"], bins=2)
    avg = average_repeats(ds)
    assert avg.dims == ("stimulus", "unit", "time_bin")
    np.testing.assert_allclose(avg["bin_start"].values, [0.0, 0.1])
    counts = np.stack([truth["bin0"], truth["bin1"]], axis=-1)
    for s in range(3):
        np.testing.assert_allclose(avg.values[s], counts[truth["order"] == s].mean(0), rtol=1e-6)


def test_split_half_reliability_separates_noisy_units():
    da, _ = _responses()
    rel = split_half_reliability(da, n_splits=10)
    assert rel.dims == ("unit",)
    np.testing.assert_array_equal(rel["unit_id"].values, da["unit_id"].values)
    assert (rel.values[[0, 1, 4]] > 0.95).all()
    assert (rel.values[[2, 3]] < 0.6).all()
    np.testing.assert_array_equal(rel.values, split_half_reliability(da, n_splits=10).values)
    with pytest.raises(InputError, match="at least 3 stimuli"):
        split_half_reliability(da.isel(presentation=slice(0, 6)))


def test_select_units():
    da, _ = _responses()
    sel = select_units(da, min_reliability=0.8)
    np.testing.assert_array_equal(sel["unit_id"].values, [10, 11, 14])
    sel = select_units(da, areas=["V1", "IT"], electrode_groups=["a", "c"])
    np.testing.assert_array_equal(sel["unit_id"].values, [10, 11, 13, 14])
    sel = select_units(da, min_reliability=0.5, reliability=np.array([0.9, 0.1, 0.6, 0.2, 0.7]))
    np.testing.assert_array_equal(sel["unit_id"].values, [10, 12, 14])
    withcoord = da.assign_coords(reliability=("unit", [0.1, 0.9, 0.1, 0.9, 0.1]))
    np.testing.assert_array_equal(
        select_units(withcoord, min_reliability=0.4)["unit_id"].values, [11, 13]
    )
    ds = xr.Dataset({"responses": da})
    assert select_units(ds, unit_ids=[12])["responses"].shape == (120, 1)
    with pytest.raises(InputError, match="no unit passes"):
        select_units(da, areas=["MT"])


def test_zscore_sessions():
    da, _ = _responses()
    session = np.where(np.arange(da.sizes["presentation"]) < 60, "day1", "day2")
    da = da.assign_coords(session=("presentation", session))
    da[60:] = da[60:] * 3 + 100
    z = zscore_sessions(da)
    for s in ("day1", "day2"):
        part = z.values[session == s]
        np.testing.assert_allclose(part.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(part.std(0), 1, atol=1e-5)
    assert z.dtype == np.float32 and z.attrs["zscored_by"] == "session"
    z1 = zscore_sessions(da.drop_vars("session"))
    np.testing.assert_allclose(z1.values.mean(0), 0, atol=1e-5)
    const = da.copy(data=np.ones(da.shape, dtype=np.float32))
    np.testing.assert_array_equal(zscore_sessions(const).values, 0)


def test_train_test_split_keeps_repeats_together():
    da, _ = _responses()
    train, test = train_test_split(da, test_size=0.25, seed=1)
    tr, te = set(train["stimulus_id"].values.tolist()), set(test["stimulus_id"].values.tolist())
    assert not tr & te and len(te) == 5 and len(tr) == 15
    assert train.sizes["presentation"] + test.sizes["presentation"] == 120
    assert test.sizes["presentation"] == 30  # all six repeats of each test stimulus
    _, test_int = train_test_split(da, test_size=3)
    assert len(np.unique(test_int["stimulus_id"])) == 3
    avg_train, avg_test = train_test_split(average_repeats(da), test_size=0.25, seed=1)
    assert set(avg_test["stimulus_id"].values.tolist()) == te
    with pytest.raises(InputError, match="each side"):
        train_test_split(da, test_size=0.001)


def test_train_test_split_honours_split_coord():
    da, _ = _responses()
    split = np.where(da["stimulus_id"].values >= 17, "test", "train")
    da = da.assign_coords(split=("presentation", split))
    train, test = train_test_split(da, test_size=0.5)
    assert set(test["stimulus_id"].values.tolist()) == {17, 18, 19}
    _, test = train_test_split(da, test_size=0.5, use_split=False)
    assert len(np.unique(test["stimulus_id"])) == 10
    bad = da.assign_coords(split=("presentation", np.where(np.arange(120) % 2, "test", "train")))
    with pytest.raises(InputError, match="both"):
        train_test_split(bad)


def test_training_pair_alignment(tmp_path):
    truth = generic_file(tmp_path / "g.nwb", mua=False)
    ds = load_dataset(truth["path"])
    X, y = to_training_pair(ds)
    assert X.dims == ("stimulus", "unit") and y.dims == ("stimulus", "y", "x", "channel")
    np.testing.assert_array_equal(X["stimulus_id"].values, y["stimulus_id"].values)
    np.testing.assert_array_equal(y.values, truth["pixels"])
    counts = truth["bin0"] + truth["bin1"]
    for s in range(3):
        np.testing.assert_allclose(X.values[s], counts[truth["order"] == s].mean(0), rtol=1e-6)
    for c in ("unit_id", "electrode_group", "area", "rf_x", "rf_y"):
        assert c in X.coords
    X2, y2 = to_training_pair(ds, average=False)
    assert X2.sizes["stimulus"] == len(truth["order"])
    np.testing.assert_array_equal(y2.values, truth["pixels"][truth["order"]])
    train, test = train_test_split(ds, test_size=1, seed=0)
    Xt, yt = to_training_pair(test)
    assert Xt.sizes["stimulus"] == 1 and test["images"].sizes["stimulus"] == 1
    with pytest.raises(InputError, match="time bins"):
        to_training_pair(load_dataset(truth["path"], bins=2))
