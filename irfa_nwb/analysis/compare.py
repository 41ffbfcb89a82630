"""``compare``: fit several reconstruction models on the same splits and compare them honestly.

Every model is fitted on the same training stimuli and scored on the same held-out stimuli,
for several seeds, and every difference between two models comes with a **paired bootstrap
confidence interval** over the held-out stimuli. The result is one :class:`xarray.Dataset`
(:func:`irfa_nwb.write_results` stores it); :func:`comparison_table` prints it and
:func:`plot_comparison` draws it.

The statistics
--------------
Seeds
    For every seed, each estimator is :func:`sklearn.base.clone`-d and its ``random_state``
    (when it has that parameter) set to the seed. The split is the data's designated one
    (a ``split`` coordinate, e.g. the simulator's or TVSD's test set: the same for every seed,
    so seeds vary only the models' own randomness) or else :func:`irfa_nwb.split_stimuli`
    with ``random_state=seed`` (seeds then vary the split too). All models of a seed share
    its split.
Metrics
    Pixel r, SSIM and any other per-stimulus metric are the mean over held-out stimuli of a
    per-stimulus value. n-way identification (n = all held-out stimuli: is the reconstruction
    closer to its own stimulus than to every other) and 2-way identification (the fraction of
    other stimuli it is less close to than its own) are set-level: they depend on which other
    stimuli are in the set. A metric's value for a model is its mean over seeds.
Paired bootstrap
    One bootstrap resample draws the held-out stimuli with replacement (a multinomial draw
    over the union of all seeds' held-out stimuli, as many draws as there are stimuli in that
    union; each seed keeps the draws of its own held-out stimuli). The **same** resample scores
    every model (the comparison is paired: stimulus-to-stimulus difficulty cancels) and, when
    seeds share held-out stimuli, every seed (a stimulus drawn twice counts twice in each seed
    that holds it out; with a designated split all seeds see one and the same resample, so
    the interval is not narrowed by pretending the seeds' test sets are independent).
    Per-stimulus metrics are the weighted mean over the resample. Identification is
    recomputed inside the resample from the similarity matrix restricted to the drawn
    stimuli (:func:`resampled_identification`): each draw is a trial whose distractors are
    the other draws of other stimuli (a stimulus is never its own distractor; a stimulus
    drawn twice is a distractor twice; ties count against the reconstruction, as in
    :func:`~irfa_nwb.analysis.metrics.identification_rank`).
Combining seeds
    In every resample, each model's metric and each pair's difference are averaged over
    seeds; the interval is the percentile interval (``confidence``) of that seed-averaged
    difference over ``n_bootstrap`` resamples. The interval is conditional on the training
    runs: it answers "given these fitted models, how much could the difference move with
    other held-out stimuli?" Seed-to-seed variation of training is shown next to it
    (``difference_per_seed`` with its own interval, and in how many seeds the sign agrees),
    not folded into it: with three seeds no variance component can be estimated.
Verdict
    A pair's verdict for a metric is "A better than B" when the interval of A − B lies
    wholly on A's side of 0 (above 0 for a higher-is-better metric), "B better than A"
    when it lies wholly on B's side, else "no significant difference". Each interval is
    marginal: with many metrics and pairs, some intervals exclude 0 by chance (about 1 in
    20 at 95 % when there is no difference); no multiplicity correction is applied.
One model's interval
    ``value_ci`` is the percentile interval of the model's seed-averaged metric over the same
    resamples, with one exception: a resample holds fewer *distinct* distractors than the
    held-out set (about 63 % of them), which makes n-way identification easier, so for one
    model's n-way interval the resampled targets are scored against the full held-out
    candidate set instead (the mean of the per-stimulus successes).
Calibration
    ``benchmarks/bootstrap_calibration.py`` draws similarity matrices with a known population
    accuracy (300 simulated test sets per row, 95 % intervals): 2-way differences
    cover the truth in 94–96 % of test sets (n = 12–100 held-out stimuli), one model's 2-way
    in 93–95 %; n-way differences in 96–99 % (conservative: the distractor shift cancels
    between the models only in part); one model's n-way (full candidate set) in 94–95 % at
    n = 40–100 and 89 % at n = 12, where the restricted recomputation would cover only 81 %
    at n = 100. Per-stimulus metrics (the paired bootstrap of a mean): 94 % at n = 40–100,
    89 % at n = 12 (percentile intervals run narrow for small n: hold out more stimuli).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import xarray as xr

from .._version import __version__
from ..errors import InputError
from ..imaging import resize_images, to_float_images

logger = logging.getLogger("irfa_nwb.analysis")

__all__ = [
    "BUILTIN_METRICS",
    "Metric",
    "compare",
    "comparison_table",
    "paired_bootstrap_difference",
    "plot_comparison",
    "resampled_identification",
    "verdict_text",
]

#: built-in metric names, in their default order
BUILTIN_METRICS: tuple[str, ...] = ("pixel_r", "ssim", "identification", "identification_2way")
_LABELS = {
    "pixel_r": "pixel r",
    "ssim": "SSIM",
    "identification": "n-way identification",
    "identification_2way": "2-way identification",
}
#: bootstrap resamples computed together (bounds memory: chunk × stimuli numbers per array)
_CHUNK = 256


@dataclass(frozen=True)
class Metric:
    """A per-stimulus metric for :func:`compare`.

    Parameters
    ----------
    name : str
        Name in the results (a valid identifier is easiest to read back).
    function : callable, optional
        ``function(stimuli, reconstructions) -> values``: two float arrays ``(n, y, x, 3)``
        in [0, 1] (the held-out stimuli resized to the reconstructions' size, paired by row)
        to ``n`` numbers, one per stimulus. The metric of a set is their mean. None only for
        the built-in names (:data:`BUILTIN_METRICS`).
    higher_is_better : bool, default True
        Direction of the verdicts.
    label : str, optional
        Name in tables and figures (default ``name``).
    """

    name: str
    function: Callable[[np.ndarray, np.ndarray], Any] | None = None
    higher_is_better: bool = True
    label: str | None = None

    def __post_init__(self) -> None:
        if self.function is None and self.name not in BUILTIN_METRICS:
            raise InputError(f"metric {self.name!r} needs a function (built-in metrics: "
                             f"{', '.join(BUILTIN_METRICS)})")


# ----------------------------------------------------------------------------- statistics
def _check_counts(counts: Any, n: int) -> np.ndarray:
    w = np.asarray(counts, dtype=np.float64)
    if w.ndim == 1:
        w = w[None]
    if w.ndim != 2 or w.shape[1] != n:
        raise InputError(f"counts must have shape (n_resamples, {n}); got {np.shape(counts)}")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise InputError("counts must be finite and non-negative")
    return w


def _beats(similarity: Any) -> np.ndarray:
    """``B[i, j] = 1`` when stimulus ``j != i`` is at least as similar to reconstruction ``i``
    as stimulus ``i`` itself (NaN similarities count as -inf, so they never win, and a NaN
    own similarity loses to everything), else 0."""
    s = np.asarray(similarity, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise InputError(f"similarity must be a square matrix, got shape {s.shape}")
    s = np.where(np.isnan(s), -np.inf, s)
    out = (s >= np.diag(s)[:, None]).astype(np.float64)
    np.fill_diagonal(out, 0.0)
    return out


def _identification_from_beats(beats: np.ndarray, w: np.ndarray, two_way: bool) -> np.ndarray:
    better = w @ beats.T  # (B, n): draws of other stimuli at least as similar as the own one
    pool = w.sum(axis=1, keepdims=True) - w  # draws of other stimuli: the distractors
    valid = (w > 0) & (pool > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if two_way:
            success = 1.0 - better / np.where(pool > 0, pool, 1.0)
        else:
            success = (better == 0).astype(np.float64)
        weight = np.where(valid, w, 0.0)
        total = weight.sum(axis=1)
        return np.where(total > 0, (weight * success).sum(axis=1) / np.where(total > 0, total,
                                                                                1.0), np.nan)


def resampled_identification(
    similarity: Any, counts: Any, *, n_way: str = "all"
) -> np.ndarray:
    """Identification accuracy of resamples of a stimulus set, from its similarity matrix.

    A resample is given by how often each stimulus was drawn. Every draw is one
    identification trial of its reconstruction; the candidates are its own stimulus and the
    other draws of *other* stimuli (a stimulus drawn twice is a distractor twice; it is never
    a distractor of itself). Ties count against the reconstruction. With every count 1 this
    is exactly :func:`~irfa_nwb.analysis.metrics.identification_accuracy` of the
    :func:`~irfa_nwb.analysis.metrics.identification_rank` ranks (n-way with n = all
    stimuli, or 2-way).

    Parameters
    ----------
    similarity : array_like, shape (n, n)
        ``S[i, j]``: similarity of reconstruction ``i`` to stimulus ``j``
        (:func:`~irfa_nwb.analysis.metrics.similarity_matrix`).
    counts : array_like, shape (n,) or (n_resamples, n)
        Non-negative draw counts (integers for a bootstrap; any weights work).
    n_way : {"all", "2"}
        ``"all"``: a trial succeeds when no distractor is at least as similar as the own
        stimulus (n-way with every draw as a candidate); ``"2"``: the fraction of distractors
        less similar than the own stimulus (expected 2-way accuracy).

    Returns
    -------
    numpy.ndarray, shape (n_resamples,)
        Accuracy of each resample (NaN when a resample holds a single distinct stimulus).
    """
    if n_way not in ("all", "2"):
        raise InputError(f"n_way must be 'all' or '2', got {n_way!r}")
    beats = _beats(similarity)
    return _identification_from_beats(beats, _check_counts(counts, len(beats)), n_way == "2")


def _interval(samples: np.ndarray, confidence: float) -> np.ndarray:
    """Percentile interval along the first axis (NaN resamples left out)."""
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(samples).any(axis=0)
        out = np.full((2, *samples.shape[1:]), np.nan)
        if finite.any():
            out[:, finite] = np.nanquantile(samples[:, finite], [alpha / 2, 1 - alpha / 2],
                                            axis=0)
    return np.moveaxis(out, 0, -1)


def _check_confidence(confidence: float, n_bootstrap: int) -> None:
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")
    if int(n_bootstrap) < 1:
        raise InputError(f"n_bootstrap must be at least 1, got {n_bootstrap}")


def paired_bootstrap_difference(
    a: Any,
    b: Any,
    *,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> tuple[float, float, float]:
    """Mean of ``a - b`` and its paired percentile bootstrap interval (one seed, plain arrays).

    The same resample of the ``n`` paired items (stimuli) is applied to both: the interval
    is that of the mean difference, not of two independent means. :func:`compare` does this
    (and more: identification, seeds) for fitted models; this is the bare procedure.

    Parameters
    ----------
    a, b : array_like, shape (n,)
        Paired per-item values of two models.
    n_bootstrap : int, default 2000
        Resamples.
    confidence : float, default 0.95
        Coverage of the interval.
    random_state : int or None, default 0
        Seed of the resampling.

    Returns
    -------
    (difference, lower, upper) : tuple of float
    """
    _check_confidence(confidence, n_bootstrap)
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape or x.size < 1:
        raise InputError(f"a and b must be paired (same length >= 1); got {x.size}, {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("a and b must be finite")
    rng = np.random.default_rng(random_state)
    d = x - y
    samples = []
    for start in range(0, int(n_bootstrap), _CHUNK):
        size = min(_CHUNK, int(n_bootstrap) - start)
        w = rng.multinomial(d.size, np.full(d.size, 1.0 / d.size), size=size).astype(float)
        samples.append(w @ d / d.size)
    low, high = _interval(np.concatenate(samples)[:, None], confidence)[0]
    return float(d.mean()), float(low), float(high)


# ----------------------------------------------------------------------------- scoring
@dataclass
class _Scored:
    """One model on one seed's held-out stimuli."""

    per_stimulus: dict[str, np.ndarray]  # metric -> (n,) contributions (mean = metric)
    beats: np.ndarray | None  # (n, n) for identification


def _metric_list(metrics: Sequence[str | Metric]) -> list[Metric]:
    if isinstance(metrics, str | Metric):
        metrics = (metrics,)
    out: list[Metric] = []
    for m in metrics:
        if isinstance(m, Metric):
            out.append(m)
        elif isinstance(m, str) and m in BUILTIN_METRICS:
            out.append(Metric(m, None, True, _LABELS[m]))
        else:
            raise InputError(
                f"unknown metric {m!r}: use {', '.join(BUILTIN_METRICS)} or an "
                "irfa_nwb.analysis.compare.Metric(name, function)"
            )
    names = [m.name for m in out]
    if not names or len(set(names)) != len(names):
        raise InputError(f"metrics must be distinct and at least one; got {names}")
    return out


def _score(targets: np.ndarray, recon: np.ndarray, metrics: list[Metric], model: str
           ) -> _Scored:
    from .metrics import identification_rank, pixel_correlation, similarity_matrix, ssim

    n = len(targets)
    out: dict[str, np.ndarray] = {}
    beats = None
    for m in metrics:
        if m.function is not None:
            values = np.asarray(m.function(targets, recon), dtype=np.float64).ravel()
            if values.shape != (n,):
                raise InputError(f"metric {m.name!r} returned {values.size} values for {n} "
                                 "stimuli; it must return one per stimulus")
            if not np.all(np.isfinite(values)):
                raise InputError(f"metric {m.name!r} gave NaN / infinite values for {model}")
            out[m.name] = values
        elif m.name == "pixel_r":
            r = np.asarray(pixel_correlation(targets, recon).values, dtype=np.float64)
            if np.isnan(r).any():
                logger.warning("%s: %d constant reconstructions have no pixel correlation; "
                               "counted as r = 0", model, int(np.isnan(r).sum()))
            out[m.name] = np.nan_to_num(r, nan=0.0)
        elif m.name == "ssim":
            out[m.name] = np.asarray(ssim(targets, recon).values, dtype=np.float64)
        else:
            if n < 2:
                raise InputError("identification needs at least two held-out stimuli")
            sim = similarity_matrix(targets, recon)
            beats = _beats(sim) if beats is None else beats
            rank = np.asarray(identification_rank(targets, recon, similarity=sim).values)
            out[m.name] = ((n - rank) / (n - 1) if m.name == "identification_2way"
                           else (rank == 1).astype(np.float64))
    return _Scored(out, beats)


def _weighted_mean(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, w @ values / np.where(total > 0, total, 1.0), np.nan)


def _statistic(scored: _Scored, metric: Metric, w: np.ndarray) -> np.ndarray:
    if metric.function is None and metric.name.startswith("identification"):
        return _identification_from_beats(scored.beats, w, metric.name.endswith("2way"))
    return _weighted_mean(scored.per_stimulus[metric.name], w)


# ----------------------------------------------------------------------------- fitting
def _prepare(estimator: Any, seed: int) -> Any:
    if hasattr(estimator, "get_params"):
        from sklearn.base import clone

        est = clone(estimator)
        if "random_state" in est.get_params(deep=False):
            est.set_params(random_state=seed)
        return est
    est = copy.deepcopy(estimator)
    if hasattr(est, "random_state"):
        est.random_state = seed
    return est


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list) and all(isinstance(v, bool | int | float | str)
                                               for v in value):
        return list(value)
    return str(getattr(value, "__qualname__", None) or type(value).__name__)


def _as_dataset(data: Any) -> xr.Dataset:
    if not isinstance(data, xr.Dataset) or "responses" not in data or "images" not in data:
        raise InputError("compare takes the Dataset of irfa_nwb.load_dataset / "
                         "simulate_recording (with 'responses' and 'images')")
    if "stimulus_id" not in data["responses"].dims:
        raise InputError("responses need a 'stimulus_id' dimension")
    return data


def _splits(data: xr.Dataset, seeds: Sequence[int], test_size: float | int, use_split: bool):
    from ..data import split_stimuli

    designated = use_split and "split" in data.coords
    out = []
    for seed in seeds:
        train, test = split_stimuli(data, test_size=test_size, random_state=int(seed),
                                    use_split=use_split)
        out.append((train, test))
    return out, ("designated" if designated else "random")


def compare(
    estimators: Mapping[str, Any],
    data: xr.Dataset,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    test_size: float | int = 0.1,
    metrics: Sequence[str | Metric] = BUILTIN_METRICS,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    random_state: int | None = 0,
    use_split: bool = True,
    train_on: str = "averages",
    image_size: int | None = None,
    on_fit: Callable[[str, int, Any], Any] | None = None,
) -> xr.Dataset:
    """Fit every model on the same splits over several seeds and compare them on held-out data.

    See the module docstring (:mod:`irfa_nwb.analysis.compare`) for the statistics: a paired
    bootstrap over held-out stimuli, identification recomputed inside every resample, seeds
    combined by averaging within each resample.

    Parameters
    ----------
    estimators : mapping of str to estimator
        Name -> **unfitted** estimator with ``fit(responses, images)`` and ``predict``
        (:class:`irfa_nwb.IRFA`, :class:`irfa_nwb.RidgeReconstruction`, ...). Each is cloned
        per seed (:func:`sklearn.base.clone`, or a deep copy without ``get_params``), with
        ``random_state`` set to the seed when it has that parameter. At least two.
    data : xarray.Dataset
        :func:`irfa_nwb.load_dataset` / :func:`irfa_nwb.simulate_recording` output
        (``responses`` on ``stimulus_id``, ``images``).
    seeds : sequence of int, default (0, 1, 2)
        One fit of every model per seed.
    test_size : float or int, default 0.1
        Held-out fraction (or number) of stimuli when the data have no designated split.
    metrics : sequence of str or Metric
        Built-in ``"pixel_r"``, ``"ssim"``, ``"identification"`` (n-way, n = all held-out
        stimuli), ``"identification_2way"``, and any :class:`Metric`.
    n_bootstrap : int, default 2000
        Bootstrap resamples of the held-out stimuli.
    confidence : float, default 0.95
        Coverage of the intervals.
    random_state : int or None, default 0
        Seed of the bootstrap resampling (the splits use ``seeds``).
    use_split : bool, default True
        Honour the data's designated ``split`` coordinate when present.
    train_on : {"averages", "presentations"}, default "averages"
        Fit on repeat-averaged training responses, or on every presentation. Held-out
        responses are always averaged over repeats.
    image_size : int, optional
        Side at which everything is scored: reconstructions and stimuli are resized to it.
        Default: the models' own size when they all agree, else the smallest (with a
        warning: pixel metrics at different sizes are not comparable).
    on_fit : callable, optional
        Called as ``on_fit(name, seed, fitted_estimator)`` after every fit, e.g. to keep
        the fitted models (``compare`` itself keeps only their predictions).

    Returns
    -------
    xarray.Dataset
        Dims ``model``, ``seed``, ``metric``, ``pair``, ``bound`` (``lower``, ``upper``) and
        ``stimulus_id`` (every stimulus held out in some seed). Coordinates ``higher_is_better``
        and ``metric_label`` (metric), ``pair_first`` / ``pair_second`` (pair; a pair is
        "first - second"), ``n_held_out`` (seed). Variables:

        - ``per_stimulus`` (stimulus_id, seed, model, metric): each held-out stimulus'
          contribution (its pixel r, SSIM, n-way success 0 / 1, 2-way fraction), NaN where
          the stimulus was used for training in that seed; the metric is their mean;
        - ``held_out`` (stimulus_id, seed): whether it was held out;
        - ``value`` (model, seed, metric), ``value_mean`` (model, metric) and its bootstrap
          interval ``value_ci`` (model, metric, bound; for n-way identification the
          resampled targets against all held-out candidates, see the module docstring);
        - ``difference`` (pair, metric): mean over seeds of first - second;
          ``difference_ci`` (pair, metric, bound): its paired bootstrap interval;
          ``difference_per_seed`` (pair, seed, metric), ``difference_ci_per_seed``
          (pair, seed, metric, bound);
        - ``verdict`` (pair, metric, int8): 1 the first model is better (the interval
          excludes 0 on its side), -1 the second is, 0 no significant difference
          (:func:`verdict_text` words it);
        - ``fit_seconds`` (model, seed).

        Attrs: the settings (``confidence``, ``n_bootstrap``, ``random_state``, ``split``
        "designated" or "random", ``test_size``, ``train_on``, ``image_size``), a
        description of the procedure (``bootstrap``, ``seeds_combined``), ``model`` (class of
        each model), ``model_params`` (``<model>.<parameter>``), ``source`` (provenance of
        ``data``).
    """
    data = _as_dataset(data)
    names = [str(k) for k in estimators]
    if len(names) < 2 or len(set(names)) != len(names):
        raise InputError(f"compare needs at least two distinct model names; got {names}")
    for name, est in estimators.items():
        if not (hasattr(est, "fit") and hasattr(est, "predict")):
            raise InputError(f"{name}: {type(est).__name__} has no fit / predict")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be distinct and at least one; got {seeds}")
    if train_on not in ("averages", "presentations"):
        raise InputError(f"train_on must be 'averages' or 'presentations'; got {train_on!r}")
    _check_confidence(confidence, n_bootstrap)
    metric_list = _metric_list(metrics)
    from ..data import average_repeats

    splits, split_kind = _splits(data, seeds, test_size, use_split)
    logger.info("comparing %s over seeds %s (%s split)", ", ".join(names), seeds, split_kind)

    # fit and predict
    recons: dict[tuple[int, str], np.ndarray] = {}
    fit_seconds = np.zeros((len(names), len(seeds)))
    tests: list[xr.Dataset] = []
    for s, (seed, (train, test)) in enumerate(zip(seeds, splits, strict=True)):
        if train_on == "averages":
            train = average_repeats(train)
        test = average_repeats(test)
        tests.append(test)
        for m, name in enumerate(names):
            est = _prepare(estimators[name], seed)
            t0 = time.perf_counter()
            est.fit(train["responses"], train["images"])
            fit_seconds[m, s] = time.perf_counter() - t0
            if on_fit is not None:
                on_fit(name, seed, est)
            pred = est.predict(test["responses"])
            pred = np.asarray(getattr(pred, "values", pred), dtype=np.float32)
            if pred.ndim != 4 or pred.shape[0] != test.sizes["stimulus_id"]:
                raise InputError(f"{name}.predict returned shape {pred.shape}; expected "
                                 f"({test.sizes['stimulus_id']}, y, x, 3)")
            recons[seed, name] = pred
            logger.info("seed %d: fitted %s on %d stimuli in %.1f s", seed, name,
                        train.sizes["stimulus_id"], fit_seconds[m, s])

    sizes = {p.shape[1:3] for p in recons.values()}
    if image_size is None:
        side = min(min(sz) for sz in sizes)
        if len(sizes) > 1:
            logger.warning("the models reconstruct at different sizes %s; all are scored at "
                           "%d px (pass image_size= to choose)", sorted(sizes), side)
        common: tuple[int, int] = (side, side) if len(sizes) > 1 else next(iter(sizes))
    else:
        common = (int(image_size), int(image_size))

    # score
    scored: dict[tuple[int, str], _Scored] = {}
    for seed, test in zip(seeds, tests, strict=True):
        targets = resize_images(to_float_images(
            test["images"].transpose("stimulus_id", "y", "x", "channel").values,
            name="images"), common)
        for name in names:
            recon = recons[seed, name]
            if recon.shape[1:3] != common:
                recon = resize_images(recon, common)
            scored[seed, name] = _score(targets, recon, metric_list, name)

    # the union of held-out stimuli, in data order
    all_ids = np.asarray(data["stimulus_id"].values)
    held = np.zeros((len(all_ids), len(seeds)), dtype=bool)
    position = {v: i for i, v in enumerate(all_ids.tolist())}
    test_pos = []
    for s, test in enumerate(tests):
        pos = np.array([position[v] for v in np.asarray(test["stimulus_id"].values).tolist()])
        held[pos, s] = True
        test_pos.append(pos)
    union = np.flatnonzero(held.any(axis=1))
    in_union = {p: i for i, p in enumerate(union.tolist())}
    columns = [np.array([in_union[p] for p in pos.tolist()]) for pos in test_pos]

    n_s, n_m, n_k = len(seeds), len(names), len(metric_list)
    value = np.zeros((n_m, n_s, n_k))
    for s, seed in enumerate(seeds):
        ones = np.ones((1, len(columns[s])))
        for m, name in enumerate(names):
            for k, metric in enumerate(metric_list):
                value[m, s, k] = _statistic(scored[seed, name], metric, ones)[0]

    # bootstrap: one multinomial resample of the union per iteration, shared by all
    rng = np.random.default_rng(random_state)
    boot = np.zeros((int(n_bootstrap), n_m, n_s, n_k))
    # one model's n-way interval: targets resampled against the full held-out candidate set
    # (the restricted recomputation has fewer distinct distractors and sits too high)
    nway = [k for k, m in enumerate(metric_list)
            if m.function is None and m.name == "identification"]
    boot_single = np.zeros((int(n_bootstrap), n_m, n_s, len(nway)))
    n_u = len(union)
    for start in range(0, int(n_bootstrap), _CHUNK):
        size = min(_CHUNK, int(n_bootstrap) - start)
        counts = rng.multinomial(n_u, np.full(n_u, 1.0 / n_u), size=size).astype(np.float64)
        for s, seed in enumerate(seeds):
            w = counts[:, columns[s]]
            for m, name in enumerate(names):
                for k, metric in enumerate(metric_list):
                    boot[start:start + size, m, s, k] = _statistic(scored[seed, name], metric,
                                                                   w)
                for j, k in enumerate(nway):
                    values = scored[seed, name].per_stimulus[metric_list[k].name]
                    boot_single[start:start + size, m, s, j] = _weighted_mean(values, w)

    pairs = list(combinations(range(n_m), 2))
    first = np.array([i for i, _ in pairs], dtype=int)
    second = np.array([j for _, j in pairs], dtype=int)
    diff_seed = value[first] - value[second]  # (pair, seed, metric)
    boot_diff_seed = boot[:, first] - boot[:, second]  # (B, pair, seed, metric)
    boot[..., nway] = boot_single
    with np.errstate(invalid="ignore"):
        boot_diff = np.nanmean(boot_diff_seed, axis=2)  # seeds averaged within each resample
        boot_value = np.nanmean(boot, axis=2)
    diff = diff_seed.mean(axis=1)
    diff_ci = _interval(boot_diff, confidence)  # (pair, metric, bound)
    higher = np.array([m.higher_is_better for m in metric_list])
    sign = np.where(diff_ci[..., 0] > 0, 1, np.where(diff_ci[..., 1] < 0, -1, 0))
    verdict = np.where(higher[None, :], sign, -sign).astype(np.int8)

    per_stim = np.full((len(union), n_s, n_m, n_k), np.nan)
    for s, seed in enumerate(seeds):
        for m, name in enumerate(names):
            for k, metric in enumerate(metric_list):
                per_stim[columns[s], s, m, k] = scored[seed, name].per_stimulus[metric.name]

    out = xr.Dataset(
        {
            "per_stimulus": (("stimulus_id", "seed", "model", "metric"), per_stim),
            "held_out": (("stimulus_id", "seed"), held[union]),
            "value": (("model", "seed", "metric"), value),
            "value_mean": (("model", "metric"), value.mean(axis=1)),
            "value_ci": (("model", "metric", "bound"), _interval(boot_value, confidence)),
            "difference": (("pair", "metric"), diff),
            "difference_ci": (("pair", "metric", "bound"), diff_ci),
            "difference_per_seed": (("pair", "seed", "metric"), diff_seed),
            "difference_ci_per_seed": (("pair", "seed", "metric", "bound"),
                                       _interval(boot_diff_seed, confidence)),
            "verdict": (("pair", "metric"), verdict),
            "fit_seconds": (("model", "seed"), fit_seconds),
        },
        coords={
            "stimulus_id": ("stimulus_id", all_ids[union]),
            "seed": ("seed", np.asarray(seeds, dtype=np.int64)),
            "model": ("model", np.asarray(names, dtype=str)),
            "metric": ("metric", np.asarray([m.name for m in metric_list], dtype=str)),
            "metric_label": ("metric", np.asarray([m.label or m.name for m in metric_list],
                                                  dtype=str)),
            "higher_is_better": ("metric", higher),
            "pair": ("pair", np.asarray([f"{names[i]} - {names[j]}" for i, j in pairs],
                                        dtype=str)),
            "pair_first": ("pair", np.asarray([names[i] for i in first], dtype=str)),
            "pair_second": ("pair", np.asarray([names[j] for j in second], dtype=str)),
            "bound": ("bound", np.asarray(["lower", "upper"])),
            "n_held_out": ("seed", np.asarray([len(c) for c in columns], dtype=np.int64)),
        },
    )
    out.attrs.update({
        "analysis": "irfa_nwb.compare",
        "irfa_nwb_version": __version__,
        "confidence": float(confidence),
        "n_bootstrap": int(n_bootstrap),
        "random_state": random_state if random_state is None else int(random_state),
        "split": split_kind,
        "test_size": float(test_size) if isinstance(test_size, float) else int(test_size),
        "train_on": train_on,
        "image_size": int(common[0]) if common[0] == common[1] else f"{common[0]}x{common[1]}",
        "bootstrap": (
            "paired percentile bootstrap of the held-out stimuli: each resample is one "
            "multinomial draw over the union of the seeds' held-out stimuli, shared by all "
            "models and seeds; per-stimulus metrics are weighted means over the resample, "
            "identification is recomputed from the similarity matrix restricted to the "
            "resample (distractors: the other draws of other stimuli)"
        ),
        "seeds_combined": (
            "each model's metric and each pair's difference are averaged over seeds within "
            "every resample; the interval is the percentile interval of that average "
            "(conditional on the fitted models; seed-to-seed spread in difference_per_seed)"
        ),
    })
    model_record: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for name in names:
        est = estimators[name]
        model_record[f"{name}.class"] = f"{type(est).__module__}.{type(est).__qualname__}"
        if hasattr(est, "get_params"):
            for key, val in est.get_params(deep=False).items():
                params[f"{name}.{key}"] = _plain(val)
    out.attrs["model"] = model_record
    out.attrs["model_params"] = params
    out.attrs["source"] = {
        str(k): (v if isinstance(v, str | int | float) else ", ".join(map(str, np.ravel(v))))
        for k, v in (data.attrs or {}).items()
        if isinstance(v, str | int | float | list | tuple | np.ndarray)
    }
    logger.debug("%s", comparison_table(out))
    return out


# ----------------------------------------------------------------------------- reporting
def _names(ds: xr.Dataset, dim: str) -> list[str]:
    return [str(v) for v in np.atleast_1d(ds[dim].values)]


def verdict_text(ds: xr.Dataset, pair: str, metric: str) -> str:
    """The verdict of one pair and metric in words.

    Parameters
    ----------
    ds : xarray.Dataset
        The output of :func:`compare` (or :func:`irfa_nwb.read_results` of its file).
    pair : str
        A ``pair`` label ("A - B").
    metric : str
        A ``metric`` name.

    Returns
    -------
    str
        "A better than B (CI excludes 0)", "B better than A (CI excludes 0)" or
        "no significant difference (CI includes 0)".
    """
    row = ds.sel(pair=pair, metric=metric)
    code = int(row["verdict"])
    first, second = str(row["pair_first"].item()), str(row["pair_second"].item())
    if code > 0:
        return f"{first} better than {second} (CI excludes 0)"
    if code < 0:
        return f"{second} better than {first} (CI excludes 0)"
    return "no significant difference (CI includes 0)"


def _fmt(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.3f}"


def comparison_table(ds: xr.Dataset) -> str:
    """The comparison as plain text: values per model and seed, differences with intervals.

    Parameters
    ----------
    ds : xarray.Dataset
        The output of :func:`compare` (or :func:`irfa_nwb.read_results` of its file).

    Returns
    -------
    str
        Two tables: each metric per model (mean over seeds, its interval and the per-seed
        values), then each pair's difference, interval, seeds agreeing in sign, and verdict.
    """
    models, metrics, pairs = _names(ds, "model"), _names(ds, "metric"), _names(ds, "pair")
    seeds = [int(s) for s in np.atleast_1d(ds["seed"].values)]
    labels = dict(zip(metrics, _names(ds, "metric_label"), strict=True))
    conf = float(ds.attrs.get("confidence", 0.95))
    pct = f"{100 * conf:g}%"
    n_held = [int(v) for v in np.atleast_1d(ds["n_held_out"].values)]
    held_text = (f"{n_held[0]} held-out stimuli" if len(set(n_held)) == 1
                 else f"{min(n_held)}-{max(n_held)} held-out stimuli")
    lines = [
        f"Comparison on held-out stimuli: {len(seeds)} seed(s) {tuple(seeds)}, "
        f"{ds.attrs.get('split', '?')} split, {held_text} per seed; {pct} paired bootstrap "
        f"intervals ({ds.attrs.get('n_bootstrap', '?')} resamples of held-out stimuli, seeds "
        "averaged within each resample)",
        "",
    ]
    wlab = max(len(v) for v in labels.values()) + 2
    wmod = max(max(len(m) for m in models) + 2, 8)
    lines.append(f"{'metric':<{wlab}}{'model':<{wmod}}{'mean':>7}  {pct + ' CI':<18}per seed")
    for metric in metrics:
        for i, model in enumerate(models):
            row = ds.sel(model=model, metric=metric)
            lo, hi = np.asarray(row["value_ci"].values, dtype=float)
            per_seed = " ".join(_fmt(float(v)) for v in np.atleast_1d(row["value"].values))
            lines.append(f"{(labels[metric] if i == 0 else ''):<{wlab}}{model:<{wmod}}"
                         f"{_fmt(float(row['value_mean'])):>7}  "
                         f"{'[' + _fmt(lo) + ', ' + _fmt(hi) + ']':<18}{per_seed}")
    wpair = max(*(len(p) for p in pairs), len("difference")) + 2
    lines += ["", f"{'metric':<{wlab}}{'difference':<{wpair}}"
                  f"{'mean':>7}  {pct + ' CI':<18}{'seeds':<8}verdict"]
    for metric in metrics:
        for i, pair in enumerate(pairs):
            row = ds.sel(pair=pair, metric=metric)
            lo, hi = np.asarray(row["difference_ci"].values, dtype=float)
            per_seed = np.atleast_1d(row["difference_per_seed"].values)
            d = float(row["difference"])
            agree = (f"{int(np.sum(np.sign(per_seed) == np.sign(d)))}/{len(per_seed)}"
                     if d != 0 else "-")
            lines.append(
                f"{(labels[metric] if i == 0 else ''):<{wlab}}{pair:<{wpair}}"
                f"{d:>+7.3f}  {'[' + f'{lo:+.3f}, {hi:+.3f}' + ']':<18}"
                f"{agree:<8}{verdict_text(ds, pair, metric)}"
            )
    lines.append("")
    lines.append("seeds: in how many seeds the difference has the sign of its mean ('-': a "
                 "mean of exactly 0). Intervals are conditional on these fitted models and are "
                 "not corrected for multiple comparisons.")
    return "\n".join(lines)


def _ticks(ax: Any, names: list[str]) -> None:
    """Names as x tick labels, slanted when they would collide."""
    slant = len(names) > 1 and sum(len(n) for n in names) > 18
    ax.set_xticks(range(len(names)), names, rotation=25 if slant else 0,
                  ha="right" if slant else "center")


def plot_comparison(ds: xr.Dataset, *, width_per_metric: float = 2.8, height: float = 5.5):
    """Per metric: each model's values (seeds as dots, mean with its interval) and each pair's
    difference with its paired bootstrap interval.

    Top row: one axes per metric, models along x (tick labels are the model names), a small
    dot per seed and a black mean with its bootstrap interval. Bottom row: one axes per metric,
    pairs along x, the mean difference with its interval (an error bar labelled with the pair),
    a dashed line at 0; green when the first model is significantly better, red when the
    second is, grey otherwise.

    Parameters
    ----------
    ds : xarray.Dataset
        The output of :func:`compare` (or :func:`irfa_nwb.read_results` of its file).
    width_per_metric, height : float
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .figures import _figure

    models, metrics, pairs = _names(ds, "model"), _names(ds, "metric"), _names(ds, "pair")
    labels = dict(zip(metrics, _names(ds, "metric_label"), strict=True))
    fig = _figure(width_per_metric * len(metrics), height)
    axes = fig.subplots(2, len(metrics), squeeze=False)
    colours = {1: "tab:green", -1: "tab:red", 0: "0.4"}
    pct = f"{100 * float(ds.attrs.get('confidence', 0.95)):g}%"
    for k, metric in enumerate(metrics):
        top, bottom = axes[0, k], axes[1, k]
        for i, model in enumerate(models):
            row = ds.sel(model=model, metric=metric)
            vals = np.atleast_1d(np.asarray(row["value"].values, dtype=float))
            offsets = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else np.zeros(1)
            top.plot(i + offsets, vals, "o", color="tab:blue", alpha=0.5, markersize=4,
                     label=f"{model} seeds")
            lo, hi = np.asarray(row["value_ci"].values, dtype=float)
            mean = float(row["value_mean"])
            top.errorbar([i], [mean], yerr=[[mean - lo], [hi - mean]], fmt="s", color="black",
                         capsize=4, label=model)
        _ticks(top, models)
        top.set_xlim(-0.6, len(models) - 0.4)
        top.set_title(labels[metric])
        for j, pair in enumerate(pairs):
            row = ds.sel(pair=pair, metric=metric)
            lo, hi = np.asarray(row["difference_ci"].values, dtype=float)
            d = float(row["difference"])
            bottom.errorbar([j], [d], yerr=[[d - lo], [hi - d]], fmt="o",
                            color=colours[int(row["verdict"])], capsize=4, label=pair)
        bottom.axhline(0.0, color="0.5", linestyle="--", linewidth=1)
        _ticks(bottom, pairs)
        bottom.set_xlim(-0.6, len(pairs) - 0.4)
        if k == 0:
            top.set_ylabel("held-out value")
            bottom.set_ylabel(f"difference ({pct} CI)")
    fig.suptitle(f"{len(np.atleast_1d(ds['seed'].values))} seed(s), paired bootstrap over "
                 "held-out stimuli")
    fig.tight_layout()
    return fig
