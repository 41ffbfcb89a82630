"""Tests of irfa_nwb.analysis.metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from irfa_nwb.analysis import metrics
from irfa_nwb.errors import InputError


def test_pixel_correlation_hand_values():
    a = np.array([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 0.0], [0.0, 1.0]]])
    b = np.array([[[0.0, 2.0], [4.0, 6.0]], [[0.0, 1.0], [1.0, 0.0]]])
    r = metrics.pixel_correlation(a, b)
    assert r.dims == ("stimulus_id",)
    np.testing.assert_allclose(r.values, [1.0, -1.0])
    # partial correlation: x = [0,1,2,3], y = [0,1,1,3]
    x = np.array([0.0, 1, 2, 3])
    y = np.array([0.0, 1, 1, 3])
    expected = np.sum((x - 1.5) * (y - 1.25)) / np.sqrt(
        np.sum((x - 1.5) ** 2) * np.sum((y - 1.25) ** 2)
    )
    got = metrics.pixel_correlation(x.reshape(1, 2, 2), y.reshape(1, 2, 2))
    assert got.values[0] == pytest.approx(expected)
    assert metrics.pearson_r(x, y) == pytest.approx(expected)


def test_pixel_correlation_keeps_stimulus_ids_and_checks_shapes():
    rng = np.random.default_rng(0)
    imgs = xr.DataArray(
        rng.random((3, 4, 4, 3)),
        dims=("stimulus", "y", "x", "channel"),
        coords={"stimulus_id": ("stimulus", ["a", "b", "c"])},
    )
    r = metrics.pixel_correlation(imgs, imgs)
    np.testing.assert_allclose(r.values, 1.0)
    assert list(r.stimulus_id.values) == ["a", "b", "c"]
    with pytest.raises(InputError, match="same shape"):
        metrics.pixel_correlation(imgs, imgs[:2])
    with pytest.raises(InputError, match="NaN"):
        metrics.pixel_correlation(np.full((1, 4, 4), np.nan), np.zeros((1, 4, 4)))


def test_ssim_identity_and_known_value():
    rng = np.random.default_rng(0)
    a = rng.random((2, 8, 8, 3))
    s = metrics.ssim(a, a)
    np.testing.assert_allclose(s.values, 1.0)
    # constant images: SSIM = (2 mu1 mu2 + C1) / (mu1^2 + mu2^2 + C1) for zero variance
    c1 = (0.01 * 1.0) ** 2
    mu1, mu2 = 0.2, 0.6
    const_a = np.full((1, 8, 8), mu1)
    const_b = np.full((1, 8, 8), mu2)
    expected = (2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1)
    assert metrics.ssim(const_a, const_b).values[0] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(InputError, match="too small"):
        metrics.ssim(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))


def test_identification_rank_and_accuracy_hand_values():
    # similarity S[i, j] of reconstruction i with stimulus j
    s = np.array(
        [
            [0.9, 0.1, 0.2, 0.0],  # own best -> rank 1
            [0.5, 0.4, 0.6, 0.0],  # two better -> rank 3
            [0.1, 0.2, 0.3, 0.3],  # tie counts against -> rank 2
            [0.9, 0.8, 0.7, 0.1],  # worst -> rank 4
        ]
    )
    ranks = metrics.identification_rank(np.zeros((4, 3, 3)), np.zeros((4, 3, 3)), similarity=s)
    assert ranks.values.tolist() == [1, 3, 2, 4]
    # 4-way (all): only the first is identified
    assert metrics.identification_accuracy(ranks.values) == pytest.approx(0.25)
    # 2-way: fraction of distractors beaten = (3/3 + 1/3 + 2/3 + 0/3) / 4 = 0.5
    assert metrics.identification_accuracy(ranks.values, 2) == pytest.approx(0.5)
    # 3-way: C(n - rank, 2) / C(3, 2) = (3 + 0 + 1 + 0) / 3 / 4
    assert metrics.identification_accuracy(ranks.values, 3) == pytest.approx(4 / 12)
    with pytest.raises(InputError, match="n_way"):
        metrics.identification_accuracy(ranks.values, 5)


def test_identification_from_images():
    rng = np.random.default_rng(0)
    stim = rng.random((5, 6, 6, 3))
    recon = stim + 0.05 * rng.standard_normal(stim.shape)
    ranks = metrics.identification_rank(stim, recon)
    assert ranks.values.tolist() == [1] * 5
    # swap two reconstructions: both are now misidentified
    swapped = recon[[1, 0, 2, 3, 4]]
    ranks = metrics.identification_rank(stim, swapped)
    assert ranks.values[0] > 1 and ranks.values[1] > 1
    assert ranks.values[2:].tolist() == [1, 1, 1]


def test_reconstruction_metrics_summary():
    rng = np.random.default_rng(0)
    stim = rng.random((4, 8, 8, 3))
    ds = metrics.reconstruction_metrics(stim, stim)
    assert set(ds.data_vars) == {"pixel_r", "ssim", "identification_rank"}
    assert ds.attrs["mean_pixel_r"] == pytest.approx(1.0)
    assert ds.attrs["identification_accuracy"] == 1.0
    assert ds.attrs["identification_accuracy_2way"] == 1.0
