"""Trial-to-trial variability of the virtual cortex: spike counts around expected counts.

Two models:

- :func:`modulated_poisson` (the cortex's own, see :meth:`VirtualCortex.sample_counts`): a
  modulated Poisson process (Goris, Movshon & Simoncelli 2014, Nat. Neurosci. 17:858). On each
  trial a unit's rate is multiplied by a log-normal gain ``g`` of mean 1 and variance
  ``sigma2`` (per unit), so counts have mean ``mu`` and variance ``mu + sigma2 * mu**2``: the
  Fano factor grows with the rate. Part of each unit's log-gain is shared by all units of its
  array on that trial (a common excitability fluctuation), which gives positive noise
  correlations within an array and none across arrays.
- :func:`sample_counts`: independent Poisson (``fano == 1``) or gamma-Poisson counts with the
  same Fano factor for every unit and stimulus.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["modulated_poisson", "sample_counts"]


def sample_counts(
    expected: np.ndarray, rng: np.random.Generator, *, noise: str = "poisson", fano: float = 1.0
) -> np.ndarray:
    """Independent counts with a fixed Fano factor around ``expected``.

    Parameters
    ----------
    expected : numpy.ndarray
        Expected counts (any shape).
    rng : numpy.random.Generator
        Source of randomness.
    noise : {"poisson", "none"}
        ``"poisson"``: integer spike counts with variance ``fano * expected`` (Poisson for
        ``fano == 1``, gamma-Poisson mixture for ``fano > 1``). ``"none"``: the expected
        counts themselves.
    fano : float, default 1.0
        Fano factor (variance / mean), >= 1.

    Returns
    -------
    numpy.ndarray
        Float64 array shaped like ``expected``.
    """
    expected = np.asarray(expected, dtype=np.float64)
    if noise == "none":
        return expected.copy()
    if noise != "poisson":
        raise InputError(f"noise must be 'poisson' or 'none', got {noise!r}")
    if not fano >= 1.0:
        raise InputError(f"fano must be >= 1, got {fano}")
    lam = expected
    if fano > 1.0:
        lam = rng.gamma(expected / (fano - 1.0), fano - 1.0)
    return rng.poisson(lam).astype(np.float64)


def modulated_poisson(
    expected: np.ndarray,
    rng: np.random.Generator,
    *,
    gain_variance: np.ndarray,
    groups: np.ndarray,
    shared: float = 0.5,
) -> np.ndarray:
    """Poisson counts whose rate is scaled by a trial-by-trial log-normal gain.

    Parameters
    ----------
    expected : numpy.ndarray
        ``(..., n_units)`` expected counts; every leading index is one trial.
    rng : numpy.random.Generator
        Source of randomness.
    gain_variance : numpy.ndarray
        ``(n_units,)`` variance of each unit's gain (``sigma2`` >= 0; the gain has mean 1).
    groups : numpy.ndarray
        ``(n_units,)`` integer array (group) index of each unit; units of a group share part
        of their gain fluctuation.
    shared : float, default 0.5
        Fraction (0-1) of each unit's log-gain variance shared by its group.

    Returns
    -------
    numpy.ndarray
        Float64 integer counts shaped like ``expected``; mean ``expected`` and variance
        ``expected + gain_variance * expected**2``.
    """
    expected = np.asarray(expected, dtype=np.float64)
    sigma2 = np.asarray(gain_variance, dtype=np.float64)
    groups = np.asarray(groups)
    n_units = sigma2.size
    if expected.ndim < 1 or expected.shape[-1] != n_units or groups.shape != (n_units,):
        raise InputError(
            f"expected counts end in {expected.shape[-1:]} units but the noise model has "
            f"{n_units}"
        )
    if np.any(sigma2 < 0) or not 0.0 <= shared <= 1.0:
        raise InputError("need gain_variance >= 0 and 0 <= shared <= 1")
    flat = expected.reshape(-1, n_units)
    v = np.log1p(sigma2)  # log-gain variance
    common = rng.standard_normal((flat.shape[0], int(groups.max()) + 1 if n_units else 0))
    private = rng.standard_normal(flat.shape)
    log_gain = np.sqrt(shared * v) * common[:, groups] + np.sqrt((1 - shared) * v) * private
    rate = flat * np.exp(log_gain - v / 2)
    return rng.poisson(rate).astype(np.float64).reshape(expected.shape)
