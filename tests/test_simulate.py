"""Tests of the ground-truth simulator: data model, determinism, RF geometry, noise model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import irfa_nwb
from irfa_nwb.data import stack_presentations
from irfa_nwb.errors import InputError
from irfa_nwb.simulation import (
    PHOTOS,
    array_rf_centres,
    make_cortex,
    natural_patches,
    simulate,
    simulate_recording,
    simulation_streams,
)

SMALL = dict(n_stimuli=60, n_test=6, n_repeats=4, image_size=32, units_per_array=8)


@pytest.fixture(scope="module")
def small():
    return simulate_recording(**SMALL, random_state=0, return_cortex=True)


# -- data model ----------------------------------------------------------------------------
def test_layout_shapes_dtypes_coords(small):
    ds, cortex = small
    n_pres = (60 - 6) + 6 * 4
    n_units = 8 * (4 + 2 + 2)
    assert ds["responses"].dims == ("stimulus_id", "repeat", "unit")
    assert ds["responses"].shape == (60, 4, n_units)
    assert ds["images"].dims == ("stimulus_id", "y", "x", "channel")
    assert ds["images"].shape == (60, 32, 32, 3)
    assert ds["images"].dtype == np.uint8
    np.testing.assert_array_equal(ds["stimulus_id"].values, np.arange(60))
    assert ds["stimulus_id"].dtype == np.int64
    assert ds["image_name"].values[7] == "stimulus_00007"
    assert ds["split"].dims == ("stimulus_id",)
    assert ds["start_time"].dims == ("stimulus_id", "repeat")

    r = stack_presentations(ds)  # one row per presentation, in time order
    assert r.shape == (n_pres, n_units)
    assert r.dtype == np.float32
    assert r["stimulus_id"].dtype == np.int64
    assert r["start_time"].dtype == np.float64
    assert r["unit_id"].dtype == np.int64
    np.testing.assert_array_equal(r["unit_id"].values, np.arange(n_units))
    for c in ("stimulus_id", "start_time", "split"):
        assert r[c].dims == ("presentation",)
    for c in ("unit_id", "electrode_group", "area", "rf_x", "rf_y"):
        assert r[c].dims == ("unit",)
    assert r["rf_x"].attrs["units"] == "image_fraction"
    assert r["rf_y"].attrs["units"] == "image_fraction"

    # 0.25 s apart, increasing
    np.testing.assert_allclose(np.diff(r["start_time"].values), 0.25, rtol=1e-6)
    assert r["start_time"].values[0] == 1.0
    # train images once, test images n_repeats times, all stimuli shown
    sid, split = r["stimulus_id"].values, r["split"].values
    assert set(np.unique(split)) == {"train", "test"}
    counts = np.bincount(sid, minlength=60)
    test_ids = np.unique(sid[split == "test"])
    assert test_ids.size == 6
    assert np.all(counts[test_ids] == 4)
    train_ids = np.setdiff1d(np.arange(60), test_ids)
    assert np.all(counts[train_ids] == 1)
    assert not np.isin(sid[split == "train"], test_ids).any()
    # images and presentations share the stimulus_id index
    shown = ds["images"].sel(stimulus_id=r["stimulus_id"].values)
    np.testing.assert_array_equal(shown.values[3], ds["images"].values[sid[3]])

    groups = list(dict.fromkeys(r["electrode_group"].values.tolist()))
    assert groups == ["V1_a1", "V1_a2", "V1_a3", "V1_a4", "V4_a1", "V4_a2", "IT_a1", "IT_a2"]
    area = r["area"].values
    assert all(a == g.split("_")[0] for a, g in zip(area, r["electrode_group"].values, strict=True))
    assert np.all((r["rf_x"] > 0) & (r["rf_x"] < 1)) and np.all((r["rf_y"] > 0) & (r["rf_y"] < 1))

    # spike counts: non-negative integers of a plausible size
    vals = r.values
    assert np.all(vals >= 0) and np.all(vals == np.round(vals))
    assert 2 < vals.mean() < 15


def test_attrs_are_plain_provenance(small):
    ds, _ = small
    assert ds.attrs["source"] == "irfa_nwb.simulate_recording"
    assert ds.attrs["random_state"] == 0
    assert ds.attrs["n_stimuli"] == 60 and ds.attrs["image_size"] == 32
    assert ds.attrs["n_arrays_V1"] == 4
    for k, v in ds.attrs.items():
        assert isinstance(v, str | int | float), (k, v)


def test_determinism_by_random_state_and_old_name():
    a = simulate_recording(**SMALL, random_state=5)
    b = simulate_recording(**SMALL, random_state=5)
    xr.testing.assert_identical(a, b)
    with pytest.warns(FutureWarning, match="simulate_recording"):
        old = simulate(**SMALL, seed=5)
    xr.testing.assert_identical(a, old)
    c = simulate_recording(**SMALL, random_state=6)
    assert not np.array_equal(a["images"].values, c["images"].values)
    assert not np.array_equal(a["rf_x"].values, c["rf_x"].values)
    # the cortex does not depend on the number of stimuli
    d = simulate_recording(**{**SMALL, "n_stimuli": 30, "n_test": 2}, random_state=5)
    np.testing.assert_array_equal(a["rf_x"].values, d["rf_x"].values)


def test_top_level_api_and_no_heavy_imports():
    code = (
        "import sys, irfa_nwb\n"
        "ds = irfa_nwb.simulate_recording(n_stimuli=5, n_test=1, n_repeats=2, image_size=16, "
        "units_per_array=2)\n"
        "assert ds.responses.shape == (5, 2, 16), ds.responses.shape\n"
        "assert 'pynwb' not in sys.modules and 'torch' not in sys.modules\n"
        "import irfa_nwb.simulation.nwb\n"
        "ds2 = irfa_nwb.simulate_recording(n_stimuli=5, n_test=1, n_repeats=2, "
        "image_size=16, units_per_array=2)\n"
        "assert ds2.identical(ds)\n"
        "assert callable(irfa_nwb.write_simulated_recording)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_array_rf_centres_are_known_and_spread(small):
    ds, cortex = small
    centres = array_rf_centres(ds)
    assert list(centres["electrode_group"].values) == cortex.array_names
    np.testing.assert_allclose(centres["rf_x"].values, cortex.array_rf_x, atol=1e-12)
    np.testing.assert_allclose(centres["rf_y"].values, cortex.array_rf_y, atol=1e-12)
    assert list(centres["area"].values) == ["V1"] * 4 + ["V4"] * 2 + ["IT"] * 2
    # V1 arrays sit at distinct places of the visual field, units cluster around them
    xy = np.stack([centres["rf_x"].values[:4], centres["rf_y"].values[:4]], axis=1)
    dist = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
    assert dist[np.triu_indices(4, 1)].min() > 0.2
    for g, cx_, cy_ in zip(cortex.array_names, cortex.array_rf_x, cortex.array_rf_y, strict=True):
        sel = ds["electrode_group"].values == g
        spread = np.hypot(ds["rf_x"].values[sel] - cx_, ds["rf_y"].values[sel] - cy_)
        assert spread.max() < 0.15


def test_invalid_arguments():
    with pytest.raises(InputError, match="n_test"):
        simulate_recording(n_stimuli=5, n_test=6, image_size=16)
    with pytest.raises(InputError, match="area"):
        simulate_recording(n_stimuli=5, n_test=1, image_size=16, arrays={"MT": 1})
    with pytest.raises(InputError, match="noise"):
        simulate_recording(n_stimuli=5, n_test=1, image_size=16, units_per_array=2,
                           noise="gauss")
    with pytest.raises(InputError, match="isi"):
        simulate_recording(n_stimuli=5, n_test=1, image_size=16, isi=0.1, window=0.2)
    with pytest.raises(InputError, match="photograph"):
        natural_patches(2, 16, photos=["no_such_photo"])


# -- images --------------------------------------------------------------------------------
def test_natural_patches_are_varied_rgb_crops():
    a = natural_patches(40, 32, random_state=3)
    b = natural_patches(40, 32, random_state=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (40, 32, 32, 3) and a.dtype == np.uint8
    # distinct patches with real contrast and colour
    flat = a.reshape(40, -1).astype(float)
    assert np.unique(flat, axis=0).shape[0] == 40
    assert np.median(flat.std(axis=1)) > 10
    chroma = np.abs(a[..., 0].astype(float) - a[..., 2]).mean(axis=(1, 2))
    assert (chroma > 5).sum() > 10  # many colour patches
    assert len(PHOTOS) >= 10


# -- receptive fields ----------------------------------------------------------------------
def _probe_maps(cortex, size: int, step: int = 2, n_noise: int = 4):
    """Response to small colour-noise blobs at grid positions, minus the blank response."""
    rng = np.random.default_rng(0)
    pos = np.arange(1, size, step) + 0.0
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    imgs, where = [], []
    for py in pos:
        for px in pos:
            w = np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * 1.5**2))[..., None]
            for _ in range(n_noise):
                noise = rng.choice([-1.0, 1.0], size=(size, size, 3))
                imgs.append(128 + 115 * w * noise)
            where.append((px / size, py / size))
    imgs = np.rint(np.array(imgs)).astype(np.uint8)
    blank = np.full((1, size, size, 3), 128, np.uint8)
    resp = cortex.expected_counts(imgs) - cortex.expected_counts(blank)[0]
    maps = resp.reshape(len(where), n_noise, -1).mean(axis=1)
    return np.array(where), maps


def test_rf_centres_are_where_units_respond(small):
    """Mapping with local noise probes finds each V1 (and V4) unit at its rf_x, rf_y."""
    ds, cortex = small
    where, maps = _probe_maps(cortex, 32)
    peak = where[maps.argmax(axis=0)]
    err = np.hypot(peak[:, 0] - ds["rf_x"].values, peak[:, 1] - ds["rf_y"].values)
    area = ds["area"].values
    assert err[area == "V1"].max() < 0.1  # < 3.2 px at 32 px; probe grid step is 2 px
    assert np.median(err[area == "V1"]) < 0.05
    assert err[area == "V4"].max() < 0.2
    # a V1 unit barely responds to probes far from its RF
    v1 = np.flatnonzero(area == "V1")
    far = (
        np.hypot(
            where[:, None, 0] - ds["rf_x"].values[v1], where[:, None, 1] - ds["rf_y"].values[v1]
        )
        > 0.35
    )
    peak_resp = maps[:, v1].max(axis=0)
    far_resp = np.abs(np.where(far, maps[:, v1], 0)).max(axis=0)
    assert np.all(far_resp < 0.01 * peak_resp)


def test_v1_depends_on_content_at_rf_not_far_away(small):
    ds, cortex = small
    images = ds["images"].values[:20]
    base = cortex.expected_counts(images)
    v1 = np.flatnonzero(ds["area"].values == "V1")
    yy, xx = (np.mgrid[0:32, 0:32] + 0.5) / 32
    near_change, far_change = [], []
    for u in v1[::3]:
        cx_, cy_ = ds["rf_x"].values[u], ds["rf_y"].values[u]
        r = 3 * cortex.rf_sigma[u]
        near = np.hypot(xx - cx_, yy - cy_) < r
        far = np.hypot(xx - (1 - cx_), yy - (1 - cy_)) < r  # same disk, mirrored position
        assert np.hypot(1 - 2 * cx_, 1 - 2 * cy_) > 0.3
        for mask, store in ((near, near_change), (far, far_change)):
            grey = images.copy()
            grey[:, mask] = 128
            store.append(np.abs(cortex.expected_counts(grey)[:, u] - base[:, u]).mean())
    near_change, far_change = np.array(near_change), np.array(far_change)
    assert np.all(near_change > 0.5)  # spikes per window
    assert np.all(far_change < 0.02 * near_change)


def test_areas_have_their_rf_sizes(small):
    _, cortex = small
    size = {a: np.median(cortex.rf_sigma[cortex.area == a]) for a in ("V1", "V4", "IT")}
    assert size["V1"] < size["V4"] < size["IT"]
    # IT centres are central, V1 arrays spread over the field
    d_it = np.hypot(cortex.array_rf_x - 0.5, cortex.array_rf_y - 0.5)
    names = np.array(cortex.array_names)
    assert np.all(d_it[np.char.startswith(names, "IT")] < 0.15)
    assert np.all(d_it[np.char.startswith(names, "V1")] > 0.15)


def test_it_units_follow_global_features(small):
    """IT responses change when the global colour / contrast of an image changes."""
    ds, cortex = small
    images = ds["images"].values[:20]
    it = cortex.area == "IT"
    base = cortex.expected_counts(images)[:, it]
    tinted = images.astype(float)
    tinted[..., 0] = np.clip(tinted[..., 0] * 1.4, 0, 255)
    tinted[..., 2] *= 0.6
    low_contrast = 128 + 0.3 * (images.astype(float) - 128)
    for changed in (tinted, low_contrast):
        new = cortex.expected_counts(np.rint(changed).astype(np.uint8))[:, it]
        assert np.abs(new - base).mean() > 0.5


# -- noise model ---------------------------------------------------------------------------
@pytest.mark.parametrize("fano", [1.0, 2.0])
def test_repeats_have_the_noise_model_variance(fano):
    kw = dict(n_stimuli=12, n_test=12, n_repeats=40, image_size=16, units_per_array=16)
    ds, cortex = simulate_recording(**kw, fano=fano, random_state=2, return_cortex=True)
    r = stack_presentations(ds)
    assert np.all(r["split"].values == "test")
    expected = cortex.expected_counts(ds["images"].values)[r["stimulus_id"].values]
    counts = r.values.astype(float)
    # mean and variance around the noise-free expected counts
    assert abs(counts.sum() / expected.sum() - 1) < 0.02
    assert abs(((counts - expected) ** 2).sum() / expected.sum() - fano) < 0.06 * fano
    # the same from the repeats alone: variance over repeats = fano x mean over repeats
    reps = ds["responses"]  # (stimulus_id, repeat, unit)
    ratio = float(reps.var("repeat", ddof=1).mean() / reps.mean("repeat").mean())
    assert abs(ratio - fano) < 0.08 * fano


def test_noise_free_responses_are_expected_counts():
    ds, cortex = simulate_recording(**SMALL, noise="none", random_state=1, return_cortex=True)
    r = stack_presentations(ds)
    expected = cortex.expected_counts(ds["images"].values)[r["stimulus_id"].values]
    np.testing.assert_allclose(r.values, expected, rtol=1e-6)
    assert ds.attrs["responses_kind"] == "expected_spike_count"


def test_streams_rebuild_the_cortex():
    ds = simulate_recording(**SMALL, random_state=4)
    cortex = make_cortex(image_size=32, units_per_array=8,
                         random_state=simulation_streams(4)["cortex"])
    np.testing.assert_array_equal(cortex.rf_x, ds["rf_x"].values)


@pytest.mark.slow
def test_default_size_is_fast():
    import time

    t0 = time.perf_counter()
    ds = irfa_nwb.simulate_recording(random_state=0)
    assert stack_presentations(ds).shape == (1000 - 50 + 50 * 10, 192)
    assert time.perf_counter() - t0 < 60


def test_each_array_carries_the_pixels_at_its_rf_centre():
    """Pixels best decoded (linearly) from a V1 / V4 array lie at that array's true RF centre.

    This is what IRFA's spatial IRFs should find in the simulated data. IT units read
    nonlinear global features and no luminance: their pixel maps are weak and carry no
    localisable peak.
    """
    from scipy.ndimage import gaussian_filter
    from sklearn.linear_model import Ridge

    ds = simulate_recording(n_stimuli=700, n_test=0, image_size=32, units_per_array=16,
                            random_state=0)
    r = stack_presentations(ds)
    X = r.values.astype(float)
    lum = ds["images"].values[r["stimulus_id"].values].astype(float).mean(axis=-1)
    Y = lum.reshape(len(lum), -1) / 255
    train, test = slice(0, 550), slice(550, None)
    centres = array_rf_centres(ds)
    dist, peak_r = {}, {}
    for g in centres["electrode_group"].values:
        m = r["electrode_group"].values == g
        Z = (X[:, m] - X[train, m].mean(0)) / X[train, m].std(0)
        pred = Ridge(alpha=100.0).fit(Z[train], Y[train]).predict(Z[test])
        a, b = pred - pred.mean(0), Y[test] - Y[test].mean(0)
        corr = (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))
        smooth = gaussian_filter(corr.reshape(32, 32), 1.0)
        iy, ix = np.unravel_index(smooth.argmax(), smooth.shape)
        peak_r[str(g)] = smooth.max()
        cx_ = float(centres["rf_x"].sel(electrode_group=g))
        cy_ = float(centres["rf_y"].sel(electrode_group=g))
        dist[str(g)] = np.hypot((ix + 0.5) / 32 - cx_, (iy + 0.5) / 32 - cy_)
    assert max(d for g, d in dist.items() if g.startswith("V1")) < 0.06, dist  # < 2 px
    assert max(d for g, d in dist.items() if g.startswith("V4")) < 0.12, dist
    v1_r = min(r_ for g, r_ in peak_r.items() if g.startswith("V1"))
    assert v1_r > 0.6, peak_r
    assert max(r_ for g, r_ in peak_r.items() if g.startswith("IT")) < v1_r - 0.2, peak_r
