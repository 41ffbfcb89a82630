"""``write_report``: every figure an evaluation supports, and a plain-text summary."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..analysis.figures import (
    DEFAULT_DPI,
    plot_cluster_exemplars,
    plot_feature_irfs,
    plot_layer_correlations,
    plot_layer_shares,
    plot_reconstructions,
    plot_spatial_irfs,
    plot_training_curves,
    save_figure,
)
from ..errors import InputError

logger = logging.getLogger("irfa_nwb.workflows")

__all__ = ["write_report"]


def _layer_correlations(res: xr.Dataset, compute: bool | None) -> xr.DataArray | None:
    if "alexnet_r_by_area" in res:
        by_area = res["alexnet_r_by_area"]
        overall = res["alexnet_r"].expand_dims(alexnet_area=["all"])
        return xr.concat([overall, by_area], dim="alexnet_area")
    if "alexnet_r" in res:
        return res["alexnet_r"]
    if compute is False or "stimulus_image" not in res:
        return None
    from ..analysis.alexnet import alexnet_layer_correlations
    from ..errors import MissingWeightsError

    try:  # None: only with weights already here (no download); True: torchvision's way
        ds = alexnet_layer_correlations(res["stimulus_image"].values, res["reconstruction"].values,
                                        allow_download=None if compute else False)
    except MissingWeightsError:
        if compute:
            raise
        warnings.warn("layer-correlation chart skipped: pretrained AlexNet weights are not on "
                      "this machine (see irfa_nwb.analysis.alexnet.load_alexnet)", stacklevel=3)
        return None
    return ds["overall"]


def write_report(
    results: xr.Dataset | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    dpi: int = DEFAULT_DPI,
    layer_correlations: bool | None = None,
    max_images: int = 12,
) -> list[Path]:
    """Write every figure an evaluation supports, as PNGs in ``out_dir``, and a summary.

    Files: ``reconstructions.png``, ``spatial_irfs.png``, ``feature_irfs.png`` (mean over
    stimuli), ``clusters.png`` (per-area clustering of stimuli by feature IRFs),
    ``layer_correlations.png``, ``layer_shares.png`` (the paper's per-area relative shares, when
    per-area correlations are present) and ``training_curves.png``, each only when the results
    hold what it needs, and ``summary.txt`` with the headline numbers and which stimuli were
    scored (held-out or training).

    Parameters
    ----------
    results : xarray.Dataset or path-like
        From :func:`irfa_nwb.evaluate`, or a file written by :func:`irfa_nwb.write_results`.
    out_dir : path-like
        Folder for the figures (created).
    dpi : int
        Resolution of the PNGs.
    layer_correlations : bool, optional
        When the results hold no AlexNet correlations: ``True`` computes them (needs pretrained
        AlexNet weights), ``None`` (default) only when the weights are already on this
        machine, ``False`` never.
    max_images : int
        Reconstruction pairs shown.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from ..analysis.clustering import cluster_stimuli
    from ..analysis.metrics import identification_accuracy
    from ..results import read_results

    res = results if isinstance(results, xr.Dataset) else read_results(results)
    label = res.attrs.get("results_file", "in-memory evaluation") if isinstance(
        results, xr.Dataset) else str(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    ids = [str(s) for s in res["stimulus_id"].values]
    n = len(ids)
    roles = np.asarray(res["stimulus_role"].values).astype(str) if "stimulus_role" in res.coords \
        else np.full(n, "unknown")
    has_irfs = "spatial_irf" in res
    heads = [str(h) for h in res["head"].values] if has_irfs else []
    areas = ([str(a) for a in res["head_area"].values] if "head_area" in res.coords
             else ["unknown"] * len(heads))

    if "stimulus_image" in res:
        fig = plot_reconstructions(res["stimulus_image"].values, res["reconstruction"].values,
                                   stimulus_ids=ids, max_images=max_images)
        written.append(save_figure(fig, out / "reconstructions.png", dpi=dpi))
    clusters = None
    if has_irfs:
        spatial = res["spatial_irf"].rename(head_area="area") if "head_area" in res.coords \
            else res["spatial_irf"]
        feature = res["feature_irf"].rename(head_area="area") if "head_area" in res.coords \
            else res["feature_irf"]
        written.append(save_figure(plot_spatial_irfs(spatial), out / "spatial_irfs.png", dpi=dpi))
        written.append(save_figure(plot_feature_irfs(feature), out / "feature_irfs.png", dpi=dpi))
        if n >= 3 and "stimulus_image" in res:
            try:
                clusters = cluster_stimuli(res["feature_irf_per_stimulus"].values, areas,
                                           heads=heads, stimulus_ids=ids)
            except InputError as err:
                warnings.warn(f"clustering skipped: {err}", stacklevel=2)
            if clusters:
                fig = plot_cluster_exemplars(clusters, res["stimulus_image"].values)
                written.append(save_figure(fig, out / "clusters.png", dpi=dpi))

    corr = _layer_correlations(res, layer_correlations)
    if corr is not None:
        written.append(save_figure(plot_layer_correlations(corr), out / "layer_correlations.png",
                                   dpi=dpi))
        if corr.ndim == 2 and corr.shape[0] > 1:
            try:
                fig = plot_layer_shares(corr)
            except InputError as err:  # e.g. correlations summing to zero
                warnings.warn(f"layer-share chart skipped: {err}", stacklevel=2)
            else:
                written.append(save_figure(fig, out / "layer_shares.png", dpi=dpi))

    history: dict[str, Any] = {k: res[k].values for k in res.data_vars
                               if str(k).startswith("history_")}
    if history:
        if "epoch" in res.coords:
            history["epoch"] = res["epoch"].values
        try:
            written.append(save_figure(plot_training_curves(history),
                                       out / "training_curves.png", dpi=dpi))
        except InputError as err:
            warnings.warn(f"training curves skipped: {err}", stacklevel=2)

    n_train = int((roles == "train").sum())
    lines = [f"results: {label}",
             f"stimuli scored: {n} ({int((roles == 'held_out').sum())} held out, {n_train} "
             f"used in training, {int((roles == 'unknown').sum())} unknown)"]
    if n_train:
        note = (f"WARNING: {n_train} of the {n} scored stimuli were used to train the model; "
                "their metrics are inflated. Score the held-out stimuli.")
        lines.append(note)
        warnings.warn(note, UserWarning, stacklevel=2)
    if has_irfs:
        lines.append(f"heads: {len(heads)} ({', '.join(sorted(set(areas)))})")
    for name in ("pixel_r", "ssim"):
        if name in res:
            lines.append(f"mean {name}: {float(np.nanmean(res[name].values)):.4f}")
    if "identification_rank" in res and n >= 2:
        ranks = res["identification_rank"].values
        lines.append(f"identification accuracy ({n}-way): {identification_accuracy(ranks):.4f}")
        lines.append(f"identification accuracy (2-way): {identification_accuracy(ranks, 2):.4f}")
    if has_irfs and n >= 2:
        sc = float(np.nanmean(res["spatial_consistency"].values))
        fc = float(np.nanmean(res["feature_consistency"].values))
        lines.append(f"spatial IRF consistency across stimuli (mean pairwise r): {sc:.4f}")
        lines.append(f"feature IRF consistency across stimuli (mean pairwise r): {fc:.4f}")
    if clusters:
        for area, cres in clusters.items():
            lines.append(f"clusters in {area}: k={cres.k} "
                         f"(silhouette {cres.silhouette.get(cres.k, float('nan')):.3f})")
    if corr is not None:
        flat = corr if corr.ndim == 1 else corr.isel({corr.dims[0]: 0})
        lines.append("AlexNet r: " + ", ".join(
            f"{lay}={float(v):.3f}" for lay, v in zip(flat["layer"].values, flat.values,
                                                      strict=True)))
    if "standard_metric" in res:
        for metric, value, status in zip(res["metric"].values, res["standard_metric"].values,
                                         res["metric_status"].values, strict=True):
            lines.append(f"{metric}: {value:.4f}" if status == "computed"
                         else f"{metric}: {status}")
    summary = out / "summary.txt"
    summary.write_text("\n".join(lines) + "\n")
    written.append(summary)
    logger.info("wrote %d report files to %s", len(written), out)
    return written
