"""Tests of irfa_nwb.analysis.fields (spatial / feature IRF summaries)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from irfa_nwb.analysis import fields
from irfa_nwb.errors import InputError


def _softmax_heads(scores: np.ndarray) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_mean_pairwise_correlation_hand_value():
    a = np.array([0.0, 1.0, 2.0])
    rows = np.stack([a, 2 * a + 1, -a])
    # pairs: (0,1) r=1, (0,2) r=-1, (1,2) r=-1 -> mean -1/3
    assert fields.mean_pairwise_correlation(rows) == pytest.approx(-1 / 3)
    # a constant row is left out
    rows = np.stack([a, 2 * a, np.ones(3)])
    assert fields.mean_pairwise_correlation(rows) == pytest.approx(1.0)
    assert np.isnan(fields.mean_pairwise_correlation(rows[:1]))


def test_spatial_consistent_features_variable():
    """Planted: fixed spatial maps + stimulus-dependent features -> the paper's findings."""
    rng = np.random.default_rng(0)
    n, h, size, c = 12, 3, 8, 6
    base = rng.standard_normal((h, size, size)) * 3
    spatial = _softmax_heads(base[None] + 0.05 * rng.standard_normal((n, h, size, size)))
    feature = rng.random((n, h, c)) * 10
    heads = ["g0", "g1", "g2"]
    sp = xr.DataArray(spatial, dims=("stimulus", "head", "y", "x"), coords={"head": heads})
    ft = xr.DataArray(feature, dims=("stimulus", "head", "channel"), coords={"head": heads})

    mean = fields.spatial_irf_mean(sp)
    assert mean.dims == ("head", "y", "x")
    np.testing.assert_allclose(mean.sum("head").values, 1.0)
    np.testing.assert_allclose(mean.values, spatial.mean(axis=0))
    assert list(mean["head"].values) == heads
    np.testing.assert_allclose(fields.feature_irf_mean(ft).values, feature.mean(axis=0))

    summary = fields.irf_summary(sp, ft, areas={"g0": "V1", "g1": "V1", "g2": "IT"})
    assert (summary["spatial_consistency"].values > 0.9).all()
    assert (np.abs(summary["feature_consistency"].values) < 0.5).all()
    assert summary.attrs["spatial_consistency"] > summary.attrs["feature_consistency"]
    assert list(summary["area"].values) == ["V1", "V1", "IT"]
    v1 = summary["area_spatial_consistency"].sel(area_name="V1").item()
    assert v1 == pytest.approx(summary["spatial_consistency"].values[:2].mean())
    # hand check of the coefficient of variation for head 0
    expected_cv = feature[:, 0].std(axis=0).mean() / np.abs(feature[:, 0]).mean()
    assert summary["feature_variability"].values[0] == pytest.approx(expected_cv)


def test_identical_features_have_zero_variability():
    feature = np.tile(np.array([1.0, 2.0, 3.0]), (5, 2, 1))
    var = fields.feature_variability(feature)
    np.testing.assert_allclose(var.values, 0.0)
    np.testing.assert_allclose(fields.feature_consistency(feature).values, 1.0)


def test_bad_shapes_raise():
    with pytest.raises(InputError, match="4 dimensions"):
        fields.spatial_consistency(np.zeros((2, 3, 4)))
    with pytest.raises(InputError, match="share"):
        fields.irf_summary(np.zeros((2, 3, 4, 4)), np.zeros((2, 2, 5)))
    with pytest.raises(InputError, match="areas"):
        fields.irf_summary(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 5)), areas=["V1"])
