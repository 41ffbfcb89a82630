"""The NSD eight-metric table: scoring pieces by hand, each network against a reference."""

from __future__ import annotations

import sys
import urllib.error

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from irfa_nwb.analysis import nsd_metrics as sm  # noqa: E402
from irfa_nwb.errors import InputError, MissingWeightsError  # noqa: E402


def _pair(n, seed=0, size=32, noise=0.3):
    """Smooth colour images and noisy 'reconstructions' of them, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    imgs = []
    for _ in range(n):
        f = rng.uniform(1, 4, size=(3, 2))
        ph = rng.uniform(0, 2 * np.pi, size=3)
        imgs.append(np.stack([0.5 + 0.45 * np.sin(2 * np.pi * (f[c, 0] * xx + f[c, 1] * yy)
                                                  + ph[c]) for c in range(3)], axis=-1))
    stim = np.stack(imgs).astype(np.float32)
    recon = np.clip(stim + noise * rng.normal(size=stim.shape), 0, 1).astype(np.float32)
    return stim, recon


def _nchw(images):
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


# ----------------------------------------------------------------------------- the reference
# Written from the published procedure (MindEye's Reconstruction_Metrics): torchvision
# transforms per image, create_feature_extractor nodes, numpy corrcoef, scipy's correlation.


def _reference_features(model, node, images, size, mean, std):
    from torchvision import transforms
    from torchvision.models.feature_extraction import create_feature_extractor

    pre = transforms.Compose([
        transforms.Resize(size, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.Normalize(mean=mean, std=std),
    ])
    extractor = create_feature_extractor(model, return_nodes=[node]).eval()
    with torch.no_grad():
        out = extractor(torch.stack([pre(img) for img in _nchw(images)]))[node]
    return out.double().flatten(1).numpy()


def _reference_2way(reals, preds):
    n = len(reals)
    r = np.corrcoef(reals, preds)[:n, n:]
    congruents = np.diag(r)
    success = r < congruents
    return np.mean(np.sum(success, 0)) / (n - 1)


def _reference_distance(reals, preds):
    from scipy.spatial.distance import correlation

    return np.mean([correlation(reals[i], preds[i]) for i in range(len(reals))])


IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


# ----------------------------------------------------------------------------- scoring pieces


def test_two_way_identification_by_hand():
    stim = np.array([[1, 2, 3], [3, 2, 1], [1, 3, 2]], dtype=float)
    recon = np.array([[1, 2, 3], [1, 2, 3], [2, 3, 1]], dtype=float)
    # r[i, j] (stimulus i, reconstruction j):
    #   recon 0: own 1.0; vs stim 1: -1.0, stim 2: 0.5 -> 2 wins
    #   recon 1: own -1.0; vs stim 0: 1.0, stim 2: 0.5 -> 0 wins
    #   recon 2: own 0.5; vs stim 0: -0.5 (win), stim 1: 0.5 (tie = failure) -> 1 win
    wins, total = sm.two_way_identification(stim, recon, return_counts=True)
    assert wins.tolist() == [2, 0, 1] and total == 2
    assert sm.two_way_identification(stim, recon) == pytest.approx(0.5)
    assert sm.two_way_identification(stim, recon) == pytest.approx(_reference_2way(stim, recon))
    with pytest.raises(InputError, match="at least two"):
        sm.two_way_identification(stim[:1], recon[:1])


def test_correlation_distance_by_hand_and_against_scipy():
    a = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    b = np.array([[2.0, 4.0, 6.0], [3.0, 2.0, 1.0]])
    np.testing.assert_allclose(sm.correlation_distance(a, b), [0.0, 2.0], atol=1e-12)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 2, 5)), rng.normal(size=(4, 2, 5))
    assert np.mean(sm.correlation_distance(x, y)) == pytest.approx(
        _reference_distance(x.reshape(4, -1), y.reshape(4, -1)), abs=1e-12)


def test_pixcorr_known_pair_and_reference():
    stim, _ = _pair(2, seed=1)
    recon = np.stack([0.5 * stim[0] + 0.2, 1.0 - stim[1]])  # r = +1 and r = -1
    table = sm.standard_metrics(stim, recon, metrics=["PixCorr"])
    assert table.loc["PixCorr", "value"] == pytest.approx(0.0, abs=1e-6)

    from torchvision import transforms

    stim, recon = _pair(3, seed=2)
    resize = transforms.Resize(425, interpolation=transforms.InterpolationMode.BILINEAR)
    fa = resize(_nchw(stim)).reshape(3, -1)
    fb = resize(_nchw(recon)).reshape(3, -1)
    expected = np.mean([np.corrcoef(fa[i], fb[i])[0][1] for i in range(3)])
    table = sm.standard_metrics(stim, recon, metrics=["PixCorr"])
    assert table.loc["PixCorr", "value"] == pytest.approx(expected, abs=1e-6)
    assert table.loc["PixCorr", "better"] == "higher"
    assert table.loc["PixCorr", "status"] == "computed"


def test_ssim_published_is_column_wise_and_2d_is_the_usual():
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity
    from torchvision import transforms

    stim, recon = _pair(2, seed=3, size=24)
    resize = transforms.Resize(425, interpolation=transforms.InterpolationMode.BILINEAR)
    ga = rgb2gray(resize(_nchw(stim)).permute(0, 2, 3, 1).numpy())
    gb = rgb2gray(resize(_nchw(recon)).permute(0, 2, 3, 1).numpy())
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    columns = np.mean([np.mean([structural_similarity(gb[i][:, j], ga[i][:, j], **kw)
                                for j in range(ga.shape[2])]) for i in range(2)])
    usual = np.mean([structural_similarity(gb[i], ga[i], **kw) for i in range(2)])
    published = sm.standard_metrics(stim, recon, metrics=["SSIM"]).loc["SSIM", "value"]
    two_d = sm.standard_metrics(stim, recon, metrics=["SSIM"], ssim_mode="2d").loc["SSIM",
                                                                                   "value"]
    assert published == pytest.approx(columns, abs=1e-5)
    assert two_d == pytest.approx(usual, abs=1e-5)
    assert abs(published - two_d) > 1e-3


# ----------------------------------------------------------------------------- networks


def test_alexnet_2_and_5_against_reference(metric_weights):
    metric_weights("alexnet")
    stim, recon = _pair(3, seed=4, noise=0.6)
    table = sm.standard_metrics(stim, recon, metrics=["AlexNet(2)", "AlexNet(5)"], batch_size=2)
    model = torchvision.models.alexnet(weights="IMAGENET1K_V1").eval()
    for metric, node in (("AlexNet(2)", "features.4"), ("AlexNet(5)", "features.11")):
        reals = _reference_features(model, node, stim, 256, *IMAGENET)
        preds = _reference_features(model, node, recon, 256, *IMAGENET)
        assert table.loc[metric, "status"] == "computed"
        assert table.loc[metric, "value"] == pytest.approx(_reference_2way(reals, preds))
    # the features themselves agree with the reference extractor
    net = sm._NETWORKS[0]
    feats = sm._network_features(net, ["AlexNet(5)"], sm._float_images(stim, "s", clamp=False),
                                 sm._float_images(recon, "r", clamp=True), encoders={},
                                 allow_download=False, device="cpu", batch_size=3,
                                 antialias=True)
    np.testing.assert_allclose(feats["AlexNet(5)"][0],
                               _reference_features(model, "features.11", stim, 256, *IMAGENET),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:NOTE. The nodes obtained by tracing:UserWarning")
def test_inception_against_reference(metric_weights):
    """One image each way: Inception-v3 at 342 px is the slowest network on a CPU."""
    metric_weights("inception_v3")
    stim, recon = _pair(1, seed=5, noise=0.6)
    model = torchvision.models.inception_v3(weights="IMAGENET1K_V1").eval()
    assert model.transform_input  # torchvision sets it with the weights; so must we
    net = next(n for n in sm._NETWORKS if n.name == "inception_v3")
    ours = sm._network_features(net, ["Inception"], sm._float_images(stim, "s", clamp=False),
                                sm._float_images(recon, "r", clamp=True), encoders={},
                                allow_download=False, device="cpu", batch_size=2,
                                antialias=True)["Inception"]
    reals = _reference_features(model, "avgpool", stim, 342, *IMAGENET)
    assert reals.shape == ours[0].shape == ours[1].shape == (1, 2048)
    np.testing.assert_allclose(ours[0], reals, rtol=1e-4, atol=1e-6 * np.abs(reals).max())
    assert not np.allclose(ours[0], ours[1])


def test_effnet_against_reference(metric_weights):
    metric_weights("efficientnet_b1")
    stim, recon = _pair(1, seed=6, noise=0.6)
    table = sm.standard_metrics(stim, recon, metrics=["EffNet-B"])
    model = torchvision.models.efficientnet_b1(weights="IMAGENET1K_V2").eval()
    reals = _reference_features(model, "avgpool", stim, 255, *IMAGENET)
    preds = _reference_features(model, "avgpool", recon, 255, *IMAGENET)
    assert reals.shape == (1, 1280)
    assert table.loc["EffNet-B", "better"] == "lower"
    expected = _reference_distance(reals, preds)
    assert expected > 1e-4  # the pair differs
    assert table.loc["EffNet-B", "value"] == pytest.approx(expected, rel=1e-3)


def test_swav_against_hub_recipe(metric_weights):
    (path,) = metric_weights("swav_resnet50")
    stim, recon = _pair(1, seed=7, noise=0.6)
    table = sm.standard_metrics(stim, recon, metrics=["SwAV"])
    # what torch.hub.load("facebookresearch/swav:main", "resnet50") does with the checkpoint
    model = torchvision.models.resnet50(weights=None)
    state = torch.load(path, map_location="cpu")
    model.load_state_dict({k.replace("module.", ""): v for k, v in state.items()}, strict=False)
    model.eval()
    reals = _reference_features(model, "avgpool", stim, 224, *IMAGENET)
    preds = _reference_features(model, "avgpool", recon, 224, *IMAGENET)
    assert table.loc["SwAV", "status"] == "computed"
    expected = _reference_distance(reals, preds)
    assert expected > 1e-6
    assert table.loc["SwAV", "value"] == pytest.approx(expected, rel=1e-3)


def test_clip_stand_in_encoder():
    """The CLIP path (resize 224, CLIP normalisation, embeddings, 2-way) with a tiny encoder."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 5, stride=4), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(3), torch.nn.Flatten())
    seen = []

    def encode(x):
        seen.append(tuple(x.shape))
        return net(x)

    stim, recon = _pair(3, seed=8, noise=0.6)
    table = sm.standard_metrics(stim, recon, metrics=["CLIP"], encoders={"CLIP": encode},
                                batch_size=2)
    assert seen and all(s[1:] == (3, 224, 224) for s in seen)
    mean, std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
    from torchvision import transforms

    pre = transforms.Compose([
        transforms.Resize(224, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.Normalize(mean=mean, std=std),
    ])
    with torch.no_grad():
        reals = net(torch.stack([pre(i) for i in _nchw(stim)])).numpy()
        preds = net(torch.stack([pre(i) for i in _nchw(recon)])).numpy()
    assert table.loc["CLIP", "status"] == "computed"
    assert table.loc["CLIP", "value"] == pytest.approx(_reference_2way(reals, preds))


# ----------------------------------------------------------------------------- missing, skipped


def test_missing_weights_are_reported_not_dropped(empty_torch_home, monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)  # as if not installed
    stim, recon = _pair(2, seed=9)
    table = sm.standard_metrics(stim, recon)
    assert list(table.index) == list(sm.STANDARD_METRICS)
    assert table.loc[["PixCorr", "SSIM"], "status"].tolist() == ["computed"] * 2
    network = ["AlexNet(2)", "AlexNet(5)", "Inception", "CLIP", "EffNet-B", "SwAV"]
    assert (table.loc[network, "status"] == "missing").all()
    assert table.loc[network, "value"].isna().all()
    assert "alexnet-owt-7be5be79.pth" in table.loc["AlexNet(5)", "reason"]
    assert "inception_v3_google" in table.loc["Inception", "reason"]
    assert "efficientnet_b1" in table.loc["EffNet-B", "reason"]
    assert "swav_800ep_pretrain.pth.tar" in table.loc["SwAV", "reason"]
    assert str(empty_torch_home) in table.loc["SwAV", "reason"]
    assert "open_clip" in table.loc["CLIP", "reason"]
    assert "pip install" in table.loc["CLIP", "reason"]
    assert table.loc["EffNet-B", "better"] == "lower" and table.loc["CLIP", "better"] == "higher"


def test_skipped_and_input_checks():
    stim, recon = _pair(1, seed=10)
    table = sm.standard_metrics(stim, recon, metrics=["PixCorr", "Inception", "CLIP"])
    assert table.loc["PixCorr", "status"] == "computed"
    assert table.loc[["Inception", "CLIP"], "status"].tolist() == ["skipped", "skipped"]
    assert "two images" in table.loc["Inception", "reason"]
    wide_s, wide_r = np.zeros((2, 16, 32, 3)), np.zeros((2, 16, 32, 3))
    table = sm.standard_metrics(wide_s, wide_r, metrics=["CLIP"])
    assert table.loc["CLIP", "status"] == "skipped" and "square" in table.loc["CLIP", "reason"]
    with pytest.raises(InputError, match="unknown metrics"):
        sm.standard_metrics(stim, recon, metrics=["FID"])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        sm.standard_metrics(stim * 255, recon, metrics=["PixCorr"])
    with pytest.raises(InputError, match="pair up"):
        sm.standard_metrics(np.concatenate([stim, stim]), recon, metrics=["PixCorr"])
    with pytest.raises(InputError, match="ssim_mode"):
        sm.standard_metrics(stim, recon, metrics=["SSIM"], ssim_mode="3d")
    # uint8 stimuli are scaled; reconstructions out of range are clamped like the reference
    s2, r2 = _pair(2, seed=11)
    a = sm.standard_metrics((s2 * 255).round().astype(np.uint8), r2, metrics=["PixCorr"])
    b = sm.standard_metrics(s2, r2 * 1.0, metrics=["PixCorr"])
    assert a.loc["PixCorr", "value"] == pytest.approx(b.loc["PixCorr", "value"], abs=1e-2)
    c = sm.standard_metrics(s2, r2 * 3 - 1, metrics=["PixCorr"])
    d = sm.standard_metrics(s2, np.clip(r2 * 3 - 1, 0, 1), metrics=["PixCorr"])
    assert c.loc["PixCorr", "value"] == pytest.approx(d.loc["PixCorr", "value"])


# ----------------------------------------------------------------------------- downloads


def test_failed_download_names_the_file(empty_torch_home, monkeypatch):
    from irfa_nwb.model import pretrained

    def no_internet(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_internet)
    for name, load in (("alexnet", lambda: pretrained.load_torchvision_model(
                            "alexnet", allow_download=True)),
                       ("swav_resnet50", lambda: pretrained.load_swav_resnet50(
                            allow_download=True))):
        with pytest.raises(MissingWeightsError) as info:
            load()
        message = str(info.value)
        assert str(pretrained.weights_path(name)) in message
        assert "Could not download" in message and "URLError" in message
        assert not pretrained.weights_path(name).exists()


def test_offline_environment_variable(monkeypatch):
    from irfa_nwb.model.pretrained import OFFLINE_ENV, downloads_allowed

    monkeypatch.setenv(OFFLINE_ENV, "1")  # what conftest sets for every test
    assert not downloads_allowed(None) and downloads_allowed(True) and not downloads_allowed(False)
    for value, allowed in (("true", False), ("YES", False), ("on", False), ("0", True),
                           ("", True), ("no", True)):
        monkeypatch.setenv(OFFLINE_ENV, value)
        assert downloads_allowed(None) is allowed
    monkeypatch.delenv(OFFLINE_ENV)
    assert downloads_allowed(None)


def test_offline_default_never_calls_the_network(empty_torch_home, monkeypatch):
    from irfa_nwb.model import pretrained

    def forbidden(*args, **kwargs):  # pragma: no cover - failing is the point
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", forbidden)
    for load in (lambda: pretrained.load_torchvision_model("efficientnet_b1"),
                 pretrained.load_swav_resnet50):
        with pytest.raises(MissingWeightsError, match="IRFA_NWB_OFFLINE"):
            load()


def test_swav_checkpoint_without_backbone_is_rejected(empty_torch_home):
    from irfa_nwb.model import pretrained

    path = pretrained.weights_path("swav_resnet50")
    path.parent.mkdir(parents=True)
    torch.save({"module.projection_head.0.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(MissingWeightsError, match="not a SwAV ResNet-50 checkpoint"):
        pretrained.load_swav_resnet50()
