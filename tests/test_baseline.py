"""Tests of the ridge-regression reconstruction baseline."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.base import clone

from irfa_nwb import RidgeReconstruction
from irfa_nwb.errors import InputError


def _linear_data(n: int = 300, size: int = 8, n_units: int = 40, noise: float = 0.05):
    """Smooth random images driven by a few latent factors, responses a linear map of them."""
    rng = np.random.default_rng(0)
    n_latent = 6
    basis = rng.normal(size=(n_latent, size * size * 3))
    latent = rng.normal(size=(n, n_latent))
    pixels = 0.5 + 0.08 * latent @ basis
    images = np.clip(pixels, 0, 1).reshape(n, size, size, 3)
    mixing = rng.normal(size=(n_latent, n_units))
    X = latent @ mixing + noise * rng.normal(size=(n, n_units))
    return X, images


def _mse(a, b):
    return float(np.mean((np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) ** 2))


def test_beats_a_constant_image_on_a_known_linear_map():
    X, images = _linear_data()
    train, test = slice(0, 240), slice(240, None)
    model = RidgeReconstruction().fit(X[train], images[train])
    pred = model.predict(X[test])
    assert pred.shape == (60, 8, 8, 3) and pred.dtype == np.float32
    assert pred.min() >= 0 and pred.max() <= 1
    constant = np.broadcast_to(images[train].mean(axis=0), pred.shape)
    mse_model, mse_const = _mse(pred, images[test]), _mse(constant, images[test])
    assert mse_model < 0.1 * mse_const
    assert model.score(X[test], images[test]) > 0.95
    assert model.alpha_ in model.alphas  # chosen by cross-validation


def test_uint8_targets_and_fixed_alpha():
    X, images = _linear_data(n=120)
    u8 = np.rint(images * 255).astype(np.uint8)
    a = RidgeReconstruction(alpha=1.0).fit(X, u8)
    b = RidgeReconstruction(alpha=1.0).fit(X, images)
    assert a.alpha_ == 1.0
    np.testing.assert_allclose(a.predict(X), b.predict(X), atol=0.01)
    grey = RidgeReconstruction(alpha=1.0).fit(X, images[..., 0])
    assert grey.predict(X).shape == (120, 8, 8, 3)


def test_xarray_in_xarray_out():
    X, images = _linear_data(n=100)
    Xd = xr.DataArray(
        X,
        dims=("stimulus", "unit"),
        coords={
            "stimulus_id": ("stimulus", np.arange(100) + 10),
            "unit_id": ("unit", np.arange(40)),
        },
    )
    yd = xr.DataArray(
        np.moveaxis(images, -1, 1), dims=("stimulus", "channel", "y", "x")
    )  # channel not last
    model = RidgeReconstruction().fit(Xd, yd)
    out = model.predict(Xd)
    assert isinstance(out, xr.DataArray)
    assert out.dims == ("stimulus", "y", "x", "channel")
    np.testing.assert_array_equal(out["stimulus_id"].values, np.arange(100) + 10)
    assert list(out["channel"].values) == ["R", "G", "B"]
    np.testing.assert_allclose(out.values, RidgeReconstruction().fit(X, images).predict(X))
    # transposed DataArray gives the same result
    np.testing.assert_allclose(model.predict(Xd.transpose("unit", "stimulus")).values, out.values)


def test_errors_and_sklearn_contract():
    X, images = _linear_data(n=50)
    model = RidgeReconstruction(alpha=2.0)
    assert clone(model).get_params()["alpha"] == 2.0
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        model.predict(X)
    with pytest.raises(InputError, match="samples"):
        model.fit(X[:10], images)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        model.fit(X, images * 2)
    model.fit(X, images)
    with pytest.raises(InputError, match="units"):
        model.predict(X[:, :5])
    with pytest.raises(InputError, match="NaN"):
        model.predict(np.full_like(X, np.nan))


def test_fits_a_loaded_dataset_directly_and_resizes_targets():
    """fit(ds["responses"], ds["images"]) pairs presentations with images by stimulus_id."""
    from irfa_nwb import simulate_recording

    ds = simulate_recording(n_stimuli=60, n_test=10, n_repeats=3, image_size=16,
                            arrays={"V1": 2}, units_per_array=6)
    model = RidgeReconstruction(image_size=8).fit(ds["responses"], ds["images"])
    assert model.image_shape_ == (8, 8, 3)
    np.testing.assert_array_equal(model.training_stimulus_ids_, np.arange(60))
    out = model.predict(ds["responses"])
    assert out.dims == ("stimulus_id", "repeat", "y", "x", "channel")
    missing = np.isnan(ds["responses"].values).all(axis=-1)
    np.testing.assert_array_equal(np.isnan(out.values).all(axis=(2, 3, 4)), missing)
