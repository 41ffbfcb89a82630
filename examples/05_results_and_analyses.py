"""Read a results file back and run the paper's analyses on it.

    python examples/05_results_and_analyses.py RESULTS.nwb
    (e.g. irfa_demo_output/irfa_results.nwb after `make demo`)
"""

import sys

import irfa_nwb
from irfa_nwb.analysis.clustering import cluster_stimuli
from irfa_nwb.analysis.figures import write_report

if len(sys.argv) < 2:
    sys.exit(__doc__)
results = irfa_nwb.read_results(sys.argv[1])
print(results)

# per-stimulus metrics
print(results[["pixel_r", "ssim", "identification_rank"]].to_dataframe().describe())

# the paper's two findings as numbers: spatial IRFs consistent across stimuli, feature IRFs not
print(results[["spatial_consistency", "feature_consistency", "feature_variability"]].to_dataframe())

# representational clustering of stimuli by their feature IRFs, per area
features = results["feature_irf_per_stimulus"]
for area, res in cluster_stimuli(features, list(results["area"].values)).items():
    print(f"{area}: {res.k} clusters (silhouette {res.silhouette[res.k]:.3f}), "
          f"exemplar stimuli {[e.tolist() for e in res.exemplar_ids]}")

for path in write_report(sys.argv[1], "report_figures"):
    print("wrote", path)
