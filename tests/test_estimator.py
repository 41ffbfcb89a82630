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
    model = IRFA(max_iter=30, random_state=0, unit_groups=groups, **FAST).fit(
        X[:96], images[:96]
    )
    return model, X, images, groups, labels


def test_fit_learns_and_beats_mean_image(fitted):
    model, X, images, _, _ = fitted
    losses = [h["loss_pixel"] for h in model.history_]
    assert len(losses) == 30 and model.n_iter_ == 30 and model.n_epochs_ == 30
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
    assert np.isfinite(record["loss_discriminator"])  # batch 0 of the epoch updates D
    assert np.isnan(record["val_loss"])  # no early stopping: nothing held out
    assert model.device_ == "cpu"
    assert model.heads_ == ["array0", "array1", "array2"] and model.n_features_in_ == 24


def test_fields(fitted):
    model, X, *_ = fitted
    spatial = model.spatial_irfs(X[:5])
    feature = model.feature_irfs(X[:5])
    assert spatial.shape == (5, 3, 16, 16) and feature.shape == (5, 3, 8)
    np.testing.assert_allclose(spatial.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(feature.sum(axis=1), 16 * 16, rtol=1e-5)
    with pytest.warns(FutureWarning, match="spatial_irfs"):
        np.testing.assert_array_equal(model.spatial_fields(X[:5]), spatial)


def test_sklearn_contract():
    est = IRFA(max_iter=3, lr=1e-3)
    params = est.get_params()
    assert params["max_iter"] == 3 and params["image_size"] == 64 and params["lr"] == 1e-3
    assert params["verbose"] == 0 and params["early_stopping"] is False
    est.set_params(max_iter=5)
    assert est.max_iter == 5
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
        IRFA().spatial_irfs(np.zeros((2, 3)))


def test_fit_returns_self_and_is_reproducible(tiny_data):
    X, images, groups, _ = tiny_data
    a = IRFA(max_iter=2, random_state=3, unit_groups=groups, **FAST)
    assert a.fit(X[:32], images[:32]) is a
    b = IRFA(max_iter=2, random_state=3, unit_groups=groups, **FAST).fit(X[:32], images[:32])
    np.testing.assert_array_equal(a.predict(X[32:40]), b.predict(X[32:40]))
    c = IRFA(max_iter=2, random_state=4, unit_groups=groups, **FAST).fit(X[:32], images[:32])
    assert not np.array_equal(a.predict(X[32:40]), c.predict(X[32:40]))


def test_save_load_round_trip(fitted, tmp_path):
    model, X, *_ = fitted
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(X[96:]), model.predict(X[96:]))
    np.testing.assert_array_equal(loaded.spatial_irfs(X[:3]), model.spatial_irfs(X[:3]))
    expected = {**model.get_params(), "callbacks": None, "unit_groups": list(model.unit_groups)}
    assert loaded.get_params() == expected
    assert loaded.heads_ == model.heads_
    np.testing.assert_equal(loaded.history_, model.history_)  # NaN-aware
    assert loaded.saved_versions_["torch"] and loaded.saved_versions_["irfa_nwb"]
    assert not list(tmp_path.glob("*.tmp"))  # atomic write left no temporary file
    assert loaded.recipe_ == model.recipe_ and loaded.n_iter_ == model.n_iter_
    assert loaded.model_file_["path"] == str(path.absolute())
    with pytest.raises(InputError, match="already exists"):
        model.save(path)  # the same overwrite rule as write_results
    model.save(path, overwrite=True)


def test_load_cuda_model_on_cpu_warns(fitted, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    model, X, *_ = fitted
    model.device_ = "cuda:0"  # pretend it was trained on a GPU
    try:
        model.save(tmp_path / "gpu.safetensors", overwrite=True)
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
        dims=("stimulus_id", "unit"),
        coords={
            "stimulus_id": ("stimulus_id", np.arange(n) + 100),
            "unit_id": ("unit", np.arange(X.shape[1]) * 10),
            "electrode_group": ("unit", groups),
            "area": ("unit", np.where(groups == "array0", "V1", "V4")),
        },
    )
    imgs = xr.DataArray(
        images[:n], dims=("stimulus_id", "y", "x", "channel"),
        coords={"stimulus_id": ("stimulus_id", np.arange(n) + 100)},
    )
    return responses, imgs


def test_xarray_in_xarray_out(tiny_data):
    X, images, groups, _ = tiny_data
    responses, imgs = _as_xarray(X, images, groups, 40)
    model = IRFA(max_iter=1, random_state=0, **FAST).fit(responses, imgs)
    assert model.heads_ == ["array0", "array1", "array2"]  # from the electrode_group coord
    assert model.head_areas_ == ["V1", "V4", "V4"]
    np.testing.assert_array_equal(model.unit_ids_, np.arange(24) * 10)
    np.testing.assert_array_equal(model.training_stimulus_ids_, np.arange(40) + 100)
    pred = model.predict(responses)
    assert isinstance(pred, xr.DataArray)
    assert pred.dims == ("stimulus_id", "y", "x", "channel")
    np.testing.assert_array_equal(pred.stimulus_id, np.arange(40) + 100)
    np.testing.assert_array_equal(pred.values, model.predict(X[:40]))
    spatial = model.spatial_irfs(responses)
    assert spatial.dims == ("stimulus_id", "head", "y", "x")
    assert list(spatial["head"].values) == model.heads_
    assert list(spatial["head_area"].values) == ["V1", "V4", "V4"]
    assert model.feature_irfs(responses).dims == ("stimulus_id", "head", "irf_channel")
    # units in another order are matched by unit_id
    shuffled = responses.isel(unit=np.random.default_rng(0).permutation(24))
    np.testing.assert_allclose(model.predict(shuffled).values, pred.values, atol=1e-6)
    # units missing -> clear error
    with pytest.raises(InputError, match="lacks 4 of the fitted units"):
        model.predict(responses.isel(unit=slice(0, 20)))
    extra = xr.concat([responses, responses.isel(unit=[0]).assign_coords(unit_id=("unit", [7]))],
                      dim="unit")
    with pytest.raises(InputError, match="1 units the model was not fitted on"):
        model.predict(extra)


def test_images_pair_with_samples_by_stimulus_id(tiny_data):
    """Images in another order (or with extra stimuli) are matched by stimulus_id; every
    presentation of a (stimulus_id, repeat) layout gets its own stimulus' image."""
    X, images, groups, _ = tiny_data
    responses, imgs = _as_xarray(X, images, groups, 40)
    permuted = imgs.isel(stimulus_id=np.random.default_rng(1).permutation(40))
    a = IRFA(max_iter=1, random_state=0, **FAST).fit(responses, imgs)
    b = IRFA(max_iter=1, random_state=0, **FAST).fit(responses, permuted)
    np.testing.assert_array_equal(a.predict(responses).values, b.predict(responses).values)
    # two presentations per stimulus, the second missing for half of them
    reps = xr.concat([responses, responses + 0.01], dim="repeat").transpose(
        "stimulus_id", "repeat", "unit")
    reps[:20, 1] = np.nan
    c = IRFA(max_iter=1, random_state=0, **FAST).fit(reps, imgs)
    out = c.predict(reps)
    assert out.dims == ("stimulus_id", "repeat", "y", "x", "channel")
    assert np.isnan(out.values[:20, 1]).all() and np.isfinite(out.values[20:]).all()
    assert c.score(reps, imgs) == pytest.approx(c.score(reps.isel(repeat=0), imgs), abs=0.05)
    with pytest.raises(InputError, match="no image"):
        IRFA(max_iter=1, **FAST).fit(responses, imgs.isel(stimulus_id=slice(0, 30)))
    with pytest.raises(InputError, match="DataArray with a 'stimulus_id' dim"):
        IRFA(max_iter=1, **FAST).fit(reps, images[:40])


def test_responses_of_another_kind_are_refused(tiny_data):
    X, images, groups, _ = tiny_data
    responses, imgs = _as_xarray(X, images, groups, 40)
    responses.attrs.update(responses_kind="spike_count", window=[0.0, 0.2])
    model = IRFA(max_iter=1, random_state=0, **FAST).fit(responses, imgs)
    assert model.response_attrs_ == {"responses_kind": "spike_count", "window": [0.0, 0.2]}
    other = responses.copy()
    other.attrs.update(responses_kind="window_mean", window=[0.05, 0.25])
    with pytest.raises(InputError, match="responses_kind: fitted on 'spike_count'"):
        model.predict(other)
    assert model.predict(other, check_responses=False).shape == (40, 16, 16, 3)


def test_clear_errors(tiny_data):
    X, images, groups, _ = tiny_data
    est = IRFA(max_iter=1, unit_groups=groups, **FAST)
    with pytest.raises(InputError, match="96 samples but y has 95"):
        est.fit(X, images[:95])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(InputError, match="NaN/inf"):
        est.fit(bad, images)
    with pytest.raises(InputError, match="channel"):
        est.fit(X, images[..., :2])
    with pytest.raises(InputError, match=r"must lie in \[0, 1\]"):
        est.fit(X, images * 255.0)
    with pytest.raises(InputError, match="different shapes"):
        est.fit(X[:2], [images[0], images[1, :8]])
    with pytest.raises(InputError, match="one label per unit"):
        IRFA(unit_groups=groups[:-1], **FAST).fit(X, images)
    with pytest.raises(InputError, match="missing label"):
        IRFA(unit_groups=[*groups[:-1], None], **FAST).fit(X, images)
    with pytest.raises(InputError, match="missing label"):
        IRFA(unit_groups=[*[1.0] * 23, float("nan")], **FAST).fit(X, images)
    with pytest.raises(InputError, match="dim 3, while dim <= 2"):  # scikit-learn's words
        est.fit(X[:, :, None], images)
    with pytest.raises(InputError, match="Expected 2D array"):
        est.fit(X[:, 0], images)
    with pytest.raises(InputError, match="requires y to be passed"):
        est.fit(X, None)
    with pytest.raises(InputError, match="early_stopping must be True or False"):
        IRFA(early_stopping=2, **FAST).fit(X, images)
    with pytest.raises(InputError, match="validation_fraction"):
        IRFA(early_stopping=True, validation_fraction=0.0, **FAST).fit(X, images)
    with pytest.warns(FutureWarning, match="unit_groups"):
        IRFA(max_iter=1, **FAST).fit(X[:16], images[:16], groups=groups)
    float_labels = IRFA(max_iter=1, unit_groups=[1.0] * 12 + [2.0] * 12, **FAST)
    assert float_labels.fit(X[:16], images[:16]).heads_ == ["1", "2"]
    model = IRFA(max_iter=1, unit_groups=groups, **FAST).fit(X[:16], images[:16])
    with pytest.raises(InputError, match="fitted on 24"):
        model.predict(X[:, :20])
    responses, imgs = _as_xarray(X, images, groups, 16)
    labelled = IRFA(max_iter=1, **FAST).fit(responses, imgs)  # heads from electrode_group
    other = responses.assign_coords(electrode_group=("unit", np.roll(groups, 1)))
    other = other.drop_vars("unit_id")
    with pytest.raises(InputError, match="electrode_group"):
        labelled.predict(other)


def test_grey_and_uint8_images_and_one_head_warning(tiny_data):
    X, images, _, _ = tiny_data
    grey = (images[:16].mean(axis=-1) * 255).astype(np.uint8)
    with pytest.warns(UserWarning, match="one attention head"):
        model = IRFA(max_iter=1, **{**FAST, "image_size": 32}).fit(X[:16], grey)
    assert model.heads_ == ["all"] and model.predict(X[:2]).shape == (2, 32, 32, 3)


def test_validation_early_stopping_callbacks_checkpoint(tiny_data, tmp_path):
    X, images, groups, _ = tiny_data
    seen = []

    def stop_after_three(est, record):
        seen.append(record["epoch"])
        return record["epoch"] >= 3

    model = IRFA(
        max_iter=10, validation_fraction=0.25, early_stopping=True, n_iter_no_change=5,
        random_state=0, checkpoint_path=tmp_path / "ckpt.safetensors",
        callbacks=[stop_after_three], unit_groups=groups, **FAST,
    ).fit(X, images)
    assert seen == [1, 2, 3] and model.n_iter_ == 3
    assert all(np.isfinite(h["val_loss"]) for h in model.history_)
    with pytest.warns(UserWarning, match="callbacks are not saved"):
        model.save(tmp_path / "m.safetensors")
    assert load_model(tmp_path / "ckpt.safetensors").n_iter_ == 3


def test_early_stopping_stops_and_restores_the_best_weights(tiny_data):
    X, images, groups, _ = tiny_data
    model = IRFA(max_iter=40, early_stopping=True, n_iter_no_change=2, tol=10.0,
                 validation_fraction=0.25, random_state=0, unit_groups=groups, **FAST)
    model.fit(X, images)
    # an improvement must exceed tol=10: none does after the first epoch
    assert model.n_iter_ == 3


def test_deprecated_epochs_still_works(tiny_data):
    X, images, groups, _ = tiny_data
    with pytest.warns(FutureWarning, match="max_iter"):
        model = IRFA(epochs=2, unit_groups=groups, **FAST).fit(X[:16], images[:16])
    assert model.n_iter_ == 2


def test_perceptual_needs_weights_and_says_how(tiny_data, empty_torch_home):
    X, images, groups, _ = tiny_data
    est = IRFA(max_iter=1, unit_groups=groups, **{**FAST, "perceptual_weight": 0.69})
    with pytest.raises(MissingWeightsError, match="perceptual_weight=0"):
        est.fit(X[:16], images[:16])


def test_fit_with_perceptual_loss_from_cached_weights(tiny_data, fake_vgg19):
    X, images, groups, _ = tiny_data
    model = IRFA(
        max_iter=1, random_state=0, unit_groups=groups,
        **{**FAST, "perceptual_weight": 0.69, "perceptual_size": 32},
    ).fit(X[:16], images[:16])
    assert model.history_[0]["loss_perceptual"] > 0


def test_dense_attention_option_gives_same_model(tiny_data):
    X, images, groups, _ = tiny_data
    a = IRFA(max_iter=1, random_state=0, unit_groups=groups, **FAST).fit(X[:16], images[:16])
    b = IRFA(max_iter=1, random_state=0, attention="dense", unit_groups=groups, **FAST).fit(
        X[:16], images[:16]
    )
    np.testing.assert_allclose(a.predict(X[16:20]), b.predict(X[16:20]), atol=2e-4)


def test_targets_are_converted_a_block_at_a_time_and_only_when_used(monkeypatch):
    """Large source images never exist in float32 at full size; unused images are skipped."""
    import tracemalloc

    from irfa_nwb.estimator import _inputs
    from irfa_nwb.imaging import resize_images, to_float_images

    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(900, 128, 128, 3), dtype=np.uint8)
    ids = np.arange(900) + 1000
    images = xr.DataArray(raw, dims=("stimulus_id", "y", "x", "channel"),
                          coords={"stimulus_id": ids})
    used = rng.choice(ids, size=600, replace=False)
    responses = xr.DataArray(rng.normal(size=(600, 5)), dims=("stimulus_id", "unit"),
                             coords={"stimulus_id": used})
    resp = _inputs.as_responses(responses)
    tracemalloc.start()
    got, index = _inputs.image_pairing(resp, images, size=16)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    full = raw[: len(used)].size * 4  # the used images in float32 at full size
    assert peak < full / 2, (peak, full)
    assert got.shape == (600, 16, 16, 3)
    expected = resize_images(to_float_images(raw[used - 1000]), 16)
    np.testing.assert_allclose(got[index], expected, atol=1e-6)
    # block boundaries do not change the numbers
    monkeypatch.setattr(_inputs, "_IMAGE_BLOCK_BYTES", 7 * 128 * 128 * 3 * 4 + 5)
    again, index2 = _inputs.image_pairing(resp, images, size=16)
    np.testing.assert_array_equal(again[index2], got[index])
