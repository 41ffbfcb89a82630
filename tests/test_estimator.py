"""The IRFA estimator: learning, sklearn contract, persistence, labelled I/O, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from irfa_nwb import IRFA, load_model
from irfa_nwb.errors import InputError, MissingWeightsError

FAST = dict(image_size=16, channels=8, width=8, batch_size=8, perceptual_weight=0, verbose=0)


@pytest.fixture(scope="module")
def fitted():
    from conftest import prototype_data

    X, images, groups, labels = prototype_data(n=120)
    model = IRFA(epochs=30, random_state=0, **FAST).fit(X[:96], images[:96], groups=groups)
    return model, X, images, groups, labels


def test_fit_learns_and_beats_mean_image(fitted):
    model, X, images, _, _ = fitted
    losses = [h["loss_pixel"] for h in model.history_]
    assert len(losses) == 30 and model.n_epochs_ == 30
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3])
    pred = model.predict(X[96:])
    assert pred.shape == (24, 16, 16, 3) and pred.dtype == np.float32
    assert pred.min() >= 0 and pred.max() <= 1
    mse_model = np.mean((pred - images[96:]) ** 2)
    mse_mean = np.mean((images[:96].mean(axis=0) - images[96:]) ** 2)
    assert mse_model < 0.5 * mse_mean
    assert model.score(X[96:], images[96:]) > 0.8


def test_history_records(fitted):
    model = fitted[0]
    record = model.history_[0]
    for key in ("epoch", "loss_generator", "loss_pixel", "loss_perceptual", "loss_adversarial",
                "loss_discriminator", "val_loss", "time"):
        assert key in record
    assert record["loss_perceptual"] == 0.0 and record["time"] > 0
    assert np.isfinite(record["loss_discriminator"])
    assert np.isnan(record["val_loss"])
    assert model.device_ == "cpu"
    assert model.heads_ == ["array0", "array1", "array2"] and model.n_features_in_ == 24


def test_fields(fitted):
    model, X, *_ = fitted
    spatial = model.spatial_fields(X[:5])
    feature = model.feature_fields(X[:5])
    assert spatial.shape == (5, 3, 16, 16) and feature.shape == (5, 3, 8)
    np.testing.assert_allclose(spatial.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(feature.sum(axis=1), 16 * 16, rtol=1e-5)


def test_sklearn_contract():
    est = IRFA(epochs=3, lr=1e-3)
    params = est.get_params()
    assert params["epochs"] == 3 and params["image_size"] == 64 and params["lr"] == 1e-3
    est.set_params(epochs=5)
    assert est.epochs == 5
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est
    # __init__ only stores: invalid values are accepted until fit
    odd = IRFA(image_size=-3)
    assert odd.image_size == -3
    with pytest.raises(InputError, match="image_size"):
        odd.fit(np.zeros((4, 3)), np.zeros((4, 8, 8, 3)))
    with pytest.raises(NotFittedError, match="not fitted"):
        IRFA().predict(np.zeros((2, 3)))
    with pytest.raises(NotFittedError):
        IRFA().spatial_fields(np.zeros((2, 3)))


def test_fit_returns_self_and_is_reproducible(tiny_data):
    X, images, groups, _ = tiny_data
    a = IRFA(epochs=2, random_state=3, **FAST)
    assert a.fit(X[:32], images[:32], groups=groups) is a
    b = IRFA(epochs=2, random_state=3, **FAST).fit(X[:32], images[:32], groups=groups)
    np.testing.assert_array_equal(a.predict(X[32:40]), b.predict(X[32:40]))
    c = IRFA(epochs=2, random_state=4, **FAST).fit(X[:32], images[:32], groups=groups)
    assert not np.array_equal(a.predict(X[32:40]), c.predict(X[32:40]))


def test_save_load_round_trip(fitted, tmp_path):
    model, X, *_ = fitted
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(X[96:]), model.predict(X[96:]))
    np.testing.assert_array_equal(loaded.spatial_fields(X[:3]), model.spatial_fields(X[:3]))
    assert loaded.get_params() == {**model.get_params(), "callbacks": None}
    assert loaded.heads_ == model.heads_
    np.testing.assert_equal(loaded.history_, model.history_)  # NaN-aware
    assert loaded.saved_versions_["torch"] and loaded.saved_versions_["irfa_nwb"]
    assert not list(tmp_path.glob("*.tmp"))  # atomic write left no temporary file


def test_load_cuda_model_on_cpu_warns(fitted, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    model, X, *_ = fitted
    model.device_ = "cuda:0"  # pretend it was trained on a GPU
    try:
        model.save(tmp_path / "gpu.safetensors")
    finally:
        model.device_ = "cpu"
    with pytest.warns(UserWarning, match="CUDA is not available"):
        loaded = load_model(tmp_path / "gpu.safetensors")
    assert loaded.device_ == "cpu"
    np.testing.assert_array_equal(loaded.predict(X[:4]), model.predict(X[:4]))


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a saved IRFA model"):
        load_model(bad)


def _as_xarray(X, images, groups, n):
    responses = xr.DataArray(
        X[:n],
        dims=("stimulus", "unit"),
        coords={
            "stimulus_id": ("stimulus", np.arange(n) + 100),
            "unit_id": ("unit", np.arange(X.shape[1]) * 10),
            "electrode_group": ("unit", groups),
            "area": ("unit", np.where(groups == "array0", "V1", "V4")),
        },
    )
    imgs = xr.DataArray(
        images[:n], dims=("stimulus", "y", "x", "channel"),
        coords={"stimulus_id": ("stimulus", np.arange(n) + 100)},
    )
    return responses, imgs


def test_xarray_in_xarray_out(tiny_data):
    X, images, groups, _ = tiny_data
    responses, imgs = _as_xarray(X, images, groups, 40)
    model = IRFA(epochs=1, random_state=0, **FAST).fit(responses, imgs)
    assert model.heads_ == ["array0", "array1", "array2"]  # from the electrode_group coord
    np.testing.assert_array_equal(model.unit_ids_, np.arange(24) * 10)
    pred = model.predict(responses)
    assert isinstance(pred, xr.DataArray)
    assert pred.dims == ("stimulus", "y", "x", "channel")
    np.testing.assert_array_equal(pred.stimulus_id, np.arange(40) + 100)
    np.testing.assert_array_equal(pred.values, model.predict(X[:40]))
    spatial = model.spatial_fields(responses)
    assert spatial.dims == ("stimulus", "head", "y", "x")
    assert list(spatial["head"].values) == model.heads_
    assert model.feature_fields(responses).dims == ("stimulus", "head", "channel")
    # units in another order are matched by unit_id
    shuffled = responses.isel(unit=np.random.default_rng(0).permutation(24))
    np.testing.assert_allclose(model.predict(shuffled).values, pred.values, atol=1e-6)
    # units missing -> clear error
    with pytest.raises(InputError, match="lacks 4 of the units"):
        model.predict(responses.isel(unit=slice(0, 20)))


def test_clear_errors(tiny_data):
    X, images, groups, _ = tiny_data
    est = IRFA(epochs=1, **FAST)
    with pytest.raises(InputError, match="96 samples but y has 95"):
        est.fit(X, images[:95], groups=groups)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(InputError, match="NaN/inf"):
        est.fit(bad, images, groups=groups)
    with pytest.raises(InputError, match=r"\(n, H, W, 3\)"):
        est.fit(X, images[..., :2], groups=groups)
    with pytest.raises(InputError, match=r"must lie in \[0, 1\]"):
        est.fit(X, images * 255.0, groups=groups)
    with pytest.raises(InputError, match="one label per unit"):
        est.fit(X, images, groups=groups[:-1])
    with pytest.raises(InputError, match="2-D"):
        est.fit(X[:, :, None], images, groups=groups)
    with pytest.raises(InputError, match="validation_fraction"):
        IRFA(early_stopping=2, **FAST).fit(X, images, groups=groups)
    model = IRFA(epochs=1, **FAST).fit(X[:16], images[:16], groups=groups)
    with pytest.raises(InputError, match="fitted on 24"):
        model.predict(X[:, :20])
    responses, _ = _as_xarray(X, images, groups, 16)
    other = responses.assign_coords(electrode_group=("unit", np.roll(groups, 1)))
    other = other.drop_vars("unit_id")
    with pytest.raises(InputError, match="electrode_group"):
        model.predict(other)


def test_grey_and_uint8_images_and_one_head_warning(tiny_data):
    X, images, _, _ = tiny_data
    grey = (images[:16].mean(axis=-1) * 255).astype(np.uint8)
    with pytest.warns(UserWarning, match="one attention head"):
        model = IRFA(epochs=1, **{**FAST, "image_size": 32}).fit(X[:16], grey)
    assert model.heads_ == ["0"] and model.predict(X[:2]).shape == (2, 32, 32, 3)


def test_validation_early_stopping_callbacks_checkpoint(tiny_data, tmp_path):
    X, images, groups, _ = tiny_data
    seen = []

    def stop_after_three(est, record):
        seen.append(record["epoch"])
        return record["epoch"] >= 3

    model = IRFA(
        epochs=10, validation_fraction=0.25, early_stopping=5, random_state=0,
        checkpoint_path=tmp_path / "ckpt.safetensors", callbacks=[stop_after_three], **FAST,
    ).fit(X, images, groups=groups)
    assert seen == [1, 2, 3] and model.n_epochs_ == 3
    assert all(np.isfinite(h["val_loss"]) for h in model.history_)
    with pytest.warns(UserWarning, match="callbacks are not saved"):
        model.save(tmp_path / "m.safetensors")
    assert load_model(tmp_path / "ckpt.safetensors").n_epochs_ == 3


def test_perceptual_needs_weights_and_says_how(tiny_data, empty_torch_home):
    X, images, groups, _ = tiny_data
    est = IRFA(epochs=1, **{**FAST, "perceptual_weight": 0.69})
    with pytest.raises(MissingWeightsError, match="perceptual_weight=0"):
        est.fit(X[:16], images[:16], groups=groups)


def test_fit_with_perceptual_loss_from_cached_weights(tiny_data, fake_vgg19):
    X, images, groups, _ = tiny_data
    model = IRFA(
        epochs=1, random_state=0, **{**FAST, "perceptual_weight": 0.69, "perceptual_size": 32}
    ).fit(X[:16], images[:16], groups=groups)
    assert model.history_[0]["loss_perceptual"] > 0


def test_dense_attention_option_gives_same_model(tiny_data):
    X, images, groups, _ = tiny_data
    a = IRFA(epochs=1, random_state=0, **FAST).fit(X[:16], images[:16], groups=groups)
    b = IRFA(epochs=1, random_state=0, attention="dense", **FAST).fit(
        X[:16], images[:16], groups=groups
    )
    np.testing.assert_allclose(a.predict(X[16:20]), b.predict(X[16:20]), atol=2e-4)


@pytest.mark.gpu
def test_fit_on_cuda_with_mixed_precision(tiny_data):
    X, images, groups, _ = tiny_data
    model = IRFA(epochs=3, random_state=0, device="cuda", **FAST).fit(X, images, groups=groups)
    assert model.device_.startswith("cuda") and model.mixed_precision_
    assert np.isfinite(model.history_[-1]["loss_generator"])
    assert model.predict(X[:4]).shape == (4, 16, 16, 3)
