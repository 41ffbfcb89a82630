"""Figures of IRFA results (matplotlib, saved as PNG through the Agg canvas).

Each ``plot_*`` function takes arrays (NumPy or xarray) and returns a
:class:`matplotlib.figure.Figure` built without pyplot (no GUI backend, no global state);
:func:`save_figure` writes it as a PNG of exactly ``figsize × dpi`` pixels (no tight cropping)
and releases it. :func:`irfa_nwb.workflows.report.write_report` draws every figure an
evaluation supports (``irfa-nwb report results.nwb``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError

DEFAULT_DPI = 100


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = DEFAULT_DPI) -> Path:
    """Save a figure as PNG (``figsize × dpi`` pixels) and release it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : path-like
        Output file; parent folders are created.
    dpi : int
        Resolution.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, format="png")
    fig.clear()
    return path


def _images(arr: Any) -> np.ndarray:
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim == 3:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 4:
        raise InputError(f"expected images (n, y, x[, channel]), got shape {a.shape}")
    if np.issubdtype(np.asarray(arr).dtype, np.integer):
        a = a / 255.0
    return np.clip(a, 0.0, 1.0)


def _ids(arr: Any, n: int, ids: Sequence[Any] | None) -> list[str]:
    if ids is not None:
        return [str(i) for i in ids]
    if isinstance(arr, xr.DataArray) and "stimulus_id" in arr.coords:
        return [str(i) for i in arr["stimulus_id"].values]
    return [str(i) for i in range(n)]


def plot_reconstructions(
    stimuli: Any,
    reconstructions: Any,
    *,
    stimulus_ids: Sequence[Any] | None = None,
    max_images: int = 12,
    per_row: int = 6,
    cell: float = 1.4,
):
    """Stimuli (upper row of each pair) above their reconstructions (lower row).

    Parameters
    ----------
    stimuli, reconstructions : array_like, shape (n, y, x[, 3])
        Paired images in [0, 1].
    stimulus_ids : sequence, optional
        Titles; default the ``stimulus_id`` coordinate or indices.
    max_images : int
        Show the first ``max_images`` pairs.
    per_row : int
        Pairs per row.
    cell : float
        Size of one image in inches.

    Returns
    -------
    matplotlib.figure.Figure
        ``min(n, per_row) * cell`` wide, ``2 * ceil(n / per_row) * cell`` high.
    """
    a, b = _images(stimuli), _images(reconstructions)
    if a.shape[0] != b.shape[0]:
        raise InputError("stimuli and reconstructions must hold the same number of images")
    n = min(a.shape[0], max_images)
    if n == 0:
        raise InputError("no images to plot")
    ids = _ids(stimuli, a.shape[0], stimulus_ids)
    cols = min(n, per_row)
    rows = int(np.ceil(n / cols))
    fig = _figure(cols * cell, 2 * rows * cell)
    axes = fig.subplots(2 * rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, cols)
        axes[2 * r, c].imshow(a[i], interpolation="nearest")
        axes[2 * r, c].set_title(f"{ids[i]}", fontsize=7)
        axes[2 * r + 1, c].imshow(b[i], interpolation="nearest")
    axes[0, 0].text(-0.1, 0.5, "stimulus", transform=axes[0, 0].transAxes, rotation=90,
                    ha="right", va="center", fontsize=7)
    axes[1, 0].text(-0.1, 0.5, "reconstruction", transform=axes[1, 0].transAxes, rotation=90,
                    ha="right", va="center", fontsize=7)
    fig.subplots_adjust(left=0.04, right=0.99, top=0.95, bottom=0.01, wspace=0.05, hspace=0.15)
    return fig


def _group_by_area(heads: Sequence[str], areas: Sequence[str] | None) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, _ in enumerate(heads):
        groups.setdefault(str(areas[i]) if areas is not None else "all", []).append(i)
    return groups


def _heads_areas(arr: Any, heads: Sequence[str] | None, areas: Any) -> tuple[list[str], Any]:
    n_heads = np.asarray(arr).shape[0]
    if heads is None:
        if isinstance(arr, xr.DataArray) and "head" in arr.coords:
            heads = [str(h) for h in arr["head"].values]
        else:
            heads = [str(i) for i in range(n_heads)]
    if areas is None and isinstance(arr, xr.DataArray) and "area" in arr.coords:
        areas = [str(a) for a in arr["area"].values]
    if isinstance(areas, Mapping):
        areas = [str(areas[h]) for h in heads]
    if len(heads) != n_heads or (areas is not None and len(areas) != n_heads):
        raise InputError(f"need one head name and area per head ({n_heads})")
    return list(heads), areas


def plot_spatial_irfs(
    spatial_irf: Any,
    *,
    heads: Sequence[str] | None = None,
    areas: Sequence[str] | Mapping[str, str] | None = None,
    cell: float = 1.5,
):
    """Spatial IRF map of every head, one row per area.

    Parameters
    ----------
    spatial_irf : array_like, shape (head, y, x)
        Mean spatial IRFs (e.g. ``read_results(...)["spatial_irf"]``).
    heads, areas : optional
        Head names and their areas; default the ``head`` / ``area`` coordinates.
    cell : float
        Size of one map in inches.

    Returns
    -------
    matplotlib.figure.Figure
        ``max heads per area * cell`` wide (plus a colour bar column of ``cell / 2``),
        ``n_areas * cell`` high.
    """
    arr = np.asarray(spatial_irf, dtype=np.float64)
    if arr.ndim != 3:
        raise InputError(f"spatial IRFs must have shape (head, y, x), got {arr.shape}")
    heads, areas = _heads_areas(spatial_irf, heads, areas)
    groups = _group_by_area(heads, areas)
    cols = max(len(v) for v in groups.values())
    fig = _figure(cols * cell + cell / 2, len(groups) * cell)
    axes = fig.subplots(len(groups), cols, squeeze=False)
    # one colour scale shared by all heads, spanning the data (maps near 1 / n_heads everywhere
    # would look flat on a 0..1 scale)
    vmin, vmax = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 1.0)
    if vmax <= vmin:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    image = None
    for r, (area, idx) in enumerate(groups.items()):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(idx):
                ax.axis("off")
                continue
            image = ax.imshow(arr[idx[c]], cmap="viridis", vmin=vmin, vmax=vmax)
            ax.set_title(heads[idx[c]], fontsize=7)
        axes[r, 0].set_ylabel(area, fontsize=9)
    fig.subplots_adjust(left=0.06, right=1 - 0.5 / (cols + 0.5), top=0.9, bottom=0.03,
                        wspace=0.08, hspace=0.3)
    if image is not None:
        cax = fig.add_axes((1 - 0.4 / (cols + 0.5), 0.1, 0.12 / (cols + 0.5), 0.75))
        fig.colorbar(image, cax=cax)
    return fig


def plot_feature_irfs(
    feature_irf: Any,
    *,
    heads: Sequence[str] | None = None,
    areas: Sequence[str] | Mapping[str, str] | None = None,
    width: float = 6.0,
    row_height: float = 0.3,
):
    """Heat map of feature IRFs: heads (grouped by area) × channels.

    Parameters
    ----------
    feature_irf : array_like, shape (head, channel)
        Feature IRFs (e.g. averaged over stimuli).
    heads, areas : optional
        Head names and areas; default the coordinates of ``feature_irf``.
    width, row_height : float
        Figure width and height per head, in inches.

    Returns
    -------
    matplotlib.figure.Figure
        ``width`` wide, ``max(2, n_heads * row_height + 1)`` high.
    """
    arr = np.asarray(feature_irf, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"feature IRFs must have shape (head, channel), got {arr.shape}")
    heads, areas = _heads_areas(feature_irf, heads, areas)
    groups = _group_by_area(heads, areas)
    order = [i for idx in groups.values() for i in idx]
    fig = _figure(width, max(2.0, arr.shape[0] * row_height + 1.0))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(arr[order], aspect="auto", cmap="magma", interpolation="nearest")
    labels = [f"{heads[i]} ({areas[i]})" if areas is not None else heads[i] for i in order]
    ax.set_yticks(range(len(order)), labels, fontsize=7)
    ax.set_xlabel("channel")
    ax.set_title("feature IRFs (attention summed over pixels)", fontsize=9)
    fig.colorbar(image, ax=ax)
    fig.subplots_adjust(left=0.25, right=0.97, top=0.9, bottom=0.12)
    return fig


def plot_layer_correlations(correlations: Any, *, width: float = 7.0, height: float = 3.5):
    """Bar chart of AlexNet layer correlations, one bar group per layer and bar per area.

    Parameters
    ----------
    correlations : xarray.DataArray
        Dims ``(layer,)`` or ``(<area dim>, layer)``, with layer names (and area names) as
        coordinates, e.g. ``read_results(...)["layer_correlation"]`` or the ``overall`` variable
        of :func:`irfa_nwb.analysis.alexnet.alexnet_layer_correlations`.
    width, height : float
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    da = correlations if isinstance(correlations, xr.DataArray) else xr.DataArray(
        np.asarray(correlations), dims=("layer",)
    )
    areas, layers, values = _area_correlations(da)
    fig = _figure(width, height)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(layers))
    bar = 0.8 / len(areas)
    for i, area in enumerate(areas):
        ax.bar(x + (i - (len(areas) - 1) / 2) * bar, values[i], width=bar, label=area)
    ax.set_xticks(x, layers)
    ax.set_ylabel("Pearson r")
    ax.axhline(0.0, color="k", linewidth=0.5)
    ax.set_title("AlexNet feature correlation, stimuli vs reconstructions", fontsize=9)
    ax.legend(fontsize=7, title=None)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.9, bottom=0.12)
    return fig


def _area_correlations(correlations: Any) -> tuple[list[str], list[str], np.ndarray]:
    """(areas, layers, r[area, layer]) from a mapping or a 2-D DataArray."""
    if isinstance(correlations, xr.DataArray):
        da = correlations
        if da.ndim == 1:
            da = da.expand_dims(area=["all"])
        if "layer" not in da.dims or da.ndim != 2:
            raise InputError("layer correlations need a 'layer' dimension and an area dimension")
        area_dim = next(d for d in da.dims if d != "layer")
        da = da.transpose(area_dim, "layer")
        layers = [str(v) for v in (da["layer"].values if "layer" in da.coords
                                   else range(da.sizes["layer"]))]
        areas = [str(v) for v in (da[area_dim].values if area_dim in da.coords
                                  else range(da.sizes[area_dim]))]
        return areas, layers, np.asarray(da.values, dtype=np.float64)
    if not isinstance(correlations, Mapping) or not correlations:
        raise InputError("layer correlations must be a mapping area -> per-layer r, or a "
                         "DataArray with dims (area, layer)")
    areas = [str(a) for a in correlations]
    rows, layers = [], None
    for value in correlations.values():
        if isinstance(value, xr.DataArray) and "layer" in value.coords:
            names = [str(v) for v in value["layer"].values]
            if layers is not None and names != layers:
                raise InputError("every area must list the same layers in the same order")
            layers = names
        rows.append(np.asarray(value, dtype=np.float64).ravel())
    if len({r.size for r in rows}) != 1:
        raise InputError("every area needs one correlation per layer")
    if layers is None:
        from .alexnet import ALEXNET_LAYERS

        n = rows[0].size
        layers = list(ALEXNET_LAYERS) if n == len(ALEXNET_LAYERS) else [str(i) for i in range(n)]
    return areas, layers, np.stack(rows)


def plot_layer_shares(
    correlations: Any,
    *,
    all_label: str = "all",
    width: float = 6.0,
    height: float = 5.0,
    annotate: bool = True,
):
    """The paper's per-area figure: each layer's r as a share of the sum over layers.

    One stacked bar per area (the whole-array result ``all_label`` first, then the areas in
    the order given); a bar's segments are ``100 * r_layer / sum(r)`` (``layer_shares``), in
    layer order from the bottom. In the ``all_label`` bar every layer has its colour (viridis,
    alpha 0.66); in the area bars a layer keeps its colour only in the area where its share is
    largest among the areas, and is light grey elsewhere (the reference notebook's rule).

    Parameters
    ----------
    correlations : mapping or xarray.DataArray
        Area name -> per-layer r (sequences or DataArrays with a ``layer`` coordinate), e.g.
        ``{"all": ds["overall"], "V1": ..., "V4": ..., "IT": ...}``; or a DataArray with dims
        ``(<area dim>, "layer")`` such as ``read_results(...)["layer_correlation"]``.
    all_label : str
        Name of the all-areas entry (drawn first, fully coloured); it may be absent.
    width, height : float
        Figure size in inches.
    annotate : bool
        Write each segment's percentage in it.

    Returns
    -------
    matplotlib.figure.Figure
        Each segment is a bar patch with gid ``"<area>/<layer>"``.
    """
    from matplotlib import colormaps

    from .alexnet import layer_shares

    areas, layers, r = _area_correlations(correlations)
    order = ([areas.index(all_label)] if all_label in areas else []) + [
        i for i, a in enumerate(areas) if a != all_label
    ]
    areas, r = [areas[i] for i in order], r[order]
    shares = np.stack([layer_shares(row) for row in r])
    region = [i for i, a in enumerate(areas) if a != all_label]
    owner = (np.asarray(region)[np.argmax(shares[region], axis=0)] if region
             else np.full(len(layers), -1))
    colours = colormaps["viridis"](np.linspace(0, 1, len(layers)), alpha=0.66)
    fig = _figure(width, height)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(areas))
    for i, area in enumerate(areas):
        bottom = 0.0
        for j, layer in enumerate(layers):
            coloured = area == all_label or owner[j] == i
            colour = colours[j] if coloured else "lightgrey"
            (patch,) = ax.bar(x[i], shares[i, j], 0.5, bottom=bottom, color=colour,
                              edgecolor="white")
            patch.set_gid(f"{area}/{layer}")
            if annotate:
                ax.text(x[i], bottom + shares[i, j] / 2, f"{shares[i, j]:.1f}%", ha="center",
                        va="center", fontsize=7, rotation=90)
            bottom += shares[i, j]
    ax.set_xticks(x, areas)
    ax.set_yticks([])
    ax.set_ylabel("relative correlation (%)")
    ax.set_title("Relative layer correlation (per area)", fontsize=9)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(facecolor=colours[j], edgecolor="white", label=layer)
                       for j, layer in enumerate(layers)],
              title="layers", fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.subplots_adjust(left=0.08, right=0.78, top=0.92, bottom=0.08)
    return fig


def plot_cluster_exemplars(
    clusters: Mapping[str, Any],
    stimuli: Any,
    *,
    n_exemplars: int = 4,
    cell: float = 1.0,
):
    """Exemplar stimuli of every cluster, one row per (area, cluster).

    Parameters
    ----------
    clusters : mapping of area to ClusterResult
        Output of :func:`irfa_nwb.analysis.clustering.cluster_stimuli`.
    stimuli : array_like, shape (n, y, x[, 3])
        Images of the clustered stimuli (same order).
    n_exemplars : int
        Images per cluster.
    cell : float
        Size of one image in inches.

    Returns
    -------
    matplotlib.figure.Figure
        ``(n_exemplars + 1) * cell`` wide (first column: labels), ``n_rows * cell`` high.
    """
    imgs = _images(stimuli)
    rows = [(area, i, ex) for area, res in clusters.items() for i, ex in enumerate(res.exemplars)]
    if not rows:
        raise InputError("no clusters to plot")
    fig = _figure((n_exemplars + 1) * cell, len(rows) * cell)
    axes = fig.subplots(len(rows), n_exemplars + 1, squeeze=False)
    for r, (area, i, ex) in enumerate(rows):
        res = clusters[area]
        for ax in axes[r]:
            ax.axis("off")
        size = int(np.sum(res.labels == i))
        axes[r, 0].text(0.5, 0.5, f"{area}\ncluster {i}\n(n={size}, k={res.k})",
                        ha="center", va="center", fontsize=7, transform=axes[r, 0].transAxes)
        for c, idx in enumerate(ex[:n_exemplars]):
            axes[r, c + 1].imshow(imgs[int(idx)], interpolation="nearest")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01, wspace=0.05, hspace=0.05)
    return fig


def plot_training_curves(
    history: Mapping[str, Any] | xr.Dataset | Sequence[Mapping[str, Any]],
    *,
    width: float = 7.0,
    height: float = 3.5,
):
    """Training losses per epoch (log scale where all values are positive).

    Parameters
    ----------
    history : list of dict, mapping of name to sequence, or xarray.Dataset
        ``IRFA.history_`` (one dict per epoch), or columns (e.g. the ``history_*`` variables of
        :func:`irfa_nwb.read_results`, prefix optional).
    width, height : float
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    columns: dict[str, np.ndarray] = {}
    if isinstance(history, xr.Dataset):
        for name, var in history.data_vars.items():
            if var.dims == ("epoch",):
                columns[str(name).removeprefix("history_")] = np.asarray(var.values, float)
        if "epoch" in history.coords:
            columns["epoch"] = np.asarray(history["epoch"].values, float)
    elif isinstance(history, Mapping):
        columns = {str(k).removeprefix("history_"): np.asarray(v, dtype=float)
                   for k, v in history.items()}
    else:
        keys = [k for entry in history for k in entry]
        for key in dict.fromkeys(keys):
            values = [entry.get(key) for entry in history]
            if all(isinstance(v, (int, float, np.number)) or v is None for v in values):
                columns[key] = np.array([np.nan if v is None else v for v in values], float)
    epochs = columns.pop("epoch", None)
    columns.pop("time", None)
    curves = {k: v for k, v in columns.items() if np.any(np.isfinite(v))}
    if not curves:
        raise InputError("the history holds no numeric loss values to plot")
    n = len(next(iter(curves.values())))
    x = epochs if epochs is not None else np.arange(n)
    fig = _figure(width, height)
    ax = fig.add_subplot(1, 1, 1)
    for name, values in curves.items():
        ax.plot(x, values, marker="o" if n < 20 else None, markersize=3, label=name)
    finite = np.concatenate([v[np.isfinite(v)] for v in curves.values()])
    if finite.size and np.all(finite > 0):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    ax.set_title("training history", fontsize=9)
    fig.subplots_adjust(left=0.12, right=0.98, top=0.9, bottom=0.14)
    return fig
