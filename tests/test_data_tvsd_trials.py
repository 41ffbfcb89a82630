"""load_tvsd_trials on a tiny THINGS_MUA_trials.mat whose expected output is worked out by hand.

The file (MATLAB v7.3 layout as h5py sees it: ALLMUA (time, trial, electrode), ALLMAT
(6, trial), tb (time, 1)) has 8 electrodes on 4 arrays of 2 (V1, V4, IT, left out), stored in
a shuffled "recording" order with a 1-based mapping file in ``_logs/``, 12 trials over two days
(6 training images shown once, 3 test images shown twice), and tb every 10 ms.

Windows cross the sample grid: V1 [0, 25) ms holds tb 0, 10, 20; V4 [5, 30) ms holds 10, 20
(not 30: stop is exclusive); IT [10, 40) ms holds 10, 20, 30 (10: start is inclusive). Every
sample outside an electrode's window is 1e6, so any window, area or channel mix-up shows.
Inside, the samples are c - 0.5, c, c + 0.5 (or c - 0.5, c + 0.5): the window mean is c.
"""

from __future__ import annotations

import shutil
import tracemalloc
import warnings

import h5py
import numpy as np
import pytest
from data_helpers import tvsd_trials_files
from scipy.io import savemat

from irfa_nwb.data.tvsd import (
    IRFA_WINDOWS,
    MONKEY_N_ARRAY_AREAS,
    load_tvsd_trials,
    repeat_reliability,
)
from irfa_nwb.errors import InputError, NWBLayoutError

TB = np.array([-20, -10, 0, 10, 20, 30, 40, 50], dtype=float)
WINDOWS = {"V1": (0.0, 0.025), "V4": (0.005, 0.030), "IT": (0.010, 0.040)}
SAMPLES = {"V1": [2, 3, 4], "V4": [3, 4], "IT": [3, 4, 5]}  # indices of TB, by hand
AREAS = {1: "V1", 2: "V4", 3: "IT", 4: None}
PHYS_AREA = ["V1", "V1", "V4", "V4", "IT", "IT", None, None]
MAPPING = np.array([5, 3, 8, 1, 7, 2, 6, 4])  # physical p is recorded channel MAPPING[p] - 1
TRAP = 1e6

# ALLMAT rows in file (= trial) order: [trial_idx train_idx test_idx rep count day]
ALLMAT = np.array(
    [
        [1, 3, 0, 1, 1, 1],
        [2, 0, 1, 1, 2, 1],  # test image A, day 1
        [3, 1, 0, 1, 3, 1],
        [4, 0, 2, 1, 4, 1],  # B
        [5, 2, 0, 1, 1, 1],
        [6, 0, 3, 1, 2, 1],  # C
        [7, 0, 3, 2, 3, 2],  # C, day 2
        [8, 5, 0, 1, 4, 2],
        [9, 0, 1, 2, 1, 2],  # A
        [10, 6, 0, 1, 2, 2],
        [11, 0, 2, 2, 3, 2],  # B
        [12, 4, 0, 1, 4, 2],
    ],
    dtype=float,
)
# window means before normalisation: training images 1-3 on day 1, 4-6 on day 2
TRAIN_BASE = {1: 1.0, 2: 2.0, 3: 3.0, 4: 5.0, 5: 5.0, 6: 8.0}
TEST_DAY1 = {1: 1.0, 2: 2.0, 3: 3.0}  # A, B, C
TEST_DAY2 = {
    "same": {1: 10.0, 2: 20.0, 3: 30.0},
    "half": {1: 10.0, 2: 30.0, 3: 20.0},
    "neg": {1: 30.0, 2: 20.0, 3: 10.0},
    "neghalf": {1: 30.0, 2: 10.0, 3: 20.0},
}
# per physical electrode: sign of its training responses, its day-2 test pattern
ELECTRODES = [(+1, "half"), (-1, "same"), (+1, "neg"), (-1, "half"), (+1, "neghalf"),
              (+1, "same")]

# z-scores by hand: day 1 training 1, 2, 3 -> -1, 0, 1; day 2 training 5, 5, 8 (mean 6,
# sd sqrt(3)) -> -1/sqrt3, -1/sqrt3, 2/sqrt3; test day 1 1, 2, 3 -> -1, 0, 1 for A, B, C.
S3 = np.sqrt(3.0)
Z_TRAIN = np.array([-1.0, 0.0, 1.0, -1 / S3, -1 / S3, 2 / S3])  # images 1..6
Z_TEST_DAY1 = np.array([-1.0, 0.0, 1.0])
Z_TEST_DAY2 = {
    "same": np.array([-1.0, 0.0, 1.0]),
    "half": np.array([-1.0, 1.0, 0.0]),
    "neg": np.array([1.0, 0.0, -1.0]),
    "neghalf": np.array([1.0, -1.0, 0.0]),
}
# r(day 1, day 2) over A, B, C: same 1, half 0.5, neg -1, neghalf -0.5
RELIABILITY = {"same": 1.0, "half": 0.5, "neg": -1.0, "neghalf": -0.5}


def _window_mean(p: int, trial: int) -> float:
    sign, pattern = ELECTRODES[p]
    train_idx, test_idx, day = ALLMAT[trial, 1], ALLMAT[trial, 2], ALLMAT[trial, 5]
    if train_idx:
        return sign * TRAIN_BASE[int(train_idx)] + 100 * p
    table = TEST_DAY1 if day == 1 else TEST_DAY2[pattern]
    return table[int(test_idx)] + 100 * p


def _mua() -> np.ndarray:
    """ALLMUA in physical order, MATLAB's [electrode x trial x time]."""
    mua = np.full((8, 12, TB.size), TRAP)
    for p in range(6):
        idx = SAMPLES[PHYS_AREA[p]]
        spread = [-0.5, 0.0, 0.5] if len(idx) == 3 else [-0.5, 0.5]
        for t in range(12):
            mua[p, t, idx] = _window_mean(p, t) + np.array(spread)
    mua[5, 0, 4] = np.nan  # a missing sample inside IT's window: ignored (mean stays c)
    return mua


def expected_average() -> np.ndarray:
    """(9 stimuli, 6 electrodes): training images 1-6 then test A, B, C (repeats averaged)."""
    out = np.empty((9, 6))
    for p, (sign, pattern) in enumerate(ELECTRODES):
        out[:6, p] = sign * Z_TRAIN
        out[6:, p] = (Z_TEST_DAY1 + Z_TEST_DAY2[pattern]) / 2
    return out


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tvsd_trials")
    return tvsd_trials_files(folder, _mua(), ALLMAT, TB, mapping=MAPPING)


def load(path, **kwargs):
    kwargs = {"array_areas": AREAS, "channels_per_array": 2, "windows": WINDOWS,
              "rf_file": False, **kwargs}
    return load_tvsd_trials(path, **kwargs)


def test_hand_computed_windows_zscores_repeat_average_and_remapping(trials):
    ds = load(trials["path"], min_reliability=None)
    r = ds["responses"]
    assert r.dims == ("stimulus_id", "unit") and r.dtype == np.float32
    np.testing.assert_array_equal(r["stimulus_id"].values, np.arange(9))
    assert list(ds["split"].values) == ["train"] * 6 + ["test"] * 3
    np.testing.assert_array_equal(ds["n_repeats"].values, [1] * 6 + [2] * 3)
    np.testing.assert_array_equal(r["unit_id"].values, np.arange(6))  # array 4 left out
    assert list(r["area"].values) == PHYS_AREA[:6]
    assert list(r["electrode_group"].values) == ["array01"] * 2 + ["array02"] * 2 + [
        "array03"
    ] * 2
    np.testing.assert_array_equal(r["recording_channel"].values, MAPPING[:6] - 1)
    np.testing.assert_allclose(r.values, expected_average(), atol=1e-6)
    # a few entries written out: electrode 0 (V1) saw training image 6 on day 2 -> 2/sqrt(3);
    # electrode 1's training responses are sign-flipped; test B on electrode 0: (0 + 1) / 2
    assert r.values[5, 0] == pytest.approx(2 / np.sqrt(3), abs=1e-6)
    assert r.values[0, 1] == pytest.approx(1.0, abs=1e-6)
    assert r.values[7, 0] == pytest.approx(0.5, abs=1e-6)
    np.testing.assert_allclose(r["window_start"].values, [0, 0, 0.005, 0.005, 0.01, 0.01])
    np.testing.assert_allclose(r["window_stop"].values, [0.025, 0.025, 0.03, 0.03, 0.04, 0.04])
    np.testing.assert_allclose(
        r["reliability"].values, [RELIABILITY[pat] for _, pat in ELECTRODES], atol=1e-9
    )
    attrs = ds.attrs
    assert attrs["responses_source"] == "ALLMUA"
    assert attrs["windows"] == ["IT: 0.01 0.04", "V1: 0.0 0.025", "V4: 0.005 0.03"]
    assert "start <= tb < stop" in attrs["window_convention"]
    assert "1024chns_mapping_20220105.mat" in attrs["channel_mapping"]
    assert attrs["n_days"] == 2 and attrs["n_trials"] == 12
    assert attrs["n_train_images"] == 6 and attrs["n_test_images"] == 3
    assert attrs["n_electrodes_selected"] == 6 and attrs["min_reliability"] == "none"


def test_keep_repeats_in_file_order(trials):
    ds = load(trials["path"], min_reliability=None, repeats="keep")
    r = ds["responses"]
    assert r.dims == ("stimulus_id", "repeat", "unit") and r.sizes["repeat"] == 2
    for p, (sign, pattern) in enumerate(ELECTRODES):
        np.testing.assert_allclose(r.values[:6, 0, p], sign * Z_TRAIN, atol=1e-6)
        np.testing.assert_allclose(r.values[6:, 0, p], Z_TEST_DAY1, atol=1e-6)  # day 1 first
        np.testing.assert_allclose(r.values[6:, 1, p], Z_TEST_DAY2[pattern], atol=1e-6)
    assert np.isnan(r.values[:6, 1]).all()
    assert np.isnan(ds["start_time"].values).all()


def test_selection_by_reliability_and_rf_centres(trials, tmp_path):
    with pytest.warns(UserWarning, match="receptive-field"):
        ds = load(trials["path"], rf_file=None)  # computed reliability > 0.4: r 0.5, 1, 0.5, 1
    np.testing.assert_array_equal(ds["unit_id"].values, [0, 1, 3, 5])
    np.testing.assert_allclose(ds["responses"].values, expected_average()[:, [0, 1, 3, 5]],
                               atol=1e-6)
    assert "rf_x" not in ds.coords and "none" in ds.attrs["rf_source"]
    assert ds.attrs["n_electrodes_reliable"] == 4

    rf = tmp_path / "THINGS_RFs.mat"
    x = np.array([1.0, 2.0, 3.0, np.nan, 5.0, 6.0, np.nan, 8.0])
    savemat(rf, {"all_centrex": x[None, :], "all_centrey": -x[None, :]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load(trials["path"], rf_file=rf)
    np.testing.assert_array_equal(ds["unit_id"].values, [0, 1, 5])  # 3 has no RF centre
    np.testing.assert_array_equal(ds["rf_x"].values, [1.0, 2.0, 6.0])
    np.testing.assert_array_equal(ds["rf_y"].values, [-1.0, -2.0, -6.0])
    assert ds.attrs["n_electrodes_with_rf"] == 5 and ds.attrs["n_electrodes_selected"] == 3

    # the published selection: reliab of THINGS_normMUA.mat (h5py: pairs x electrodes)
    normmua = tmp_path / "THINGS_normMUA.mat"
    with h5py.File(normmua, "w", userblock_size=512) as f:
        f["reliab"] = np.array([[0.1, 0.3, 0.9, 0.5, 0.6, 0.2, 0.9, 0.9],
                                [0.1, 0.7, 0.9, 0.5, 0.2, 0.2, 0.9, 0.9]])
    ds = load(trials["path"], normmua_file=normmua)
    np.testing.assert_array_equal(ds["unit_id"].values, [1, 2, 3])  # means .5 .9 .5 > .4
    np.testing.assert_allclose(ds["reliability"].values, [0.5, 0.9, 0.5])
    assert "reliab" in ds.attrs["reliability_source"]
    with pytest.raises(InputError, match="no electrode passes"):
        load(trials["path"], min_reliability=0.99, normmua_file=normmua)


def test_channel_mapping_sources(trials, tmp_path):
    ref = load(trials["path"], min_reliability=None)
    given = load(trials["path"], min_reliability=None, channel_mapping=MAPPING - 1)
    np.testing.assert_array_equal(given["responses"].values, ref["responses"].values)
    assert "0-based" in given.attrs["channel_mapping"]
    alone = tmp_path / "THINGS_MUA_trials.mat"
    shutil.copy(trials["path"], alone)
    with pytest.raises(InputError, match="1024chns_mapping"):
        load(alone)
    from_file = load(alone, min_reliability=None,
                     channel_mapping=trials["path"].parent / "_logs" /
                     "1024chns_mapping_20220105.mat")
    np.testing.assert_array_equal(from_file["responses"].values, ref["responses"].values)
    with pytest.warns(UserWarning, match="recording system"), pytest.warns(
        UserWarning, match="no variance"  # the left-out array's constant samples
    ):
        raw = load(alone, min_reliability=None, channel_mapping=False, windows={
            "V1": (0, 0.06), "V4": (0, 0.06), "IT": (0, 0.06)})
    assert raw.attrs["channel_mapping"].startswith("none")
    with pytest.raises(InputError, match="permutation"):
        load(alone, channel_mapping=[0, 1, 2])


@pytest.mark.parametrize(
    "kwargs", [{"block_size": 1}, {"block_size": 5}, {"max_block_bytes": 64}]
)
def test_blocked_reads_are_identical(trials, kwargs):
    whole = load(trials["path"], min_reliability=None)
    assert whole.attrs["n_blocks"] == 1
    blocked = load(trials["path"], min_reliability=None, **kwargs)
    assert blocked.attrs["n_blocks"] > 1
    np.testing.assert_array_equal(blocked["responses"].values, whole["responses"].values)
    if "max_block_bytes" in kwargs:  # 4 samples x 8 bytes: 2 electrodes per block
        assert blocked.attrs["block_electrodes"] == 2


def test_errors(trials, tmp_path):
    with pytest.raises(InputError, match="holds no sample"):
        load(trials["path"], windows={**WINDOWS, "V4": (0.021, 0.029)})
    with pytest.raises(InputError, match="no response window for areas"):
        load(trials["path"], windows={"V1": (0, 0.02)})
    with pytest.raises(InputError, match="repeats"):
        load(trials["path"], repeats="median")
    with pytest.raises(InputError, match="v7.3"):
        load(trials["path"].parent / "_logs" / "1024chns_mapping_20220105.mat")
    bad = tmp_path / "bad.mat"
    with h5py.File(bad, "w") as f:
        f["tb"] = TB[:, None]
    with pytest.raises(NWBLayoutError, match="ALLMUA"):
        load(bad, channel_mapping=np.arange(8))
    with h5py.File(bad, "w") as f:
        f["ALLMUA"] = np.zeros((TB.size, 3, 8))
        f["ALLMAT"] = np.zeros((5, 3))
        f["tb"] = TB[:, None]
    with pytest.raises(NWBLayoutError, match="ALLMAT"):
        load(bad, channel_mapping=np.arange(8))
    with h5py.File(bad, "w") as f:
        f["ALLMUA"] = np.zeros((3, TB.size, 8))
        f["ALLMAT"] = np.zeros((6, TB.size))
        f["tb"] = TB[:, None]
    with pytest.raises(NWBLayoutError, match="electrode x trial x time"):
        load(bad, channel_mapping=np.arange(8))


def test_images_and_defaults(trials, tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (9, 4, 4, 3), dtype=np.uint8)
    ds = load(trials["path"], min_reliability=None, images=pixels)
    np.testing.assert_array_equal(ds["images"].values, pixels)
    assert IRFA_WINDOWS == {"V1": (0.0, 0.133), "V4": (0.033, 0.166), "IT": (0.066, 0.199)}
    assert sum(v == "V1" for v in MONKEY_N_ARRAY_AREAS.values()) == 7


def test_progress_bar_v73_mapping_and_seven_allmat_columns(trials, tmp_path, capsys):
    ref = load(trials["path"], min_reliability=None)
    ds = load(trials["path"], min_reliability=None, progress=True, block_size=4)
    assert "THINGS_MUA_trials" in capsys.readouterr().err  # tqdm writes to stderr
    np.testing.assert_array_equal(ds["responses"].values, ref["responses"].values)
    # the README's ALLMAT: [trial_idx train_idx test_idx rep count correct day]
    seven = np.insert(ALLMAT, 5, 1.0, axis=1)
    files = tvsd_trials_files(tmp_path, _mua(), seven, TB, mapping=MAPPING)
    v73 = tmp_path / "mapping_v73.mat"
    with h5py.File(v73, "w", userblock_size=512) as f:
        f["mapping"] = MAPPING[:, None].astype(float)  # MATLAB 1 x 8, transposed by h5py
    ds = load(files["path"], min_reliability=None, channel_mapping=v73)
    np.testing.assert_array_equal(ds["responses"].values, ref["responses"].values)


def test_repeat_reliability_by_hand():
    reps = np.array([[[1.0], [2.0], [3.0], [np.nan]], [[10.0], [30.0], [20.0], [5.0]]])
    np.testing.assert_allclose(repeat_reliability(reps), [0.5])
    assert np.isnan(repeat_reliability(reps[:, :2])).all()  # fewer than 3 common stimuli


def test_memory_stays_bounded(tmp_path):
    """A 51 MB ALLMUA read in 256 KiB blocks: the peak is a small fraction of the file.

    A reader that loaded ALLMUA (or the window samples) whole would peak above 45 MB.
    """
    rng = np.random.default_rng(1)
    n_elec, n_trials, tb = 32, 1000, np.arange(-10.0, 390.0)
    days = np.repeat([1, 2], n_trials // 2)
    is_test = np.zeros(n_trials, bool)
    is_test[::10] = True
    train_idx = np.where(is_test, 0, np.cumsum(~is_test))
    test_idx = np.where(is_test, np.arange(n_trials) // 10 % 20 + 1, 0)
    allmat = np.column_stack([np.arange(1, n_trials + 1), train_idx, test_idx,
                              np.ones(n_trials), np.ones(n_trials), days])
    mua = rng.standard_normal((n_elec, n_trials, tb.size), dtype=np.float32)
    files = tvsd_trials_files(tmp_path, mua, allmat, tb, dtype=np.float32, compression=None)
    allmua_bytes = mua.nbytes
    del mua
    kwargs = {"array_areas": {1: "V1", 2: "IT"}, "channels_per_array": 16,
              "windows": {"V1": (0.0, 0.3), "IT": (0.05, 0.35)},
              "channel_mapping": np.arange(n_elec), "rf_file": False, "min_reliability": None}
    tracemalloc.start()
    try:
        ds = load_tvsd_trials(files["path"], max_block_bytes=256 * 1024, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ds.attrs["n_blocks"] >= 100
    assert peak < allmua_bytes / 10, f"peak {peak / 2**20:.1f} MiB"
    few = load_tvsd_trials(files["path"], block_size=300, **kwargs)
    assert few.attrs["n_blocks"] == 4
    np.testing.assert_array_equal(ds["responses"].values, few["responses"].values)
