"""The paper's analyses: inverse receptive fields, clustering, metrics and figures.

Arrays in, arrays / figures out: nothing here reads or writes NWB (see :mod:`irfa_nwb.results`)
and torch is only imported by the network-based metrics, when they run.

- :mod:`~irfa_nwb.analysis.fields`: spatial / feature IRF averages, their consistency and
  variability across stimuli (:func:`irf_summary`: the paper's two findings as numbers).
- :mod:`~irfa_nwb.analysis.clustering`: per-area clustering of stimuli by feature IRFs, k
  chosen by silhouette (:func:`cluster_stimuli`).
- :mod:`~irfa_nwb.analysis.metrics`: pixel Pearson r, SSIM, n-way identification
  (:func:`reconstruction_metrics`).
- :mod:`~irfa_nwb.analysis.alexnet`: the paper's AlexNet layer correlations and distances,
  exactly as its reference notebook computes them (:func:`alexnet_layer_correlations`).
- :mod:`~irfa_nwb.analysis.nsd_metrics`: the eight-metric table of NSD reconstruction
  work (:func:`standard_metrics`: PixCorr, SSIM, AlexNet(2), AlexNet(5), Inception, CLIP,
  EffNet-B, SwAV).
- :mod:`~irfa_nwb.analysis.figures`: PNG figures (arrays in, figures out).
- :mod:`~irfa_nwb.analysis.evaluate`: :func:`evaluate`, all of the above for a fitted model
  on a data set, as one xarray Dataset (what :func:`irfa_nwb.write_results` stores).
- :mod:`~irfa_nwb.analysis.compare`: :func:`compare`, several models fitted on the same
  splits over several seeds, every difference with a paired bootstrap interval
  (:func:`comparison_table`, :func:`plot_comparison`).
"""

from .alexnet import (
    ALEXNET_LAYERS,
    alexnet_features,
    alexnet_layer_correlations,
    layer_shares,
    load_alexnet,
    notebook_uint8,
)
from .clustering import ClusterResult, cluster_features, cluster_stimuli
from .compare import (
    BUILTIN_METRICS,
    Metric,
    compare,
    comparison_table,
    paired_bootstrap_difference,
    plot_comparison,
    resampled_identification,
    verdict_text,
)
from .evaluate import evaluate
from .fields import (
    feature_consistency,
    feature_irf_mean,
    feature_variability,
    irf_summary,
    mean_pairwise_correlation,
    spatial_consistency,
    spatial_irf_mean,
)
from .figures import (
    plot_cluster_exemplars,
    plot_feature_irfs,
    plot_layer_correlations,
    plot_layer_shares,
    plot_reconstructions,
    plot_spatial_irfs,
    plot_training_curves,
    save_figure,
)
from .metrics import (
    identification_accuracy,
    identification_rank,
    pixel_correlation,
    reconstruction_metrics,
    similarity_matrix,
    ssim,
)
from .nsd_metrics import (
    STANDARD_METRICS,
    correlation_distance,
    standard_metrics,
    two_way_identification,
)

__all__ = [
    "ALEXNET_LAYERS",
    "BUILTIN_METRICS",
    "STANDARD_METRICS",
    "ClusterResult",
    "Metric",
    "alexnet_features",
    "alexnet_layer_correlations",
    "cluster_features",
    "cluster_stimuli",
    "compare",
    "comparison_table",
    "correlation_distance",
    "evaluate",
    "feature_consistency",
    "feature_irf_mean",
    "feature_variability",
    "identification_accuracy",
    "identification_rank",
    "irf_summary",
    "layer_shares",
    "load_alexnet",
    "mean_pairwise_correlation",
    "notebook_uint8",
    "paired_bootstrap_difference",
    "pixel_correlation",
    "plot_cluster_exemplars",
    "plot_comparison",
    "plot_feature_irfs",
    "plot_layer_correlations",
    "plot_layer_shares",
    "plot_reconstructions",
    "plot_spatial_irfs",
    "plot_training_curves",
    "reconstruction_metrics",
    "resampled_identification",
    "save_figure",
    "similarity_matrix",
    "spatial_consistency",
    "spatial_irf_mean",
    "ssim",
    "standard_metrics",
    "two_way_identification",
    "verdict_text",
]
