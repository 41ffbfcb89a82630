"""The end-to-end workflows, on tiny simulated data (the command line: tests/test_cli.py)."""

from __future__ import annotations

import numpy as np
import pytest

from irfa_nwb.workflows.demo import rf_localisation, run_demo, spatial_irf_peaks

TINY_SIM = dict(n_stimuli=48, n_test=8, n_repeats=2, image_size=16, random_state=0)
TINY_MODEL = dict(image_size=16, channels=8, width=8, max_iter=2, batch_size=8)


def test_demo_workflow_tiny(tmp_path):
    result = run_demo(tmp_path / "demo", simulation=TINY_SIM, model=TINY_MODEL, seeds=(0, 1),
                      n_bootstrap=100, verbose=0)
    for path in (result.nwb_path, result.results_path, result.model_path,
                 result.comparison_path):
        assert path.is_file()
    assert any(p.name == "comparison.png" for p in result.figures)
    assert set(result.metrics) == {"IRFA", "IRFA ridge-residual", "ridge"}
    for m in result.metrics.values():
        assert -1 <= m["pixel_r"] <= 1 and 0 <= m["identification"] <= 1
        assert m["n_test"] == 8
    # the comparison: both seeds of every model, intervals around each difference to ridge
    comparison = result.comparison
    assert comparison.sizes["seed"] == 2 and comparison.sizes["model"] == 3
    np.testing.assert_allclose(comparison["value_mean"].sel(model="ridge", metric="pixel_r"),
                               result.metrics["ridge"]["pixel_r"])
    ci = comparison["difference_ci"].sel(pair="IRFA - ridge")
    assert (ci.sel(bound="lower") <= ci.sel(bound="upper")).all()
    from irfa_nwb import read_results

    back = read_results(result.comparison_path)
    np.testing.assert_allclose(back["difference_ci"].values, comparison["difference_ci"].values)
    verdicts = result.verdicts()
    assert len(verdicts) == 2 * 4 and all("vs ridge" in v for v in verdicts)
    assert all(("CI includes 0" in v) or ("CI excludes 0" in v) for v in verdicts)
    d = result.rf_distances
    assert d.sizes["head"] == 8 and np.isfinite(d["distance"].values).all()
    text = result.summary()
    assert "IRFA" in text and "ridge" in text and "median distance" in text
    assert "paired bootstrap intervals" in text and "In words" in text
    assert "perceptual loss: off" in text or "perceptual loss: on" in text


def test_rf_localisation_on_known_maps():
    import xarray as xr

    size = 20
    maps = np.zeros((3, 2, size, size))
    maps[:, 0, 4, 15] = 1.0  # head a peaks at x = 15, y = 4
    maps[:, 1, 12, 2] = 1.0  # head b peaks at x = 2, y = 12
    peaks = spatial_irf_peaks(maps, ["a", "b"], smooth=0.5)
    np.testing.assert_allclose(peaks["peak_x"].values, [15.5 / size, 2.5 / size])
    np.testing.assert_allclose(peaks["peak_y"].values, [4.5 / size, 12.5 / size])
    true = xr.Dataset(
        {"rf_x": ("electrode_group", [15.5 / size, 0.9]), "rf_y": ("electrode_group", [0.225, 0.1]),
         "area": ("electrode_group", ["V1", "V4"])},
        coords={"electrode_group": ["a", "b"]},
    )
    d = rf_localisation(peaks, true)
    assert d["distance"].sel(head="a") == pytest.approx(0.0, abs=1e-9)
    expected_b = np.hypot(2.5 / size - 0.9, 12.5 / size - 0.1)
    assert d["distance"].sel(head="b") == pytest.approx(expected_b)
    assert d.attrs["chance_distance"] > 0


def test_irf_peaks_can_leave_out_the_border_lines():
    size = 20
    maps = np.zeros((2, 1, size, size))
    maps[:, 0, 0, 19] = 5.0  # a truncated-kernel corner pixel dominates the raw map
    maps[:, 0, 9, 6] = 1.0  # the interior peak
    raw = spatial_irf_peaks(maps, ["a"], smooth=0.5)
    assert raw["peak_x"].item() == pytest.approx(19.5 / size)
    inner = spatial_irf_peaks(maps, ["a"], smooth=0.5, border=3)
    assert inner["peak_x"].item() == pytest.approx(6.5 / size)
    assert inner["peak_y"].item() == pytest.approx(9.5 / size)
    with pytest.raises(ValueError, match="border"):
        spatial_irf_peaks(maps, ["a"], border=10)


def test_demo_perceptual_choice(fake_vgg19, monkeypatch):
    from irfa_nwb.workflows.demo import _perceptual_choice

    # fake_vgg19 points TORCH_HOME at cached (random) weights
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    use, note = _perceptual_choice("auto")
    assert not use and "no GPU" in note
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert _perceptual_choice("auto")[0]
    assert not _perceptual_choice("off")[0]
    with pytest.raises(ValueError, match="auto"):
        _perceptual_choice("maybe")


def test_demo_perceptual_choice_without_weights(empty_torch_home):
    from irfa_nwb.workflows.demo import _perceptual_choice

    use, note = _perceptual_choice("auto")
    assert not use and "no pretrained VGG19" in note
    assert _perceptual_choice("on") == (True, "pretrained VGG19 missing: fit says how to get it")
