"""Representational clustering of stimuli by their feature IRFs, per brain area.

The IRFA paper proposes feature IRFs as "a data-driven method to explore representational
clustering within visual areas" without publishing the procedure; this module implements a
documented, reproducible version:

1. For each area, the feature IRFs of that area's heads are concatenated per stimulus
   (``n_heads_in_area × n_channels`` numbers per stimulus).
2. Each column is standardised over stimuli (zero mean, unit variance; constant columns are
   dropped), so every head and channel weighs the same.
3. k-means (scikit-learn, ``n_init=10``, fixed ``random_state``) is run for every ``k`` in
   ``k_range``; the number of clusters is the ``k`` with the highest mean **silhouette**
   coefficient (Rousseeuw 1987). When ``min_silhouette`` is given and no ``k`` reaches it, the
   stimuli are reported as a single cluster (no clustering structure).
4. Exemplars of each cluster are the stimuli closest to its centroid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError


@dataclass
class ClusterResult:
    """Clustering of the stimuli for one brain area.

    Attributes
    ----------
    area : str
        Brain area.
    heads : list of str
        Heads (electrode groups) whose feature IRFs were used.
    k : int
        Chosen number of clusters.
    labels : numpy.ndarray of int, shape (n,)
        Cluster of each stimulus (0 .. k-1, clusters ordered by decreasing size).
    silhouette : dict of int to float
        Mean silhouette coefficient for every ``k`` tried.
    exemplars : list of numpy.ndarray of int
        For each cluster, indices of up to ``n_exemplars`` stimuli closest to its centroid,
        closest first.
    stimulus_ids : numpy.ndarray, shape (n,)
        Stimulus identifier of each row (indices when none were given).
    """

    area: str
    heads: list[str]
    k: int
    labels: np.ndarray
    silhouette: dict[int, float]
    exemplars: list[np.ndarray]
    stimulus_ids: np.ndarray = field(default_factory=lambda: np.array([]))

    @property
    def exemplar_ids(self) -> list[np.ndarray]:
        """Stimulus identifiers of the exemplars, per cluster."""
        return [self.stimulus_ids[idx] for idx in self.exemplars]

    def to_xarray(self) -> xr.Dataset:
        """Return labels (dims ``stimulus_id``) and silhouette scores (dims ``k``) as a Dataset."""
        ks = sorted(self.silhouette)
        return xr.Dataset(
            {
                "label": (("stimulus_id",), self.labels),
                "silhouette": (("k",), np.array([self.silhouette[k] for k in ks])),
            },
            coords={"stimulus_id": ("stimulus_id", self.stimulus_ids), "k": ks},
            attrs={"area": self.area, "chosen_k": self.k, "heads": list(self.heads)},
        )


def _prepare(features: np.ndarray) -> np.ndarray:
    x = features.reshape(features.shape[0], -1).astype(np.float64)
    sd = x.std(axis=0)
    keep = sd > 1e-12 * np.maximum(np.abs(x).max(axis=0), 1e-300)
    x = x[:, keep]
    return (x - x.mean(axis=0)) / sd[keep]


def cluster_features(
    features: Any,
    *,
    k_range: Sequence[int] = range(2, 9),
    min_silhouette: float | None = None,
    n_exemplars: int = 4,
    random_state: int = 0,
) -> tuple[np.ndarray, int, dict[int, float], list[np.ndarray]]:
    """Cluster the rows of a feature matrix with k-means, choosing k by silhouette.

    Parameters
    ----------
    features : array_like, shape (n, ...)
        One feature vector per stimulus (flattened).
    k_range : sequence of int
        Candidate numbers of clusters (values ≥ n are skipped).
    min_silhouette : float, optional
        Report one cluster when no candidate reaches this mean silhouette.
    n_exemplars : int
        Exemplars kept per cluster.
    random_state : int
        Seed of k-means.

    Returns
    -------
    labels, k, silhouette, exemplars
        As in :class:`ClusterResult`.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    arr = np.asarray(features, dtype=np.float64)
    n = arr.shape[0]
    if not np.all(np.isfinite(arr)):
        raise InputError("feature IRFs contain NaN or infinite values")
    ks = sorted({int(k) for k in k_range if 2 <= int(k) < n})
    if not ks:
        raise InputError(
            f"cannot cluster {n} stimuli with k in {list(k_range)}: need at least k + 1 stimuli "
            "per candidate k >= 2; pass more stimuli or a smaller k_range"
        )
    x = _prepare(arr)
    scores: dict[int, float] = {}
    fits: dict[int, Any] = {}
    for k in ks:
        if x.shape[1] == 0:
            scores[k] = float("nan")
            continue
        km = KMeans(n_clusters=k, n_init=10, random_state=random_state).fit(x)
        if len(np.unique(km.labels_)) < 2:
            scores[k] = float("nan")
            continue
        scores[k] = float(silhouette_score(x, km.labels_))
        fits[k] = km
    valid = {k: s for k, s in scores.items() if np.isfinite(s)}
    best = max(valid, key=lambda k: (valid[k], -k)) if valid else None
    if best is None or (min_silhouette is not None and valid[best] < min_silhouette):
        labels = np.zeros(n, dtype=np.int64)
        centroids = x.mean(axis=0, keepdims=True)
        k = 1
    else:
        raw = fits[best].labels_
        # relabel: largest cluster first (ties by first appearance) for stable reports
        order = sorted(np.unique(raw), key=lambda c: (-np.sum(raw == c), np.argmax(raw == c)))
        remap = {int(c): i for i, c in enumerate(order)}
        labels = np.array([remap[int(c)] for c in raw], dtype=np.int64)
        centroids = np.stack([x[labels == i].mean(axis=0) for i in range(best)])
        k = best
    exemplars = []
    for i in range(k):
        members = np.flatnonzero(labels == i)
        dist = np.linalg.norm(x[members] - centroids[i], axis=1)
        exemplars.append(members[np.argsort(dist, kind="stable")[:n_exemplars]])
    return labels, k, scores, exemplars


def cluster_stimuli(
    feature_fields: Any,
    areas: Sequence[str] | Mapping[str, str],
    *,
    heads: Sequence[str] | None = None,
    stimulus_ids: Sequence[Any] | None = None,
    k_range: Sequence[int] = range(2, 9),
    min_silhouette: float | None = None,
    n_exemplars: int = 4,
    random_state: int = 0,
) -> dict[str, ClusterResult]:
    """Cluster stimuli by feature IRFs separately for each brain area.

    Parameters
    ----------
    feature_fields : array_like or xarray.DataArray, shape (n, head, channel)
        Per-stimulus feature IRFs (``IRFA.feature_fields(X)``).
    areas : sequence of str (one per head) or mapping of head name to area
        Brain area of each head.
    heads : sequence of str, optional
        Head names; default the ``head`` coordinate of ``feature_fields`` or ``"0", "1", ...``.
    stimulus_ids : sequence, optional
        Identifier per stimulus; default the ``stimulus_id`` coordinate or indices.
    k_range, min_silhouette, n_exemplars, random_state
        See :func:`cluster_features` (k chosen by the highest mean silhouette).

    Returns
    -------
    dict of str to ClusterResult
        One result per area, in order of first appearance among the heads.
    """
    arr = np.asarray(feature_fields, dtype=np.float64)
    if arr.ndim != 3:
        raise InputError(
            f"feature fields must have shape (stimulus, head, channel), got {arr.shape}"
        )
    n, n_heads, _ = arr.shape
    if heads is None:
        if isinstance(feature_fields, xr.DataArray) and "head" in feature_fields.coords:
            heads = [str(h) for h in feature_fields.coords["head"].values]
        else:
            heads = [str(i) for i in range(n_heads)]
    heads = [str(h) for h in heads]
    if len(heads) != n_heads:
        raise InputError(f"got {len(heads)} head names for {n_heads} heads")
    if isinstance(areas, Mapping):
        missing = [h for h in heads if h not in areas]
        if missing:
            raise InputError(f"no area given for heads {missing}")
        area_of = [str(areas[h]) for h in heads]
    else:
        area_of = [str(a) for a in areas]
        if len(area_of) != n_heads:
            raise InputError(f"got {len(area_of)} areas for {n_heads} heads")
    if stimulus_ids is None:
        if isinstance(feature_fields, xr.DataArray) and "stimulus_id" in feature_fields.coords:
            stimulus_ids = feature_fields.coords["stimulus_id"].values
        else:
            stimulus_ids = np.arange(n)
    sids = np.asarray(stimulus_ids)
    if sids.shape != (n,):
        raise InputError(f"got {sids.size} stimulus ids for {n} stimuli")

    results: dict[str, ClusterResult] = {}
    for area in dict.fromkeys(area_of):
        idx = [i for i, a in enumerate(area_of) if a == area]
        labels, k, scores, exemplars = cluster_features(
            arr[:, idx, :],
            k_range=k_range,
            min_silhouette=min_silhouette,
            n_exemplars=n_exemplars,
            random_state=random_state,
        )
        results[area] = ClusterResult(
            area=area,
            heads=[heads[i] for i in idx],
            k=k,
            labels=labels,
            silhouette=scores,
            exemplars=exemplars,
            stimulus_ids=sids,
        )
    return results
