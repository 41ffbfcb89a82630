"""Read a results file back and run the paper's analyses on it.

    python examples/05_results_and_analyses.py RESULTS.nwb [output_dir]

RESULTS.nwb: any file written by ``irfa_nwb.write_results``, e.g. ``results.nwb`` of
``examples/01_quickstart_simulated.py`` or ``irfa_demo_output/irfa_results.nwb`` after
``make demo``.
"""

import sys
from pathlib import Path

import numpy as np

import irfa_nwb
from irfa_nwb.analysis import cluster_stimuli, irf_summary
from irfa_nwb.workflows.report import write_report

if len(sys.argv) < 2:
    sys.exit(__doc__)
results = irfa_nwb.read_results(sys.argv[1])  # the Dataset irfa_nwb.evaluate returned
out = Path(sys.argv[2] if len(sys.argv) > 2 else "report_figures")
print(results)

# per-stimulus metrics (dimension stimulus_id); stimulus_role says which were held out
print(results[["pixel_r", "ssim", "identification_rank"]].to_dataframe().describe())
roles, counts = np.unique(results["stimulus_role"].values, return_counts=True)
print("stimuli:", {str(r): int(c) for r, c in zip(roles, counts, strict=True)})

# the paper's two findings as numbers: spatial IRFs consistent across stimuli, feature IRFs
# not (computed by evaluate; irf_summary recomputes them from per-stimulus IRFs)
print(results[["spatial_consistency", "feature_consistency", "feature_variability"]]
      .to_dataframe())
if "spatial_irf_per_stimulus" in results:  # evaluate(..., spatial_per_stimulus=True)
    print(irf_summary(results["spatial_irf_per_stimulus"], results["feature_irf_per_stimulus"]))

# representational clustering of stimuli by their feature IRFs, per area (evaluate stores
# the labels as `cluster`; here with the exemplar stimuli of every cluster)
clusters = cluster_stimuli(
    results["feature_irf_per_stimulus"].values,
    list(results["head_area"].values),
    heads=list(results["head"].values),
    stimulus_ids=results["stimulus_id"].values,
)
for area, res in clusters.items():
    print(f"{area}: {res.k} clusters (silhouette {res.silhouette[res.k]:.3f}), "
          f"exemplar stimuli {[e.tolist() for e in res.exemplar_ids]}")

for path in write_report(results, out, layer_correlations=False):
    print("wrote", path)
