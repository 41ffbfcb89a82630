"""evaluate(alexnet=True), the report workflow and what its summary says."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pynwb")

from test_results_io import FakeIRFA, make_dataset, make_source_nwb  # noqa: E402

from irfa_nwb import evaluate  # noqa: E402
from irfa_nwb.results import read_results, write_results  # noqa: E402
from irfa_nwb.workflows.report import write_report  # noqa: E402


@pytest.fixture
def setup(tmp_path):
    rng = np.random.default_rng(3)
    pixels = (rng.random((6, 12, 12, 3)) * 255).astype(np.uint8)
    src = tmp_path / "source.nwb"
    make_source_nwb(src, pixels)
    return src, make_dataset(src, pixels), FakeIRFA()


def _random_alexnet(tmp_path, monkeypatch):
    import os

    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    url = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url
    target = tmp_path / "torch" / "hub" / "checkpoints" / os.path.basename(url)
    target.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), target)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_alexnet_correlations_report_and_summary(setup, tmp_path, monkeypatch):
    from irfa_nwb.analysis import alexnet as metrics

    _, ds, est = setup
    _random_alexnet(tmp_path, monkeypatch)
    res = evaluate(est, ds, alexnet=True, alexnet_per_area=True)
    assert res["alexnet_area"].values.tolist() == ["V1", "IT"]
    assert res["layer"].values.tolist() == list(metrics.ALEXNET_LAYERS)
    expected = metrics.alexnet_layer_correlations(res["stimulus_image"].values,
                                                  res["reconstruction"].values)
    np.testing.assert_allclose(res["alexnet_r"].values, expected["overall"].values, rtol=1e-5)
    np.testing.assert_allclose(res["alexnet_distance"].values,
                               expected["mean_squared_difference"].values, rtol=1e-5)
    # the V1-only reconstructions differ from the full ones
    assert not np.allclose(res["alexnet_r_by_area"].sel(alexnet_area="V1").values,
                           res["alexnet_r"].values)
    out = write_results(tmp_path / "results.nwb", res)
    back = read_results(out)
    np.testing.assert_array_equal(back["alexnet_r_by_area"].values,
                                  res["alexnet_r_by_area"].values)

    with pytest.warns(UserWarning, match="used to train the model"):
        files = write_report(out, tmp_path / "report", dpi=40)
    names = sorted(p.name for p in files)
    assert names == sorted(["reconstructions.png", "spatial_irfs.png", "feature_irfs.png",
                            "clusters.png", "layer_correlations.png", "layer_shares.png",
                            "training_curves.png", "summary.txt"])
    for path in files:
        assert path.is_file() and path.stat().st_size > 100
    summary = (tmp_path / "report" / "summary.txt").read_text()
    # two of the six stimuli were training stimuli of the (fake) model: said so, loudly
    assert "stimuli scored: 6 (4 held out, 2 used in training" in summary
    assert "WARNING: 2 of the 6 scored stimuli were used to train" in summary
    assert f"AlexNet r: conv1={res['alexnet_r'].values[0]:.3f}" in summary
    assert f"mean pixel_r: {np.nanmean(res['pixel_r'].values):.4f}" in summary


def test_report_without_alexnet_weights(setup, tmp_path, monkeypatch):
    from irfa_nwb.errors import MissingWeightsError

    _, ds, est = setup
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    held_out = ds.isel(stimulus_id=[2, 4, 5])  # ids 12, 14, 15: not trained on
    res = evaluate(est, held_out)
    assert set(res["stimulus_role"].values) == {"held_out"}
    with pytest.warns(UserWarning, match="AlexNet"):
        files = write_report(res, tmp_path / "report", dpi=40)
    assert "layer_correlations.png" not in {p.name for p in files}
    assert "reconstructions.png" in {p.name for p in files}
    summary = (tmp_path / "report" / "summary.txt").read_text()
    assert "3 held out, 0 used in training" in summary and "WARNING" not in summary
    with pytest.raises(MissingWeightsError):
        write_report(res, tmp_path / "report2", layer_correlations=True)
    with pytest.raises(MissingWeightsError):
        evaluate(est, held_out, alexnet=True)
