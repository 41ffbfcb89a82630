"""Tests of irfa_nwb.analysis.clustering."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from irfa_nwb.analysis.clustering import cluster_features, cluster_stimuli
from irfa_nwb.errors import InputError


def _planted(rng, sizes, n_heads, c, spread=0.3):
    centres = rng.standard_normal((len(sizes), n_heads, c)) * 3
    rows, truth = [], []
    for i, size in enumerate(sizes):
        rows.append(centres[i] + spread * rng.standard_normal((size, n_heads, c)))
        truth += [i] * size
    return np.concatenate(rows), np.array(truth)


def _same_partition(a, b):
    """Labels agree up to renaming."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_recovers_planted_clusters_per_area():
    rng = np.random.default_rng(0)
    # V1 heads carry 3 clusters, IT heads carry 2 different clusters
    v1, truth_v1 = _planted(rng, [10, 8, 6], n_heads=2, c=5)
    perm = rng.permutation(24)
    it, truth_it = _planted(rng, [14, 10], n_heads=1, c=5)
    feats = np.concatenate([v1, it[perm]], axis=1)
    da = xr.DataArray(
        feats,
        dims=("stimulus", "head", "channel"),
        coords={"head": ["a", "b", "c"], "stimulus_id": ("stimulus", np.arange(100, 124))},
    )
    res = cluster_stimuli(da, {"a": "V1", "b": "V1", "c": "IT"})
    assert list(res) == ["V1", "IT"]
    assert res["V1"].k == 3 and res["IT"].k == 2
    assert res["V1"].heads == ["a", "b"]
    assert _same_partition(res["V1"].labels, truth_v1)
    assert _same_partition(res["IT"].labels, truth_it[perm])
    # largest cluster first
    assert np.sum(res["V1"].labels == 0) == 10
    # exemplars are members of their cluster, ids mapped through stimulus_id
    for i, ex in enumerate(res["V1"].exemplars):
        assert len(ex) == 4
        assert (res["V1"].labels[ex] == i).all()
    assert res["V1"].exemplar_ids[0][0] >= 100
    assert res["V1"].silhouette[3] == max(res["V1"].silhouette.values())
    ds = res["IT"].to_xarray()
    assert ds.attrs["chosen_k"] == 2 and ds["label"].shape == (24,)


def test_no_structure_gives_one_cluster_with_threshold():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((30, 4))
    labels, k, scores, exemplars = cluster_features(noise, min_silhouette=0.5)
    assert k == 1 and (labels == 0).all() and len(exemplars) == 1
    assert max(scores.values()) < 0.5


def test_cluster_errors():
    with pytest.raises(InputError, match="at least"):
        cluster_features(np.zeros((2, 3)))
    with pytest.raises(InputError, match="areas"):
        cluster_stimuli(np.zeros((5, 2, 3)), ["V1"])
