"""The paper's AlexNet measurement against an independent, literal notebook implementation."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from irfa_nwb.analysis import alexnet  # noqa: E402
from irfa_nwb.errors import InputError, MissingWeightsError  # noqa: E402

# ----------------------------------------------------------------------------- the reference
# Written straight from the notebook's procedure (analysis/quantification.ipynb of the IRFA
# reference code), deliberately without sharing any code with irfa_nwb: per-set float32 /
# uint8 conversion, PIL + torchvision transforms per image, features[:k] / classifier[:k]
# slices run separately for each layer, scipy's pearsonr on the flattened set.


def _notebook_preprocess(images):
    from PIL import Image
    from torchvision.transforms import Compose, Normalize, Resize, ToTensor

    if images.dtype != np.float32:
        images = images.astype(np.float32)
    else:
        images = images.copy()
    if images.max() > 1.0:
        images /= 255.0
    images = (images * 255).astype(np.uint8)
    transform = Compose([
        Resize((224, 224)),
        ToTensor(),
        Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    return torch.stack([transform(Image.fromarray(img)) for img in images])


def _notebook_scores(model, stimuli, reconstructions):
    from scipy.stats import pearsonr

    conv = [model.features[:3], model.features[:6], model.features[:7], model.features[:9],
            model.features[:13]]
    fc = [model.classifier[:3], model.classifier[:5], model.classifier]
    s = _notebook_preprocess(stimuli)
    r = _notebook_preprocess(reconstructions)
    corr, dist = [], []
    with torch.no_grad():
        for layer in conv:
            fs, fr = layer(s), layer(r)
            corr.append(pearsonr(fs.flatten().numpy(), fr.flatten().numpy())[0])
            dist.append(((fs - fr) ** 2).mean().item())
        for layer in fc:
            fs = layer(torch.flatten(model.avgpool(model.features[:13](s)), 1))
            fr = layer(torch.flatten(model.avgpool(model.features[:13](r)), 1))
            corr.append(pearsonr(fs.flatten().numpy(), fr.flatten().numpy())[0])
            dist.append(((fs - fr) ** 2).mean().item())
    return np.array(corr), np.array(dist)


def _images(seed):
    """Smooth random colour images (a random net's features of white noise are all alike)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32] / 32
    imgs = []
    for _ in range(3):
        f = rng.uniform(1, 4, size=(3, 2))
        ph = rng.uniform(0, 2 * np.pi, size=3)
        img = np.stack([0.5 + 0.45 * np.sin(2 * np.pi * (f[c, 0] * xx + f[c, 1] * yy) + ph[c])
                        for c in range(3)], axis=-1)
        imgs.append(img + 0.05 * rng.random(img.shape))
    return np.clip(np.stack(imgs), 0, 1)


@pytest.fixture
def model(metric_weights):
    metric_weights("alexnet")
    return torchvision.models.alexnet(weights="IMAGENET1K_V1").eval()


CASES = {
    # stimuli, reconstructions
    "float01 vs float01": (lambda: _images(0).astype(np.float32),
                           lambda: _images(1).astype(np.float32)),
    "uint8 vs float01 (float64)": (lambda: (_images(0) * 255).astype(np.uint8),
                                   lambda: _images(1)),
    "float 0-255 vs float01": (lambda: _images(0).astype(np.float32) * 255,
                               lambda: 0.7 * _images(0) + 0.3 * _images(1)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_literal_notebook_implementation(model, case):
    stim, recon = (make() for make in CASES[case])
    assert (recon.max() <= 1.0) and (stim.max() > 1.0 or stim.dtype.kind == "f")
    ref_r, ref_d = _notebook_scores(model, stim, recon)
    ds = alexnet.alexnet_layer_correlations(stim, recon, model=model, batch_size=2)
    assert list(ds.layer.values) == list(alexnet.ALEXNET_LAYERS)
    # max |dr| observed: ~1e-7 (float32 features, different summation order)
    np.testing.assert_allclose(ds["overall"].values, ref_r, rtol=0, atol=1e-5)
    np.testing.assert_allclose(ds["mean_squared_difference"].values, ref_d, rtol=1e-4)
    assert np.all(np.abs(ref_r) < 0.9999)  # the images differ, so the check has teeth


def test_uint8_truncation_and_scaling_rule():
    x = np.array([0.0, 0.5, 0.999, 1.0], dtype=np.float64)
    np.testing.assert_array_equal(alexnet.notebook_uint8(x), [0, 127, 254, 255])
    # max > 1: divided by 255 first; float32 round trip of integers truncates as numpy does
    v = np.arange(256, dtype=np.float32)
    expected = ((v / np.float32(255)) * np.float32(255)).astype(np.uint8)
    np.testing.assert_array_equal(alexnet.notebook_uint8(v), expected)
    assert alexnet.notebook_uint8(np.array([-0.2, 1.0]))[0] == 0  # clipped, not wrapped


def test_one_pass_copies_pre_relu_outputs(model):
    """conv3, conv4 and fc7 are pre-ReLU: the in-place ReLU must not have zeroed them."""
    x = alexnet.preprocess_images(_images(2))
    out = alexnet._forward_layers(model, x, alexnet.ALEXNET_LAYERS)
    with torch.no_grad():
        for name in ("conv3", "conv4", "fc7"):
            part, stop = alexnet.PAPER_SLICES[name]
            if part == "features":
                ref = model.features[:stop](x).flatten(1)
            else:
                ref = model.classifier[:stop](torch.flatten(model.avgpool(model.features(x)), 1))
            assert (out[name] < 0).any()
            torch.testing.assert_close(out[name], ref, rtol=1e-5, atol=1e-5)


def test_features_shapes_grey_images_and_batching(model):
    grey = _images(3)[..., 0]
    feats = alexnet.alexnet_features(grey, layers=("conv1", "conv5", "fc8"), model=model,
                                     batch_size=2)
    assert feats["conv1"].shape == (3, 64 * 27 * 27)
    assert feats["conv5"].shape == (3, 256 * 6 * 6)
    assert feats["fc8"].shape == (3, 1000)
    rgb = alexnet.alexnet_features(np.repeat(grey[..., None], 3, axis=-1), layers=("conv1",),
                                   model=model, batch_size=3)
    np.testing.assert_allclose(feats["conv1"], rgb["conv1"], atol=1e-5)


def test_autograd_left_on(model):
    """Interleaved feature generators must not leave torch's grad mode switched off."""
    imgs = _images(0)
    alexnet.alexnet_layer_correlations(imgs, imgs, model=model, batch_size=1)
    assert torch.is_grad_enabled()


def test_identical_sets_precomputed_features_and_per_image(model):
    stim = _images(4)
    same = alexnet.alexnet_layer_correlations(stim, stim, model=model)
    np.testing.assert_allclose(same["overall"].values, 1.0, atol=1e-6)
    np.testing.assert_allclose(same["mean_squared_difference"].values, 0.0, atol=1e-9)
    np.testing.assert_allclose(same["per_image"].values, 1.0, atol=1e-6)
    recon = _images(5)[:, :16, :16]  # other size: both are resized to 224
    feats = alexnet.alexnet_features(stim, model=model)
    direct = alexnet.alexnet_layer_correlations(stim, recon, model=model, batch_size=3)
    cached = alexnet.alexnet_layer_correlations(stim, recon, model=model,
                                                stimulus_features=feats)
    np.testing.assert_allclose(direct["overall"].values, cached["overall"].values, atol=1e-6)
    fr = alexnet.alexnet_features(recon, layers=("fc6",), model=model)["fc6"]
    expected = np.corrcoef(feats["fc6"][2], fr[2])[0, 1]
    assert direct["per_image"].sel(layer="fc6").values[2] == pytest.approx(expected, abs=1e-5)


def test_float_variant_is_close_but_not_the_default(model):
    stim, recon = _images(0), _images(1)
    nb = alexnet.alexnet_layer_correlations(stim, recon, model=model)
    fl = alexnet.alexnet_layer_correlations(stim, recon, model=model, preprocess="float")
    assert nb.attrs["preprocess"] == "notebook" and fl.attrs["preprocess"] == "float"
    assert not np.allclose(nb["overall"].values, fl["overall"].values, atol=1e-7)
    np.testing.assert_allclose(nb["overall"].values, fl["overall"].values, atol=0.1)
    with pytest.raises(InputError, match="preprocess"):
        alexnet.alexnet_layer_correlations(stim, recon, model=model, preprocess="bicubic")


def test_pair_moments_match_numpy_over_batches():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, size=1000)
    y = 0.3 * x + rng.normal(size=1000) + 100.0
    acc = alexnet._PairMoments()
    for start in range(0, 1000, 137):
        acc.update(x[start:start + 137], y[start:start + 137])
    assert acc.r == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    assert acc.mse == pytest.approx(np.mean((x - y) ** 2), rel=1e-12)


def test_input_checks(model):
    imgs = _images(0)
    with pytest.raises(InputError, match="pair up"):
        alexnet.alexnet_layer_correlations(imgs, imgs[:2], model=model)
    with pytest.raises(InputError, match="unknown AlexNet layers"):
        alexnet.alexnet_layer_correlations(imgs, imgs, layers=("pool9",), model=model)
    with pytest.raises(InputError, match="NaN"):
        alexnet.alexnet_layer_correlations(imgs * np.nan, imgs, model=model)


def test_missing_weights_error(empty_torch_home):
    imgs = _images(0)
    with pytest.raises(MissingWeightsError, match="alexnet"):
        alexnet.alexnet_layer_correlations(imgs, imgs)


def test_layer_shares():
    np.testing.assert_allclose(alexnet.layer_shares([1.0, 3.0]), [25.0, 75.0])
    with pytest.raises(InputError):
        alexnet.layer_shares([0.5, -0.5])


def test_old_import_path_still_works():
    from irfa_nwb.analysis import metrics

    assert metrics.alexnet_layer_correlations is alexnet.alexnet_layer_correlations
    assert metrics.ALEXNET_LAYERS == alexnet.ALEXNET_LAYERS
