"""The paper's analyses: inverse receptive fields, clustering, metrics and figures.

Arrays in, arrays / figures out: nothing here reads or writes NWB (see :mod:`irfa_nwb.results`)
and torch is only imported by the AlexNet metric, when it runs.

- :mod:`~irfa_nwb.analysis.fields`: spatial / feature IRF averages, their consistency and
  variability across stimuli (:func:`irf_summary`: the paper's two findings as numbers).
- :mod:`~irfa_nwb.analysis.clustering`: per-area clustering of stimuli by feature IRFs, k
  chosen by silhouette (:func:`cluster_stimuli`).
- :mod:`~irfa_nwb.analysis.metrics`: pixel Pearson r, SSIM, n-way identification, AlexNet layer
  correlations (:func:`reconstruction_metrics`, :func:`alexnet_layer_correlations`).
- :mod:`~irfa_nwb.analysis.figures`: PNG figures and :func:`write_report` (used by
  ``irfa-nwb report``).
"""

from .clustering import ClusterResult, cluster_features, cluster_stimuli
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
    plot_reconstructions,
    plot_spatial_irfs,
    plot_training_curves,
    save_figure,
    write_report,
)
from .metrics import (
    ALEXNET_LAYERS,
    alexnet_features,
    alexnet_layer_correlations,
    identification_accuracy,
    identification_rank,
    load_alexnet,
    pixel_correlation,
    reconstruction_metrics,
    similarity_matrix,
    ssim,
)

__all__ = [
    "ALEXNET_LAYERS",
    "ClusterResult",
    "alexnet_features",
    "alexnet_layer_correlations",
    "cluster_features",
    "cluster_stimuli",
    "feature_consistency",
    "feature_irf_mean",
    "feature_variability",
    "identification_accuracy",
    "identification_rank",
    "irf_summary",
    "load_alexnet",
    "mean_pairwise_correlation",
    "pixel_correlation",
    "plot_cluster_exemplars",
    "plot_feature_irfs",
    "plot_layer_correlations",
    "plot_reconstructions",
    "plot_spatial_irfs",
    "plot_training_curves",
    "reconstruction_metrics",
    "save_figure",
    "similarity_matrix",
    "spatial_consistency",
    "spatial_irf_mean",
    "ssim",
    "write_report",
]
