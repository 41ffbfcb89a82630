"""Calibration of :func:`irfa_nwb.compare`'s bootstrap intervals, on simulated test sets.

For identification, similarity matrices are drawn with a known population accuracy: the own
stimulus' similarity ~ N(mu, 1), every other ~ N(0, 1), so the 2-way accuracy is
``Phi(mu / sqrt 2)`` and the n-way accuracy (n - 1 distractors) is
``integral phi(x - mu) Phi(x)^(n - 1) dx``. Two models share half of the variance of every
entry (a paired design). For a per-stimulus metric, paired normal values with a known mean
difference. Each row reports how often the 95 % interval covers the truth over ``--reps``
simulated test sets, for the schemes :func:`irfa_nwb.compare` uses and the alternatives:

* ``restricted``: identification recomputed from the similarity matrix restricted to each
  resample (:func:`irfa_nwb.analysis.compare.resampled_identification`): what ``compare``
  uses for every difference and for one model's 2-way interval;
* ``full pool``: resampled targets scored against the full held-out candidate set: what
  ``compare`` uses for one model's n-way interval.

    python benchmarks/bootstrap_calibration.py [--reps 300] [--n-bootstrap 400]

Takes about a minute on a 2-core CPU at the defaults.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import integrate
from scipy.stats import norm

from irfa_nwb.analysis.compare import paired_bootstrap_difference, resampled_identification


def _nway_truth(mu: float, n: int) -> float:
    return integrate.quad(lambda x: norm.pdf(x - mu) * norm.cdf(x) ** (n - 1), -10, 10 + mu)[0]


def _interval(samples: np.ndarray) -> tuple[float, float]:
    low, high = np.quantile(samples, [0.025, 0.975])
    return float(low), float(high)


def _full_pool(sim: np.ndarray, two_way: bool) -> np.ndarray:
    n = len(sim)
    own = np.diag(sim)[:, None]
    others = ~np.eye(n, dtype=bool)
    better = ((sim >= own) & others).sum(axis=1)
    return 1 - better / (n - 1) if two_way else (better == 0).astype(float)


def identification(n: int, mu_a: float, mu_b: float, n_way: str, reps: int, n_boot: int,
                   rng: np.random.Generator) -> dict[str, float]:
    """Coverage of the four intervals (difference / model A; restricted / full pool)."""
    if n_way == "2":
        truth_a, truth_b = norm.cdf(mu_a / np.sqrt(2)), norm.cdf(mu_b / np.sqrt(2))
    else:
        truth_a, truth_b = _nway_truth(mu_a, n), _nway_truth(mu_b, n)
    hits = dict.fromkeys(("diff restricted", "diff full pool", "model restricted",
                          "model full pool"), 0)
    for _ in range(reps):
        shared = rng.normal(size=(n, n)) * np.sqrt(0.5)
        sa = mu_a * np.eye(n) + shared + rng.normal(size=(n, n)) * np.sqrt(0.5)
        sb = mu_b * np.eye(n) + shared + rng.normal(size=(n, n)) * np.sqrt(0.5)
        w = rng.multinomial(n, np.full(n, 1 / n), size=n_boot).astype(float)
        ra = resampled_identification(sa, w, n_way=n_way)
        rb = resampled_identification(sb, w, n_way=n_way)
        fa = w @ _full_pool(sa, n_way == "2") / n
        fb = w @ _full_pool(sb, n_way == "2") / n
        for key, samples, truth in (("diff restricted", ra - rb, truth_a - truth_b),
                                    ("diff full pool", fa - fb, truth_a - truth_b),
                                    ("model restricted", ra, truth_a),
                                    ("model full pool", fa, truth_a)):
            low, high = _interval(samples)
            hits[key] += low <= truth <= high
    return {k: v / reps for k, v in hits.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300, help="simulated test sets per row")
    parser.add_argument("--n-bootstrap", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    print(f"95 % interval coverage over {args.reps} simulated test sets "
          f"({args.n_bootstrap} resamples each)")
    print(f"{'metric':<10}{'n':>5}{'mu A':>6}{'mu B':>6}  {'diff restr.':>12}"
          f"{'diff full':>11}{'model restr.':>14}{'model full':>12}")
    for n_way, rows in (("2", ((12, 1.6, 1.2), (40, 1.6, 1.2), (100, 1.0, 0.8))),
                        ("all", ((12, 1.6, 1.2), (40, 1.6, 1.2), (40, 2.5, 2.0),
                                 (100, 2.5, 2.2)))):
        for n, mu_a, mu_b in rows:
            c = identification(n, mu_a, mu_b, n_way, args.reps, args.n_bootstrap, rng)
            name = "2-way" if n_way == "2" else "n-way"
            print(f"{name:<10}{n:>5}{mu_a:>6.1f}{mu_b:>6.1f}  {c['diff restricted']:>12.3f}"
                  f"{c['diff full pool']:>11.3f}{c['model restricted']:>14.3f}"
                  f"{c['model full pool']:>12.3f}")
    for n in (12, 40, 100):
        hits = 0
        for rep in range(args.reps):
            b = rng.normal(size=n)
            a = b + 0.3 + rng.normal(size=n)
            _, low, high = paired_bootstrap_difference(a, b, n_bootstrap=args.n_bootstrap,
                                                       random_state=rep)
            hits += low <= 0.3 <= high
        print(f"{'mean':<10}{n:>5}{'':>12}  {hits / args.reps:>12.3f}")
    print("compare uses: 'diff restr.' for every difference, 'model restr.' for one model's "
          "2-way and per-stimulus metrics, 'model full' for one model's n-way")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
