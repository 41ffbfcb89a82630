"""Tests of write_results(layer_correlations=True) and analysis.figures.write_report."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("pynwb")

from test_results_io import FakeIRFA, _expected_X, make_dataset, make_source_nwb  # noqa: E402

from irfa_nwb.results import read_results, write_results  # noqa: E402


@pytest.fixture
def setup(tmp_path):
    src = tmp_path / "source.nwb"
    nwb = make_source_nwb(src)
    return src, make_dataset(src, nwb), FakeIRFA(n_units=6)


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


def test_layer_correlations_and_report(setup, tmp_path, monkeypatch):
    from irfa_nwb.analysis import alexnet as metrics
    from irfa_nwb.analysis.figures import write_report

    src, ds, est = setup
    _random_alexnet(tmp_path, monkeypatch)
    resp = ds["responses"]
    X = xr.DataArray(
        _expected_X(ds), dims=("stimulus", "unit"),
        coords={"stimulus_id": ("stimulus", ds["images"]["stimulus"].values),
                **{k: ("unit", resp[k].values) for k in ("unit_id", "electrode_group", "area")}},
    )
    out = write_results(tmp_path / "results.nwb", est, ds, X=X, layer_correlations=True)
    res = read_results(out)
    assert res["layer_area"].values.tolist() == ["all", "V1", "IT"]
    assert res["layer"].values.tolist() == list(metrics.ALEXNET_LAYERS)
    expected = metrics.alexnet_layer_correlations(
        res["stimulus_image"].values, res["reconstruction"].values
    )
    np.testing.assert_allclose(res["layer_correlation"].sel(layer_area="all").values,
                               expected["overall"].values, rtol=1e-5)
    np.testing.assert_allclose(res["alexnet_fc8"].values,
                               expected["per_image"].sel(layer="fc8").values, rtol=1e-5)
    # the V1-only reconstructions differ from the full ones
    assert not np.allclose(res["layer_correlation"].sel(layer_area="V1").values,
                           res["layer_correlation"].sel(layer_area="all").values)

    files = write_report(out, tmp_path / "report", dpi=40)
    names = sorted(p.name for p in files)
    assert names == sorted(["reconstructions.png", "spatial_irfs.png", "feature_irfs.png",
                            "clusters.png", "layer_correlations.png", "layer_shares.png",
                            "training_curves.png", "summary.txt"])
    for path in files:
        assert path.is_file() and path.stat().st_size > 100
    summary = (tmp_path / "report" / "summary.txt").read_text()
    assert "stimuli: 6" in summary and "AlexNet r: conv1=" in summary


def test_report_without_alexnet_weights(setup, tmp_path, monkeypatch):
    from irfa_nwb.analysis.figures import write_report
    from irfa_nwb.errors import MissingWeightsError

    _, ds, est = setup
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    out = write_results(tmp_path / "results.nwb", est, ds)
    with pytest.warns(UserWarning, match="AlexNet"):
        files = write_report(out, tmp_path / "report", dpi=40)
    assert "layer_correlations.png" not in {p.name for p in files}
    assert "reconstructions.png" in {p.name for p in files}
    with pytest.raises(MissingWeightsError):
        write_report(out, tmp_path / "report2", layer_correlations=True)
    with pytest.raises(MissingWeightsError):
        write_results(tmp_path / "r2.nwb", est, ds, layer_correlations=True)
    assert not (tmp_path / "r2.nwb").exists()
