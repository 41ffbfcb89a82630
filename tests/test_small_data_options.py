"""The opt-in small-data options of IRFA (not in the published model): ``ridge_residual`` and
``response_noise``; the ridge helpers they use."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from irfa_nwb import IRFA, RidgeReconstruction, load_model
from irfa_nwb.errors import InputError
from irfa_nwb.estimator.ridge import apply_ridge_map, out_of_fold_ridge, ridge_map
from irfa_nwb.model.network import IRFANetwork

FAST = dict(image_size=16, channels=4, width=8, batch_size=8, perceptual_weight=0,
            adversarial_weight=0, random_state=0)


def test_out_of_fold_predictions_never_see_their_own_stimulus():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 7))
    Y = X @ rng.normal(size=(7, 5)) + 0.1 * rng.normal(size=(60, 5))
    groups = np.repeat(np.arange(20), 3)  # three repeats per stimulus
    oof, full = out_of_fold_ridge(X, Y, groups=groups)
    # change the targets of stimulus 4 only: with the penalty fixed (it is chosen on all
    # rows), its own out-of-fold predictions stay the same
    Y2 = Y.copy()
    Y2[groups == 4] += 100.0
    oof_a, _ = out_of_fold_ridge(X, Y, groups=groups, alpha=full[4])
    oof2, _ = out_of_fold_ridge(X, Y2, groups=groups, alpha=full[4])
    np.testing.assert_array_equal(oof_a, oof)
    np.testing.assert_allclose(oof2[groups == 4], oof[groups == 4], atol=1e-9)
    # and they are out-of-sample: worse than the in-sample fit
    fitted = apply_ridge_map(X, *full[:4])
    assert np.mean((oof - Y) ** 2) > np.mean((fitted - Y) ** 2)
    assert not np.allclose(oof2[groups != 4], oof[groups != 4])  # the others did see it
    # the full map is the plain ridge fit on all rows
    ref = ridge_map(X, Y)
    for a, b in zip(full, ref, strict=True):
        np.testing.assert_allclose(a, b)
    with pytest.raises(InputError, match="two distinct stimuli"):
        out_of_fold_ridge(X, Y, groups=np.zeros(60))


def test_untrained_residual_network_gives_exactly_its_ridge_image():
    torch.manual_seed(0)
    net = IRFANetwork([3, 2], channels=4, image_size=16, width=8, linear_prior=True).eval()
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(3 * 16 * 16, 5)) * 0.05
    intercept = rng.uniform(0.2, 0.8, size=3 * 16 * 16)
    net.set_prior(np.zeros(5), np.ones(5), coef, intercept)
    x = torch.as_tensor(rng.normal(size=(6, 5)), dtype=torch.float32)
    inputs = [x[:, :3], x[:, 3:]]
    prior = net.prior_image(inputs)
    expected = (x.double().numpy() @ coef.T + intercept).reshape(6, 3, 16, 16)
    np.testing.assert_allclose(prior.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    out = net(inputs)
    eps = IRFANetwork.PRIOR_EPS
    torch.testing.assert_close(out, prior.clamp(eps, 1 - eps), rtol=1e-5, atol=1e-6)
    # an explicit prior replaces the stored map's image
    other = torch.full_like(prior, 0.25)
    torch.testing.assert_close(net(inputs, prior=other), other)


def test_ridge_residual_holds_the_ridge_fit_in_head_order_and_survives_save(tiny_data,
                                                                            tmp_path):
    X, images, groups, _ = tiny_data
    # interleaved heads: the map's columns must follow the heads' concatenated unit order
    groups = np.array([f"array{i % 3}" for i in range(X.shape[1])])
    model = IRFA(max_iter=2, unit_groups=groups, ridge_residual=True, **FAST).fit(X, images)
    ridge = RidgeReconstruction(alpha=model.ridge_alpha_, image_size=16).fit(X, images)
    order = np.concatenate(model.head_units_)
    inputs = [torch.as_tensor(X[:, cols]) for cols in model.head_units_]
    with torch.no_grad():
        mapped = model.network_.prior_image(inputs).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(np.clip(mapped, 0, 1), ridge.predict(X), atol=2e-4)
    assert not np.array_equal(order, np.arange(X.shape[1]))
    # training moved the output away from the ridge image, and save / load keeps everything
    assert np.abs(model.predict(X) - ridge.predict(X)).max() > 1e-3
    path = model.save(tmp_path / "m.safetensors")
    loaded = load_model(path)
    assert loaded.ridge_alpha_ == model.ridge_alpha_ and loaded.ridge_residual
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # the published recipe has no map
    plain = IRFA(max_iter=1, unit_groups=groups, **FAST).fit(X, images)
    assert plain.ridge_alpha_ is None and not hasattr(plain.network_, "prior_coef")


def test_ridge_residual_with_early_stopping_priors_validation_rows_with_the_full_map(tiny_data):
    X, images, groups, _ = tiny_data
    model = IRFA(max_iter=2, unit_groups=groups, ridge_residual=True, early_stopping=True,
                 **FAST).fit(X, images)
    assert np.isfinite(model.history_[-1]["val_loss"]) and model.ridge_alpha_ > 0


def test_response_noise_is_reproducible_and_changes_training(tiny_data):
    X, images, groups, _ = tiny_data

    def weights(**kw):
        m = IRFA(max_iter=2, unit_groups=groups, **FAST, **kw).fit(X, images)
        return m.network_.state_dict()

    a, b, clean = weights(response_noise=0.5), weights(response_noise=0.5), weights()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert any(not torch.equal(a[k], clean[k]) for k in a if a[k].is_floating_point())


def test_response_noise_resumes_to_the_uninterrupted_weights(tiny_data, tmp_path):
    X, images, groups, _ = tiny_data
    ckpt = tmp_path / "ckpt.safetensors"
    params = dict(max_iter=3, unit_groups=groups, response_noise=0.5, ridge_residual=True,
                  **FAST)
    stopped = IRFA(checkpoint_path=ckpt, callbacks=[lambda est, record: record["epoch"] == 1],
                   **params).fit(X, images)
    assert stopped.n_iter_ == 1
    resumed = IRFA(**params).fit(X, images, resume_from=ckpt)
    full = IRFA(**params).fit(X, images)
    assert resumed.n_iter_ == 3
    for key, value in full.network_.state_dict().items():
        torch.testing.assert_close(resumed.network_.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("params, message", [
    (dict(response_noise=-0.1), "response_noise"),
    (dict(response_noise="lots"), "response_noise"),
    (dict(response_noise=float("nan")), "response_noise"),
    (dict(ridge_residual="yes"), "ridge_residual"),
])
def test_bad_small_data_options_are_refused_before_training(tiny_data, params, message):
    X, images, groups, _ = tiny_data
    with pytest.raises(InputError, match=message):
        IRFA(max_iter=1, unit_groups=groups, **FAST, **params).fit(X, images)
