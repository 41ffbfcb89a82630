"""Tests of irfa_nwb.analysis.figures: PNGs are written with the expected pixel size."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from irfa_nwb.analysis import figures
from irfa_nwb.analysis.clustering import cluster_stimuli
from irfa_nwb.errors import InputError

DPI = 50


def _png_shape(path):
    import matplotlib.image as mpimg

    assert path.stat().st_size > 1000
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(path).shape[:2]


def _not_blank(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img[..., :3].std() > 0.01  # something was drawn


def test_reconstructions_figure_size(tmp_path):
    rng = np.random.default_rng(0)
    stim = rng.random((8, 8, 8, 3))
    fig = figures.plot_reconstructions(stim, stim[::-1], per_row=4, cell=1.0)
    path = figures.save_figure(fig, tmp_path / "sub" / "recon.png", dpi=DPI)
    # 4 columns x (2 rows per pair-row x 2 pair-rows), 1 inch each, 50 dpi
    assert _png_shape(path) == (4 * DPI, 4 * DPI)
    _not_blank(path)
    with pytest.raises(InputError, match="same number"):
        figures.plot_reconstructions(stim, stim[:3])


def test_spatial_and_feature_irf_figures(tmp_path):
    rng = np.random.default_rng(0)
    sp = xr.DataArray(
        rng.random((5, 8, 8)), dims=("head", "y", "x"),
        coords={"head": list("abcde"), "area": ("head", ["V1", "V1", "V1", "V4", "IT"])},
    )
    path = figures.save_figure(figures.plot_spatial_irfs(sp, cell=1.0), tmp_path / "sp.png",
                               dpi=DPI)
    # 3 heads in the widest area + half a cell for the colour bar; 3 areas high
    assert _png_shape(path) == (3 * DPI, int(3.5 * DPI))
    _not_blank(path)
    ft = rng.random((5, 16))
    fig = figures.plot_feature_irfs(ft, heads=list("abcde"), areas=["V1", "V4", "V1", "IT", "IT"],
                                    width=4.0, row_height=0.4)
    path = figures.save_figure(fig, tmp_path / "ft.png", dpi=DPI)
    assert _png_shape(path) == (int(3.0 * DPI), 4 * DPI)
    with pytest.raises(InputError, match="head, y, x"):
        figures.plot_spatial_irfs(np.zeros((3, 4)))


def test_layer_correlation_chart(tmp_path):
    corr = xr.DataArray(
        np.array([[0.3, 0.2, 0.35], [0.4, 0.1, 0.05], [0.1, 0.15, 0.3]]),
        dims=("layer_area", "layer"),
        coords={"layer_area": ["all", "V1", "IT"], "layer": ["conv1", "conv2", "fc8"]},
    )
    fig = figures.plot_layer_correlations(corr, width=5, height=3)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv1", "conv2", "fc8"]
    assert len(ax.patches) == 9
    path = figures.save_figure(fig, tmp_path / "lc.png", dpi=DPI)
    assert _png_shape(path) == (3 * DPI, 5 * DPI)
    # a single overall vector works too
    one = xr.DataArray([0.1, 0.2], dims=("layer",), coords={"layer": ["fc7", "fc8"]})
    assert len(figures.plot_layer_correlations(one).axes[0].patches) == 2


# the paper's per-layer r for all areas, and made-up per-area values with the paper's pattern
PAPER_ALL = [0.302, 0.231, 0.355, 0.353, 0.275, 0.310, 0.505, 0.515]
AREAS = {
    "V1": [0.40, 0.35, 0.45, 0.20, 0.15, 0.10, 0.20, 0.20],
    "V4": [0.20, 0.15, 0.25, 0.40, 0.35, 0.40, 0.25, 0.25],
    "IT": [0.10, 0.05, 0.15, 0.15, 0.10, 0.15, 0.50, 0.55],
}


def _segments(fig):
    return {p.get_gid(): p for p in fig.axes[0].patches if p.get_gid()}


def test_layer_share_figure_content(tmp_path):
    from matplotlib.colors import to_rgba

    from irfa_nwb.analysis.alexnet import ALEXNET_LAYERS

    corr = {"V1": AREAS["V1"], "all": PAPER_ALL, "V4": AREAS["V4"], "IT": AREAS["IT"]}
    fig = figures.plot_layer_shares(corr)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["all", "V1", "V4", "IT"]
    seg = _segments(fig)
    assert len(seg) == 4 * 8
    grey = to_rgba("lightgrey")
    # the paper's rule: V1 owns conv1-3, V4 conv4-fc6, IT fc7-fc8 (largest share per layer)
    owners = ["V1"] * 3 + ["V4"] * 3 + ["IT"] * 2
    for i, area in enumerate(["all", "V1", "V4", "IT"]):
        r = np.array(PAPER_ALL if area == "all" else AREAS[area])
        shares = 100 * r / r.sum()
        bottom = 0.0
        for j, layer in enumerate(ALEXNET_LAYERS):
            patch = seg[f"{area}/{layer}"]
            assert patch.get_height() == pytest.approx(shares[j])
            assert patch.get_y() == pytest.approx(bottom)
            assert patch.get_x() + patch.get_width() / 2 == pytest.approx(i)
            bottom += shares[j]
            coloured = area == "all" or owners[j] == area
            assert (tuple(patch.get_facecolor()) != grey) == coloured, (area, layer)
            if coloured:  # a layer has the same colour wherever it is coloured
                assert patch.get_facecolor() == seg[f"all/{layer}"].get_facecolor()
        assert bottom == pytest.approx(100.0)
    texts = {t.get_text() for t in ax.texts}
    assert f"{100 * 0.515 / sum(PAPER_ALL):.1f}%" in texts
    path = figures.save_figure(fig, tmp_path / "shares.png", dpi=DPI)
    assert _png_shape(path) == (5 * DPI, 6 * DPI)


def test_layer_share_figure_from_dataarray_and_errors():
    da = xr.DataArray(
        np.array([[0.3, 0.1], [0.2, 0.2], [0.1, 0.3]]),
        dims=("layer_area", "layer"),
        coords={"layer_area": ["V1", "all", "IT"], "layer": ["conv1", "fc8"]},
    )
    seg = _segments(figures.plot_layer_shares(da, annotate=False))
    assert set(seg) == {f"{a}/{lay}" for a in ("all", "V1", "IT") for lay in ("conv1", "fc8")}
    assert seg["V1/conv1"].get_height() == pytest.approx(75.0)
    assert seg["IT/fc8"].get_height() == pytest.approx(75.0)
    assert seg["all/conv1"].get_height() == pytest.approx(50.0)
    with pytest.raises(InputError, match="non-zero sum"):
        figures.plot_layer_shares({"all": [0.1, -0.1]})
    with pytest.raises(InputError, match="one correlation per layer"):
        figures.plot_layer_shares({"all": [0.1, 0.2], "V1": [0.1]})


def test_cluster_and_training_figures(tmp_path):
    rng = np.random.default_rng(0)
    feats = np.concatenate([rng.normal(0, 0.1, (6, 2, 3)), rng.normal(3, 0.1, (6, 2, 3))])
    clusters = cluster_stimuli(feats, ["V1", "IT"], k_range=[2, 3])
    stim = rng.random((12, 8, 8, 3))
    fig = figures.plot_cluster_exemplars(clusters, stim, n_exemplars=3, cell=1.0)
    path = figures.save_figure(fig, tmp_path / "cl.png", dpi=DPI)
    n_rows = sum(res.k for res in clusters.values())
    assert n_rows == 4
    assert _png_shape(path) == (n_rows * DPI, 4 * DPI)

    history = [{"epoch": e, "loss_generator": 1 / (e + 1), "val_loss": float("nan"),
                "time": 1.0} for e in range(5)]
    fig = figures.plot_training_curves(history, width=4, height=2)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["loss_generator"]  # all-NaN and time columns left out
    assert fig.axes[0].get_yscale() == "log"
    path = figures.save_figure(fig, tmp_path / "tc.png", dpi=DPI)
    assert _png_shape(path) == (2 * DPI, 4 * DPI)
    with pytest.raises(InputError, match="no numeric"):
        figures.plot_training_curves([{"epoch": 0, "val_loss": float("nan")}])
